"""B8: data- and model-parallel train steps on 8 host devices with sharding rules.

Figures: for each layout (1 device, data parallel, tensor parallel, both), the bytes of params
and of the whole TrainState (params + Adam moments) each device holds against total / shards
(target: equal within 1%), the per-device output bytes of the compiled sharded ``init``
(no device ever holds the full params: no host gather), and step time against 1 device.
On CPU the 8 "devices" share the same cores, so step times there are printed but flagged
as not meaningful; they count only on real multi-device hardware.
Run: ``python benchmarks/distributed_bench.py [--quick]``.
"""

import os
import sys

# Must be set before jax is imported: 8 host devices on CPU (ignored by GPU/TPU backends).
_FLAGS = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _FLAGS:
    os.environ["XLA_FLAGS"] = f"{_FLAGS} --xla_force_host_platform_device_count=8".strip()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import json  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import harness  # noqa: E402
import hk_core as hk  # noqa: E402
from hk_core import distributed  # noqa: E402
from hk_core import training  # noqa: E402

# Megatron-LM: column-parallel in-projections, row-parallel out-projections.
RULES = [
    (r"(query|key|value|up)/w$", P(None, "model")),
    (r"up/b$", P("model")),
    (r"(out|down)/w$", P("model", None)),
    (r"embed/w$", P("model", None)),
    (r"head/w$", P(None, "model")),
    (r"head/b$", P("model")),
]
LAYOUTS = {
    "1_device": ({"data": 1}, False),
    "data_parallel": ({"data": 8}, False),
    "model_parallel": ({"model": 8}, True),
    "data4_model2": ({"data": 4, "model": 2}, True),
}


def _norm(x):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-5)


def _block(x, heads):
    b, t, d = x.shape
    h = _norm(x)
    q, k, v = (hk.Linear(d, with_bias=False, name=n)(h).reshape(b, t, heads, d // heads)
               for n in ("query", "key", "value"))
    x = x + hk.Linear(d, name="out")(
        jax.nn.dot_product_attention(q, k, v, is_causal=True).reshape(b, t, d))
    return x + hk.Linear(d, name="down")(jax.nn.gelu(hk.Linear(4 * d, name="up")(_norm(x))))


def _model(vocab, width, heads, layers):
    def logits(tokens):
        x = hk.Linear(width, with_bias=False, name="embed")(jax.nn.one_hot(tokens, vocab))
        for i in range(layers):
            with hk.name_scope(f"layer_{i}"):
                x = _block(x, heads)
        return hk.Linear(vocab, name="head")(_norm(x))
    return hk.without_apply_rng(hk.transform(logits))


def _per_device_bytes(tree) -> dict:
    totals: dict = {}
    for leaf in jax.tree.leaves(tree):
        for shard in leaf.addressable_shards:
            totals[shard.device] = totals.get(shard.device, 0) + shard.data.nbytes
    return totals


def _devices() -> list:
    """Eight accelerators if there are, else the 8 host CPU devices made by XLA_FLAGS above."""
    devices = jax.devices()
    return devices if len(devices) >= 8 else jax.devices("cpu")


def _measure(layout, f, tokens, targets, steps_per_sample):
    """Returns the layout's byte figures and a function running ``steps_per_sample`` steps."""
    axes, use_rules = LAYOUTS[layout]
    devices = _devices()[:int(np.prod(list(axes.values())))]
    mesh = distributed.make_mesh(axes, devices=devices)
    rules = distributed.ShardingRules(RULES if use_rules else [])
    params = distributed.sharded_init(f, mesh, rules, 0, tokens)
    ts = training.TrainState.create(apply_fn=f.apply, params=params, tx=optax.adam(1e-3))
    ts = jax.device_put(ts, rules.shardings(ts, mesh))
    data_axis = "data" if "data" in axes else None
    batch = distributed.shard_batch({"x": tokens, "y": targets}, mesh, axis=data_axis)

    def step(ts, batch):
        def loss(p):
            logits = ts.apply_fn(p, batch["x"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
        value, grads = jax.value_and_grad(loss)(ts.params)
        return ts.apply_gradients(grads=grads), value

    ts_shardings = rules.shardings(ts, mesh)
    batch_shardings = jax.tree.map(lambda a: a.sharding, batch)
    compiled = jax.jit(step, in_shardings=(ts_shardings, batch_shardings),
                       out_shardings=(ts_shardings, NamedSharding(mesh, P()))).lower(
                           ts, batch).compile()

    abstract = jax.eval_shape(f.init, 0, tokens)
    init_memory = jax.jit(f.init, out_shardings=rules.shardings(abstract, mesh)).lower(
        0, tokens).compile().memory_analysis()

    placements = rules.placements(params, mesh)
    state_placements = rules.placements(ts, mesh)
    measured = _per_device_bytes(params)
    state_measured = _per_device_bytes(ts)
    expected = sum(p.bytes_per_device for p in placements)
    state_expected = sum(p.bytes_per_device for p in state_placements)
    holder = {"ts": ts}

    def run():
        for _ in range(steps_per_sample):
            holder["ts"], value = compiled(holder["ts"], batch)
        return value

    return run, {
        "mesh": dict(mesh.shape),
        "params_bytes_total": sum(p.nbytes for p in placements),
        "params_bytes_per_device_max": max(measured.values()),
        "params_bytes_per_device_expected": expected,
        "params_ratio_to_expected": round(max(measured.values()) / expected, 4),
        "sharded_params": sum(p.shard_count > 1 for p in placements),
        "train_state_bytes_per_device_max": max(state_measured.values()),
        "train_state_bytes_per_device_expected": state_expected,
        "train_state_ratio_to_expected": round(max(state_measured.values()) / state_expected, 4),
        "init_output_bytes_per_device": getattr(init_memory, "output_size_in_bytes", None),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (CI)")
    args = parser.parse_args(argv)
    devices = _devices()
    if len(devices) < 8:
        raise SystemExit(f"B8 needs 8 devices; found {len(devices)} ({devices}).")
    vocab, width, heads, layers, batch, seq = (
        (64, 64, 4, 1, 16, 16) if args.quick else (512, 256, 8, 4, 32, 64))
    f = _model(vocab, width, heads, layers)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, vocab, (batch, seq)).astype(np.int32)
    targets = rng.integers(0, vocab, (batch, seq)).astype(np.int32)
    repeats, steps = (2, 1) if args.quick else (5, 3)
    runs, results = {}, {}
    for name in LAYOUTS:
        runs[name], results[name] = _measure(name, f, tokens, targets, steps)
    # All layouts timed in one interleaved loop, order rotated each repetition.
    for name, timing in harness.interleaved(runs, repeats=repeats, number=1).items():
        results[name]["step_ms_min"] = timing["min"] / steps * 1e3
        results[name]["step_ms_median"] = timing["median"] / steps * 1e3

    platform = devices[0].platform
    device = harness.device_name() if platform != "cpu" else "cpu"
    meaningful = platform != "cpu"
    base = results["1_device"]["step_ms_min"]
    print(f"B8 on {device} x{len(devices)}: model width {width}, {layers} layers, "
          f"batch {batch}x{seq}; params {results['1_device']['params_bytes_total']} bytes")
    header = (f"  {'layout':<15}{'mesh':<26}{'params B/dev':>13}{'expected':>10}"
              f"{'ratio':>7}{'state B/dev':>12}{'ratio':>7}{'init out B/dev':>15}"
              f"{'step ms':>9}{'vs 1 dev':>9}")
    print(header)
    for name, r in results.items():
        print(f"  {name:<15}{str(r['mesh']):<26}{r['params_bytes_per_device_max']:>13}"
              f"{r['params_bytes_per_device_expected']:>10}{r['params_ratio_to_expected']:>7}"
              f"{r['train_state_bytes_per_device_max']:>12}"
              f"{r['train_state_ratio_to_expected']:>7}"
              f"{str(r['init_output_bytes_per_device']):>15}{r['step_ms_min']:>9.2f}"
              f"{r['step_ms_min'] / base:>9.2f}")
    if not meaningful:
        print("  note: step times on CPU host devices are NOT meaningful (the 8 devices share "
              "the same cores); bytes per device are.")
    ratios = {name: {"params_bytes_per_device_vs_expected": r["params_ratio_to_expected"],
                     "train_state_bytes_per_device_vs_expected":
                         r["train_state_ratio_to_expected"],
                     "step_time_vs_1_device": round(r["step_ms_min"] / base, 3)}
              for name, r in results.items()}
    within = all(abs(r["params_ratio_to_expected"] - 1) <= 0.01 for r in results.values())
    payload = {"benchmark": "B8", "device": device, "device_count": len(devices),
               "results": results, "ratios": ratios, "bytes_target_met": within,
               "step_time_meaningful": meaningful, "quick": args.quick}
    print(json.dumps(payload))
    return payload


if __name__ == "__main__":
    main()
