#!/usr/bin/env bash
# The whole accelerator check in one call (issue "GPU figures"), budgeted to about 8 minutes:
#   B4 on the device (bf16 compute, f32 master weights, cuDNN attention, MFU) and the HLO check
#   that hk_core's MultiHeadAttention reaches cuDNN's fused attention; B2/B3 (12 layers
#   unrolled, 48 with layer_stack); B5 (ResNet-50 init); the peers' W4 through anchors.py;
#   the suite's numerics tests on the device. Writes benchmarks/results/<device>.json and
#   <device>.md (a table), and copies them to $OUT when that is set (the device tool's folder).
#
# Usage: bash benchmarks/gpu.sh [--quick]
#   --quick: tiny models and one test file, on any backend (the CPU smoke test).
# On the lent machine: wheels for Haiku carried in .whl/ are installed first, then
# the project with `pip install --no-build-isolation --no-deps .`.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=""
[ "${1:-}" = "--quick" ] && quick="--quick" && export GPU_SH_QUICK=1
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
status=0

step() {  # step NAME SECONDS COMMAND...: run with a time limit, keep its output in a log.
    local name=$1 limit=$2; shift 2
    printf '\n===== %s (limit %ss) =====\n' "$name" "$limit"
    timeout "$limit" "$@" 2>&1 | tee "$logs/$name.log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -ne 0 ] && { echo "step $name failed: exit $rc"; status=1; }
    return 0
}

if [ -z "$quick" ]; then
    shopt -s nullglob
    wheels=(.whl/*.whl)
    shopt -u nullglob
    [ ${#wheels[@]} -gt 0 ] && pip install -q --no-deps "${wheels[@]}"
    pip install -q --no-build-isolation --no-deps .
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
    export JAX_PLATFORMS="${JAX_PLATFORMS:-cuda,cpu}"
    peers="hk_core,raw_jax,haiku,flax_linen,flax_nnx,equinox"
    tests=(hk_core_tests/layers hk_core_tests/nets hk_core_tests/fixtures_test.py)
    gpt_args=(--dtype bf16 --depths 12,48s --repeats 3)
    limits=(120 120 60 120 90)  # about 8.5 minutes in all, with the install
else
    export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"
    peers="hk_core,raw_jax"
    tests=(hk_core_tests/layers/linear_test.py)
    gpt_args=(--quick)
    limits=(900 900 900 900 900)  # generous: a smoke test, not a timing
fi
python -c 'import jax; print("jax", jax.__version__, jax.devices())'

step B4_gpu "${limits[0]}" python benchmarks/gpu_step.py $quick
step B2_B3 "${limits[1]}" python benchmarks/gpt.py "${gpt_args[@]}"
step B5 "${limits[2]}" python benchmarks/resnet_init.py $quick
step W4_peers "${limits[3]}" python benchmarks/anchors.py --workloads W4 --libs "$peers" \
    --dtype "$([ -z "$quick" ] && echo bf16 || echo f32)" \
    --attn-impl "$([ -z "$quick" ] && echo cudnn || echo xla)" --hk-core-path . --json-out "$logs/W4_peers.json" $quick
step numerics_tests "${limits[4]}" python -m pytest "${tests[@]}" -q -p no:cacheprovider

python - "$logs" "$status" <<'EOF'
"""Collects every step's JSON lines and test counts into results/<device>.json and .md."""
import datetime, glob, json, os, re, shutil, sys

import jax

logs, status = sys.argv[1], int(sys.argv[2])
device = jax.devices()[0]
name = "cpu" if device.platform == "cpu" else device.device_kind
slug = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
record = {"device": name, "jax": jax.__version__, "date": datetime.date.today().isoformat(),
          "quick": bool(os.environ.get("GPU_SH_QUICK")), "steps": {}}
rows = []
for path in sorted(glob.glob(os.path.join(logs, "*.log"))):
    step = os.path.basename(path)[:-4]
    text = open(path).read()
    payloads = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                payloads.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    tests = re.findall(r"^=*\s*(\d+ passed.*?)\s*=*$", text, re.M)
    record["steps"][step] = {"json": payloads, **({"tests": tests[-1]} if tests else {})}
    for p in payloads:
        for workload, ratio in (p.get("ratios") or {}).items():
            if isinstance(ratio, dict) and "hk_core" in ratio:
                rows.append((step, p.get("benchmark", ""), workload, ratio["hk_core"]))
        if p.get("benchmark") == "B4_gpu_summary":
            continue  # the same figures as the B4_gpu payload
        if "mfu" in p:
            rows.append((step, "MFU", "hk_core / raw_jax",
                         " / ".join("n/a" if v is None else f"{v:.1%}" for v in p["mfu"].values())))
        if "attention_hlo" in p:
            rows.append((step, "cuDNN attention", "causal / no mask",
                         " / ".join(str(v["fused_custom_call"]) for v in p["attention_hlo"].values())))
    if tests:
        rows.append((step, "tests", "on device", tests[-1]))
    peers_json = os.path.join(logs, f"{step}.json")
    if os.path.exists(peers_json):  # anchors.py: W4 step per library, MFU where the peak is known
        w4 = json.load(open(peers_json)).get("W4_step", {})
        record["steps"][step]["anchors_W4"] = w4
        for lib, r in w4.items():
            if isinstance(r, dict) and "step_s" in r:
                mfu = r.get("mfu_median") or r.get("mfu")
                rows.append((step, "W4 step median", lib, f"{r['step_s']['median'] * 1e3:.2f} ms"
                             + (f", MFU {mfu:.1%}" if isinstance(mfu, float) else "")))
out_dir = "benchmarks/results"
os.makedirs(out_dir, exist_ok=True)
suffix = "_quick" if os.environ.get("GPU_SH_QUICK") else ""
with open(os.path.join(out_dir, f"{slug}_gpu_check{suffix}.json"), "w") as fh:
    json.dump(record, fh, indent=1)
table = [f"# {name}, jax {jax.__version__}, {record['date']}", "",
         "| step | benchmark | workload | hk_core (ratio to raw JAX, or value) |", "|---|---|---|---|"]
table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
with open(os.path.join(out_dir, f"{slug}_gpu_check{suffix}.md"), "w") as fh:
    fh.write("\n".join(table) + "\n")
print("\n".join(table))
if os.environ.get("OUT"):
    for ext in ("json", "md"):
        shutil.copy(os.path.join(out_dir, f"{slug}_gpu_check{suffix}.{ext}"), os.environ["OUT"])
print(json.dumps({"gpu_check": "failed steps" if status else "ok", "device": name}))
EOF
exit "$status"
