"""Runs every benchmark script and writes ``benchmarks/results/<device>.json``.

Usage: ``python benchmarks/run_all.py [--quick] [--libs hk_core,raw_jax]``. Each script
prints its own table and a JSON line; this collects the JSON lines.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ["overhead.py", "gpt.py", "resnet_init.py", "import_time.py", "checkpoint_bench.py",
           "distributed_bench.py"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--libs", default="hk_core,raw_jax",
                        help="contenders (hk_core and raw_jax are always measured)")
    args = parser.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(HERE), HERE] + [p for p in [env.get("PYTHONPATH")] if p])
    collected, failures = [], []
    for script in SCRIPTS:
        path = os.path.join(HERE, script)
        if not os.path.exists(path):
            continue
        cmd = [sys.executable, path] + (["--quick"] if args.quick else [])
        print(f"===== {script} =====", flush=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        print(proc.stdout, end="")
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            failures.append(script)
            continue
        for line in proc.stdout.splitlines():
            if line.startswith("{") and '"benchmark"' in line:
                collected.append(json.loads(line))
    peers = [lib for lib in args.libs.split(",") if lib not in ("hk_core", "raw_jax")]
    if peers:
        # Peers (Haiku, Flax, Equinox) run through the side-by-side harness, which skips and
        # reports any that are not installed (see benchmarks/requirements.txt).
        print("===== anchors.py (peers) =====", flush=True)
        cmd = [sys.executable, os.path.join(HERE, "anchors.py"), "--libs", args.libs,
               "--hk-core-path", os.path.dirname(HERE)] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        print(proc.stdout, end="")
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            failures.append("anchors.py")
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                try:
                    collected.append({"benchmark": "anchors", **json.loads(line)})
                except json.JSONDecodeError:
                    pass
    device = next((c["device"] for c in collected if "device" in c), "none")
    device = device.replace(":", "_").replace(" ", "_")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    name = f"{device}{'_quick' if args.quick else ''}.json"
    with open(os.path.join(HERE, "results", name), "w") as fh:
        json.dump(collected, fh, indent=1)
    print(json.dumps({"benchmarks": [c["benchmark"] for c in collected], "failures": failures}))
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
