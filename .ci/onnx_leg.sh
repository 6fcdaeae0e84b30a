#!/usr/bin/env bash
# The ONNX leg: hk_core's export.to_onnx tests in their own venv with the `onnx` extra.
# jax2onnx pins orbax-checkpoint<0.11.37 and pulls in Flax and Equinox (it imports them while
# converting, even for hk_core models), so it stays out of the main environment: the main leg
# keeps the newest Orbax and never has a peer library installed. Run from the repository root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="$(mktemp -d)/onnx_venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q ".[onnx,test]"
"$venv/bin/pip" list 2>/dev/null | grep -iE '^(jax|jaxlib|jax2onnx|onnx|onnxruntime|orbax-checkpoint) '
# HK_CORE_REQUIRE_ONNX turns the tests' "extra missing" skip into a failure.
HK_CORE_REQUIRE_ONNX=1 "$venv/bin/python" -m pytest hk_core_tests/export/onnx_export_test.py -q
