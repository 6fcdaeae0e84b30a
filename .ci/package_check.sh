#!/usr/bin/env bash
# Packaging check: `python -m build` makes an sdist and a wheel that pass `twine check`;
# the wheel installs into a fresh venv and runs the README's Usage snippet from outside the
# checkout (so hk_core comes from the wheel, py.typed included); the sdist then installs
# over it and runs the snippet again. Run from anywhere: `bash .ci/package_check.sh`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/tools"
"$work/tools/bin/pip" install --quiet build twine
if ! "$work/tools/bin/python" -m build --outdir "$work/dist" . > "$work/build.log" 2>&1; then
    cat "$work/build.log"
    exit 1
fi
"$work/tools/bin/twine" check --strict "$work/dist"/*

version="$(python3 -c 'import ast, sys
tree = ast.parse(open("hk_core/__init__.py").read())
print(next(n.value.value for n in tree.body if isinstance(n, ast.Assign)
           and getattr(n.targets[0], "id", "") == "__version__"))')"
wheel="$work/dist/hk_core-$version-py3-none-any.whl"
sdist="$work/dist/hk_core-$version.tar.gz"
ls "$wheel" "$sdist"

# The README's Usage block, as a user would paste it.
python3 - "$repo/README.md" > "$work/usage.py" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
usage = text[text.index("\n## Usage\n"):]
print(re.search(r"^```python\n(.*?)^```$", usage, re.M | re.S).group(1))
EOF

python3 -m venv "$work/venv"
run_usage() {
    (cd "$work" && JAX_PLATFORMS=cpu "$work/venv/bin/python" usage.py)
    (cd "$work" && "$work/venv/bin/python" -c '
import importlib.resources, sys, hk_core
assert hk_core.__file__.startswith(sys.prefix), hk_core.__file__  # not the checkout
assert importlib.resources.files("hk_core").joinpath("py.typed").is_file()
print("installed hk_core", hk_core.__version__, "from", hk_core.__file__)')
}

echo "== wheel: $(basename "$wheel")"
"$work/venv/bin/pip" install --quiet "$wheel"
run_usage

echo "== sdist: $(basename "$sdist")"
"$work/venv/bin/pip" install --quiet --no-deps --force-reinstall "$sdist"
run_usage

echo "package check passed"
