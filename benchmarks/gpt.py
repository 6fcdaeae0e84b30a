"""B2, B3, B4, B6: a GPT decoder train step in hk_core against its raw-JAX twin.

B2 trace: ``jax.jit(train_step).lower()`` (12 and 48 layers unrolled, 48 with layer_stack).
B3 compile: ``.compile()`` of those lowerings. B4 step: ms per compiled 12-layer step.
B6 memory: peak device bytes of that step from ``compiled.memory_analysis()``. Both models
use ``jax.nn.dot_product_attention``, the same parameter count (checked) and adamw.
Run: ``python benchmarks/gpt.py [--quick] [--dtype bf16]``.
"""

import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import harness  # noqa: E402
import hk_core as hk  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Config:
    vocab: int = 512
    d_model: int = 128
    heads: int = 4
    seq: int = 64
    batch: int = 8
    dtype: str = "float32"


def _causal(seq):
    return jnp.tril(jnp.ones([1, 1, seq, seq], bool))


# ----------------------------------------------------------------------------- hk_core model


def hk_block(cfg: Config, x):
    h = hk.LayerNorm(-1, True, True, name="ln_attn")(x)
    h = hk.MultiHeadAttention(cfg.heads, cfg.d_model // cfg.heads,
                              w_init=hk.initializers.VarianceScaling(1.0), name="attn")(
        h, h, h, mask=_causal(x.shape[-2]))
    x = x + h
    h = hk.LayerNorm(-1, True, True, name="ln_mlp")(x)
    h = jax.nn.gelu(hk.Linear(4 * cfg.d_model, name="up")(h))
    return x + hk.Linear(cfg.d_model, name="down")(h)


def hk_loss_fn(cfg: Config, layers: int, stacked: bool):
    def loss(tokens, targets):
        x = hk.Embed(cfg.vocab, cfg.d_model)(tokens).astype(cfg.dtype)
        x = x + hk.get_parameter("pos", [cfg.seq, cfg.d_model], x.dtype,
                                 init=hk.initializers.TruncatedNormal(0.02))
        if stacked:
            x = hk.layer_stack(layers)(lambda x: hk_block(cfg, x))(x)
        else:
            for _ in range(layers):
                x = hk_block(cfg, x)
        x = hk.LayerNorm(-1, True, True, name="ln_f")(x)
        logits = hk.Linear(cfg.vocab, name="head")(x).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
    return hk.without_apply_rng(hk.transform(loss))


# ----------------------------------------------------------------------------- raw JAX twin


def raw_init(cfg: Config, layers: int, key) -> dict:
    d, dtype = cfg.d_model, cfg.dtype
    keys = iter(jax.random.split(key, 8 * layers + 8))

    def dense(n_in, n_out, scale=None):
        std = scale if scale is not None else 1.0 / np.sqrt(n_in)
        w = std * jax.random.truncated_normal(next(keys), -2, 2, (n_in, n_out), dtype)
        return {"w": w, "b": jnp.zeros([n_out], dtype)}

    def norm():
        return {"scale": jnp.ones([d], dtype), "offset": jnp.zeros([d], dtype)}

    params = {"embed": jax.random.normal(next(keys), (cfg.vocab, d), dtype),
              "pos": 0.02 * jax.random.truncated_normal(next(keys), -2, 2, (cfg.seq, d), dtype),
              "ln_f": norm(), "head": dense(d, cfg.vocab)}
    for i in range(layers):
        params[f"block_{i}"] = {
            "ln_attn": norm(), "q": dense(d, d), "k": dense(d, d), "v": dense(d, d),
            "o": dense(d, d), "ln_mlp": norm(), "up": dense(d, 4 * d), "down": dense(4 * d, d)}
    return params


def _layer_norm(p, x, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = jnp.var(x, -1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * p["scale"] + p["offset"]


def _dense(p, x):
    return x @ p["w"] + p["b"]


def raw_block(cfg: Config, p, x):
    b, t, d = x.shape
    heads, head = cfg.heads, d // cfg.heads
    h = _layer_norm(p["ln_attn"], x)
    q, k, v = (_dense(p[n], h).reshape(b, t, heads, head) for n in ("q", "k", "v"))
    attn = jax.nn.dot_product_attention(q, k, v, mask=_causal(t))
    x = x + _dense(p["o"], attn.reshape(b, t, d))
    h = _layer_norm(p["ln_mlp"], x)
    return x + _dense(p["down"], jax.nn.gelu(_dense(p["up"], h)))


def raw_stack(params: dict, layers: int) -> dict:
    """The layer_stack twin's params: the blocks stacked on a leading axis under "blocks"."""
    blocks = [params.pop(f"block_{i}") for i in range(layers)]
    params["blocks"] = jax.tree.map(lambda *xs: jnp.stack(xs), *blocks)
    return params


def raw_loss_fn(cfg: Config, layers: int, stacked: bool = False):
    def loss(params, tokens, targets):
        x = params["embed"][tokens] + params["pos"]
        if stacked:  # scan over the stacked blocks, as layer_stack does
            x, _ = jax.lax.scan(lambda h, p: (raw_block(cfg, p, h), None), x, params["blocks"])
        for i in range(0 if stacked else layers):
            x = raw_block(cfg, params[f"block_{i}"], x)
        logits = _dense(params["head"], _layer_norm(params["ln_f"], x)).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
    return loss


# ----------------------------------------------------------------------------- harness


def _train_step(loss, tx):
    def step(params, opt_state, tokens, targets):
        value, grads = jax.value_and_grad(loss)(params, tokens, targets)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value
    return step


def _count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def setups(cfg: Config, layers: int, stacked: bool):
    key = jax.random.PRNGKey(0)
    tokens = jax.random.randint(key, (cfg.batch, cfg.seq), 0, cfg.vocab)
    targets = jnp.roll(tokens, -1, axis=1)
    tx = optax.adamw(1e-3)
    hk_model = hk_loss_fn(cfg, layers, stacked)
    hk_params = hk_model.init(key, tokens, targets)
    raw_params = raw_init(cfg, layers, key)
    if stacked:
        raw_params = raw_stack(raw_params, layers)
    assert _count(hk_params) == _count(raw_params), (_count(hk_params), _count(raw_params))
    hk_args = (hk_params, tx.init(hk_params), tokens, targets)
    raw_args = (raw_params, tx.init(raw_params), tokens, targets)

    def lower_hk():
        step = _train_step(lambda p, a, b: hk_model.apply(p, a, b), tx)  # fresh: no trace cache
        return jax.jit(step, donate_argnums=(0, 1)).lower(*hk_args)

    def lower_raw():
        step = _train_step(lambda p, a, b: raw_loss_fn(cfg, layers, stacked)(p, a, b), tx)
        return jax.jit(step, donate_argnums=(0, 1)).lower(*raw_args)

    return {"hk_core": (lower_hk, hk_args), "raw_jax": (lower_raw, raw_args)}


def run(cfg: Config, depths: list[tuple[int, bool]], repeats: int, step_repeats: int,
        compile_unrolled_above: int | None = None) -> dict:
    trace, compile_, step, memory = {}, {}, {}, {}
    for layers, stacked in depths:
        label = f"L{layers}{'_layer_stack' if stacked else ''}"
        contenders = setups(cfg, layers, stacked)
        trace[f"trace_{label}"] = harness.interleaved_no_warmup(
            {name: lower for name, (lower, _) in contenders.items()}, repeats)
        if stacked or compile_unrolled_above is None or layers <= compile_unrolled_above:
            compile_[f"compile_{label}"] = _compile_times(contenders, max(1, repeats // 2))
        if layers == depths[0][0] and not stacked:
            compiled = {name: lower().compile() for name, (lower, _) in contenders.items()}
            memory = {name: _peak_bytes(c) for name, c in compiled.items()}
            step[f"step_{label}"] = _time_steps(compiled, contenders, step_repeats)
    return {"trace": trace, "compile": compile_, "step": step, "memory": memory}


def _compile_times(contenders, repeats) -> dict:
    """Process CPU seconds of ``.compile()``, interleaved; each sample compiles a fresh
    lowering (made untimed), since ``Lowered.compile()`` caches its result."""
    return harness.interleaved_no_warmup(
        {name: lambda lowered: lowered.compile() for name in contenders}, repeats,
        prepare={name: lower for name, (lower, _) in contenders.items()})


def _peak_bytes(compiled) -> int:
    stats = compiled.memory_analysis()
    if stats is None:
        return -1
    return int(stats.temp_size_in_bytes + stats.argument_size_in_bytes
               + stats.output_size_in_bytes - stats.alias_size_in_bytes)


def _time_steps(compiled, contenders, repeats):
    state = {name: list(args) for name, (_, args) in contenders.items()}
    state = {name: [jax.tree.map(jnp.copy, a) for a in args] for name, args in state.items()}

    def stepper(name):
        def call():
            params, opt, tokens, targets = state[name]
            params, opt, loss = compiled[name](params, opt, tokens, targets)
            state[name][0], state[name][1] = params, opt
            return loss
        return call

    return harness.interleaved({name: stepper(name) for name in compiled}, repeats, 5)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny smoke test (CI)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bf16"])
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--depths", default=None,
                        help="comma-separated depths, 's' suffix for layer_stack "
                             "(default 12,48,48s; quick: 2,2s)")
    parser.add_argument("--compile-unrolled-deep", action="store_true",
                        help="also compile unrolled models deeper than 12 layers: XLA:CPU "
                             "needs over an hour of CPU time for 48 (default: only on GPU)")
    args = parser.parse_args(argv)
    dtype = "bfloat16" if args.dtype == "bf16" else "float32"
    if args.quick:
        cfg = Config(vocab=64, d_model=32, heads=2, seq=16, batch=2, dtype=dtype)
        spec = args.depths or "2,2s"
    else:
        cfg = Config(dtype=dtype)
        spec = args.depths or "12,48,48s"
    depths = [(int(d.rstrip("s")), d.endswith("s")) for d in spec.split(",")]
    on_cpu = jax.devices()[0].platform == "cpu"
    limit = 12 if on_cpu and not args.compile_unrolled_deep else None
    repeats = args.repeats or (1 if args.quick else 9)
    results = run(cfg, depths, repeats, 2 if args.quick else 10, compile_unrolled_above=limit)
    harness.report("B2", results["trace"], unit="s", scale=1.0)
    harness.report("B3", results["compile"], unit="s", scale=1.0)
    harness.report("B4", results["step"], unit="ms", scale=1e3)
    mem = results["memory"]
    ratio = round(mem["hk_core"] / mem["raw_jax"], 3) if mem.get("raw_jax", -1) > 0 else None
    print(f"B6 peak bytes: hk_core {mem['hk_core']:,}  raw_jax {mem['raw_jax']:,}  ratio {ratio}")
    import json
    print(json.dumps({"benchmark": "B6", "device": harness.device_name(), "results": mem,
                      "ratios": {"peak_bytes": {"hk_core": ratio}}, "unit": "bytes"}))
    return results


if __name__ == "__main__":
    main()
