"""B9: seconds that ``import hk_core`` adds beyond ``import jax`` (fresh interpreters).

Each sample starts a new Python process and measures its CPU time (robust to other load). Also checks that importing
hk_core imports neither optax nor orbax. Run: ``python benchmarks/import_time.py [--quick]``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

_PROBE = """
import sys, time
start = time.process_time()
import jax
mid = time.process_time()
{extra}
end = time.process_time()
heavy = sorted(m for m in ("optax", "orbax", "orbax.checkpoint") if m in sys.modules)
print(mid - start, end - mid, ",".join(heavy))
"""


def sample(extra: str) -> tuple[float, float, str]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(extra=extra)], check=True,
                         capture_output=True, text=True, env=dict(os.environ)).stdout.split()
    return float(out[0]), float(out[1]), (out[2] if len(out) > 2 else "")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 10
    extra_times, heavy_seen = [], set()
    for _ in range(repeats):
        _, extra, heavy = sample("import hk_core")
        extra_times.append(extra)
        heavy_seen.update(h for h in heavy.split(",") if h)
    result = {"min": min(extra_times), "median": statistics.median(extra_times)}
    print(f"B9: import hk_core after jax: min {result['min']:.3f} s, median "
          f"{result['median']:.3f} s (target <= 0.15 s); heavy modules imported: "
          f"{sorted(heavy_seen) or 'none'}")
    payload = {"benchmark": "B9", "device": "host", "results": {"hk_core": result},
               "ratios": {}, "unit": "s", "heavy_modules": sorted(heavy_seen)}
    print(json.dumps(payload))
    return payload


if __name__ == "__main__":
    main()
