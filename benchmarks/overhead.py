"""B1 and the 48-layer MLP trace: hk_core's per-call and per-trace overhead over raw JAX.

B1: un-jitted ``apply`` and ``init`` of an MLP [300, 100, 10] on [8, 784] (µs per call).
Trace: ``jax.jit(train_step).lower()`` of a 48-layer MLP train step (value_and_grad +
optax.adamw), in seconds. Each workload has a raw-JAX twin over a dict of arrays with the
same parameter count (checked). Run: ``python benchmarks/overhead.py [--quick]``.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import harness  # noqa: E402
import hk_core as hk  # noqa: E402

SIZES = (300, 100, 10)


def hk_mlp(x):
    return hk.nets.MLP(SIZES)(x)


def raw_init(key, x, sizes=SIZES):
    params = {}
    fan_in = x.shape[-1]
    for index, size in enumerate(sizes):
        key, sub = jax.random.split(key)
        stddev = 1.0 / np.sqrt(fan_in)
        w = stddev * jax.random.truncated_normal(sub, -2.0, 2.0, (fan_in, size), x.dtype)
        params[f"linear_{index}"] = {"w": w, "b": jnp.zeros([size], x.dtype)}
        fan_in = size
    return params


def raw_apply(params, x, depth=len(SIZES)):
    for index in range(depth):
        layer = params[f"linear_{index}"]
        x = x @ layer["w"] + layer["b"]
        if index < depth - 1:
            x = jax.nn.relu(x)
    return x


def count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def b1(repeats: int, number: int) -> dict:
    x = jnp.ones([8, 784])
    key = jax.random.PRNGKey(0)
    f = hk.transform(hk_mlp)
    params = f.init(key, x)
    raw_params = raw_init(key, x)
    assert count(params) == count(raw_params), "twins must have the same parameter count"
    apply = {"hk_core": lambda: f.apply(params, None, x), "raw_jax": lambda: raw_apply(raw_params, x)}
    init = {"hk_core": lambda: f.init(key, x), "raw_jax": lambda: raw_init(key, x)}
    return {"B1_eager_apply": harness.interleaved(apply, repeats, number),
            "B1_eager_init": harness.interleaved(init, repeats, max(1, number // 4))}


def trace_48(repeats: int, depth: int = 48, width: int = 256) -> dict:
    sizes = (width,) * (depth - 1) + (10,)
    x = jnp.ones([32, width])
    y = jnp.zeros([32], jnp.int32)
    tx = optax.adamw(1e-3)

    def hk_loss(x, y):
        logits = hk.nets.MLP(sizes)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    f = hk.transform(hk_loss)
    params = f.init(jax.random.PRNGKey(0), x, y)
    raw_params = raw_init(jax.random.PRNGKey(0), x, sizes)
    assert count(params) == count(raw_params)

    def make_step(loss):
        def step(params, opt_state, x, y):
            value, grads = jax.value_and_grad(loss)(params, x, y)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value
        return step

    def hk_lowered():
        # A fresh function each time: jax caches traces per function object.
        step = make_step(lambda p, x, y: f.apply(p, None, x, y))
        return jax.jit(step).lower(params, hk_opt, x, y)

    def raw_lowered():
        step = make_step(lambda p, x, y: optax.softmax_cross_entropy_with_integer_labels(
            raw_apply(p, x, depth), y).mean())
        return jax.jit(step).lower(raw_params, raw_opt, x, y)

    hk_opt, raw_opt = tx.init(params), tx.init(raw_params)
    contenders = {"hk_core": hk_lowered, "raw_jax": raw_lowered}
    return {f"trace_mlp{depth}_train_step": harness.interleaved_no_warmup(contenders, repeats)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (CI)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 15)
    results = b1(repeats, 5 if args.quick else 200)
    eager = harness.report("B1", results)
    trace = harness.report("B2_mlp48_trace",
                           trace_48(repeats, depth=8 if args.quick else 48), unit="s", scale=1.0)
    return {"B1": eager, "trace": trace}


if __name__ == "__main__":
    main()
