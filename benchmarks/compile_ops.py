"""B3 study: which op choices make XLA's compile of the GPT train step slow or fast.

Builds the raw-JAX twin of ``gpt.py`` (same config, same parameters, value_and_grad of
cross-entropy + optax.adamw) in variants that each change ONE op choice from the baseline
(``gpt.py``'s own raw twin), lowers each once per repetition (untimed, fresh, so nothing is
cached) and times ``.compile()`` in process CPU time, interleaved with the order rotated.
Prints a table of min/median compile seconds per variant, relative to the baseline's min, and
one JSON line. Every variant's first compiled step is also run once and its loss compared with
the baseline's, so a variant that changes the maths shows up in the ``loss`` column.

The ``hlo ops`` column (instructions in the optimized HLO, fused computations included) is
deterministic and tracks the compile time closely; on a shared machine trust it over a time
difference below ~25%. Measured on CPU (jax 0.10.2, 12 layers): the LayerNorm form dominates
(jnp.var beside a separate mean 52k ops; one shared ``x - mean`` 26k ops, 0.52x; custom_vjp 19k,
0.24-0.33x), then reshaping Linear inputs to 2-D (42k, 0.76x); ``@``/dot/einsum/dot_general
lower identically; attention, mask, embed, gelu and loss forms stay within 3% of the ops;
``lax.scan`` over layers is 0.27x. These are the raw twin's op choices: hk_core's Linear and
LayerNorm compute through kernels traced once per shape, and there Haiku's LayerNorm order
(mean and ``jnp.var``, which hk_core uses for Haiku's gradient bits) compiled no slower than
the shared ``x - mean`` (12 layers: 4.25 s vs 3.98 s min, 4.30 s vs 4.32 s median).

Run: ``python benchmarks/compile_ops.py [--quick] [--layers 12] [--repeats 3]
[--only name,name]``.
"""

import argparse
import dataclasses
import functools
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import gpt  # noqa: E402
import harness  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Ops:
    """How each layer of the raw twin is expressed; the defaults are ``gpt.py``'s raw twin."""

    # var | var_given_mean | centered | fast | custom_jvp_moments | custom_jvp | custom_vjp
    layer_norm: str = "var"
    dense: str = "matmul"  # matmul | dot | einsum | dot_general | flat
    embed: str = "gather"  # gather | take_clip | one_hot
    attention: str = "dpa_mask"  # dpa_mask | dpa_bias | dpa_causal | einsum_mask | einsum_bias
    mask: str = "traced"  # traced (jnp.tril in the trace) | constant (numpy)
    gelu_approximate: bool = True
    loss: str = "optax"  # optax | log_softmax
    masked_row_fixup: bool = False  # hk_core's fully-masked-row mean fixup
    stack: str = "unrolled"  # unrolled | scan


# ----------------------------------------------------------------------------- layers


def _layer_norm(ops: Ops, p, x, eps=1e-5):
    if ops.layer_norm == "custom_vjp":
        return _layer_norm_custom_vjp(x, p["scale"], p["offset"], eps)
    if ops.layer_norm == "custom_jvp":
        return _normalize(x, eps) * p["scale"] + p["offset"]
    if ops.layer_norm == "var":  # gpt.py: a separate mean, then jnp.var (which re-centres)
        mean = x.mean(-1, keepdims=True)
        var = jnp.var(x, -1, keepdims=True)
        centered = x - mean
    elif ops.layer_norm == "var_given_mean":  # jnp.var (a nested jit) on the shared mean
        mean = x.mean(-1, keepdims=True)
        var = jnp.var(x, -1, keepdims=True, mean=mean)
        centered = x - mean
    elif ops.layer_norm == "custom_jvp_moments":  # (mean, var) with a hand-written JVP
        mean, var = _moments(x)
        centered = x - mean
    elif ops.layer_norm == "centered":  # jnp.var's maths on one shared mean
        mean = x.mean(-1, keepdims=True)
        centered = x - mean
        var = jnp.mean(jnp.square(centered), -1, keepdims=True)
    elif ops.layer_norm == "fast":  # one pass, mean(x²) - mean²: other numerics
        mean = x.mean(-1, keepdims=True)
        var = jnp.mean(jnp.square(x), -1, keepdims=True) - jnp.square(mean)
        centered = x - mean
    else:
        raise ValueError(ops.layer_norm)
    return centered * jax.lax.rsqrt(var + eps) * p["scale"] + p["offset"]


@jax.custom_jvp
def _moments(x):
    mean = x.mean(-1, keepdims=True)
    return mean, jnp.mean(jnp.square(x - mean), -1, keepdims=True)


@_moments.defjvp
def _moments_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    mean, var = _moments(x)
    # d var = 2 mean((x - m) dx): the term through d mean is zero, so it is left out.
    return (mean, var), (dx.mean(-1, keepdims=True),
                         2 * jnp.mean((x - mean) * dx, -1, keepdims=True))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _normalize(x, eps):
    mean = x.mean(-1, keepdims=True)
    centered = x - mean
    return centered * jax.lax.rsqrt(jnp.mean(jnp.square(centered), -1, keepdims=True) + eps)


@_normalize.defjvp
def _normalize_jvp(eps, primals, tangents):
    (x,), (dx,) = primals, tangents
    mean = x.mean(-1, keepdims=True)
    centered = x - mean
    inv = jax.lax.rsqrt(jnp.mean(jnp.square(centered), -1, keepdims=True) + eps)
    xhat = centered * inv
    # The tangent is linear in dx, so reverse mode transposes it: one compact backward.
    dxhat = inv * (dx - dx.mean(-1, keepdims=True)
                   - xhat * jnp.mean(xhat * dx, -1, keepdims=True))
    return xhat, dxhat


@jax.custom_vjp
def _ln_core(x, scale, offset, eps):
    mean = x.mean(-1, keepdims=True)
    centered = x - mean
    inv = jax.lax.rsqrt(jnp.mean(jnp.square(centered), -1, keepdims=True) + eps)
    return centered * inv * scale + offset


def _ln_fwd(x, scale, offset, eps):
    mean = x.mean(-1, keepdims=True)
    centered = x - mean
    inv = jax.lax.rsqrt(jnp.mean(jnp.square(centered), -1, keepdims=True) + eps)
    xhat = centered * inv
    return xhat * scale + offset, (xhat, inv, scale)


def _ln_bwd(res, dy):
    xhat, inv, scale = res
    batch_axes = tuple(range(dy.ndim - 1))
    dxhat = dy * scale
    dx = inv * (dxhat - dxhat.mean(-1, keepdims=True)
                - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return dx, (dy * xhat).sum(batch_axes), dy.sum(batch_axes), None


_ln_core.defvjp(_ln_fwd, _ln_bwd)


def _layer_norm_custom_vjp(x, scale, offset, eps):
    return _ln_core(x, scale, offset, eps)


def _dense(ops: Ops, p, x):
    w, b = p["w"], p["b"]
    if ops.dense == "matmul":  # gpt.py
        y = x @ w
    elif ops.dense == "dot":
        y = jnp.dot(x, w)
    elif ops.dense == "einsum":
        y = jnp.einsum("...i,io->...o", x, w)
    elif ops.dense == "dot_general":
        y = jax.lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())))
    elif ops.dense == "flat":  # [B, T, D] -> [B*T, D] @ w -> [B, T, N]
        y = (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1])
    else:
        raise ValueError(ops.dense)
    return y + b


def _embed(ops: Ops, table, ids):
    if ops.embed == "gather":  # gpt.py
        return table[ids]
    if ops.embed == "take_clip":
        return jnp.take(table, ids, axis=0, mode="clip")
    if ops.embed == "one_hot":
        return jax.nn.one_hot(ids, table.shape[0], dtype=table.dtype) @ table
    raise ValueError(ops.embed)


def _mask(ops: Ops, t):
    if ops.mask == "traced":  # gpt.py: built inside the trace
        return gpt._causal(t)
    if ops.mask == "constant":
        return np.tril(np.ones([1, 1, t, t], bool))
    raise ValueError(ops.mask)


def _attention(ops: Ops, q, k, v):
    """``[B, T, H, d]`` heads in and out, causal."""
    t, head = q.shape[1], q.shape[-1]
    kind = ops.attention
    mask = None if kind == "dpa_causal" else _mask(ops, t)
    if kind == "dpa_mask":  # gpt.py
        out = jax.nn.dot_product_attention(q, k, v, mask=mask)
    elif kind == "dpa_bias":
        bias = jnp.where(mask, 0.0, -1e30).astype(q.dtype)
        out = jax.nn.dot_product_attention(q, k, v, bias=bias)
    elif kind == "dpa_causal":
        out = jax.nn.dot_product_attention(q, k, v, is_causal=True)
    elif kind in ("einsum_mask", "einsum_bias"):  # Haiku's explicit formula
        logits = jnp.einsum("bthd,bThd->bhtT", q, k) / np.sqrt(head).astype(q.dtype)
        if kind == "einsum_mask":
            logits = jnp.where(mask, logits, -1e30)
        else:
            logits = logits + jnp.where(mask, 0.0, -1e30).astype(q.dtype)
        out = jnp.einsum("bhtT,bThd->bthd", jax.nn.softmax(logits), v)
    else:
        raise ValueError(kind)
    if ops.masked_row_fixup:  # as hk_core's fused_attention: all-False rows get mean(v)
        if mask is None:
            mask = _mask(ops, t)
        heads = q.shape[-2]
        row_kept = jnp.any(mask, axis=-1)
        row_kept = jnp.broadcast_to(row_kept, (*row_kept.shape[:-2], heads, t))
        row_kept = jnp.swapaxes(row_kept, -1, -2)[..., None]
        mean_value = jnp.mean(v, axis=-3, keepdims=True).astype(out.dtype)
        out = jnp.where(row_kept, out, mean_value)
    return out


def _block(ops: Ops, cfg: gpt.Config, p, x):
    b, t, d = x.shape
    heads, head = cfg.heads, d // cfg.heads
    h = _layer_norm(ops, p["ln_attn"], x)
    q, k, v = (_dense(ops, p[n], h).reshape(b, t, heads, head) for n in ("q", "k", "v"))
    x = x + _dense(ops, p["o"], _attention(ops, q, k, v).reshape(b, t, d))
    h = _layer_norm(ops, p["ln_mlp"], x)
    up = jax.nn.gelu(_dense(ops, p["up"], h), approximate=ops.gelu_approximate)
    return x + _dense(ops, p["down"], up)


def _loss(ops: Ops, logits, targets):
    if ops.loss == "optax":  # gpt.py
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
    if ops.loss == "log_softmax":
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.sum(logp * jax.nn.one_hot(targets, logits.shape[-1]), -1))
    raise ValueError(ops.loss)


def loss_fn(ops: Ops, cfg: gpt.Config, layers: int):
    def loss(params, tokens, targets):
        x = _embed(ops, params["embed"], tokens) + params["pos"]
        if ops.stack == "scan":
            x, _ = jax.lax.scan(lambda x, p: (_block(ops, cfg, p, x), None), x, params["blocks"])
        else:
            for i in range(layers):
                x = _block(ops, cfg, params[f"block_{i}"], x)
        h = _layer_norm(ops, params["ln_f"], x)
        logits = _dense(ops, params["head"], h).astype(jnp.float32)
        return _loss(ops, logits, targets)
    return loss


def init(ops: Ops, cfg: gpt.Config, layers: int, key):
    params = gpt.raw_init(cfg, layers, key)
    if ops.stack == "scan":
        blocks = [params.pop(f"block_{i}") for i in range(layers)]
        params["blocks"] = jax.tree.map(lambda *xs: jnp.stack(xs), *blocks)
    return params


# ----------------------------------------------------------------------------- variants

BASE = Ops()
VARIANTS: dict[str, Ops] = {
    "baseline (gpt.py raw twin)": BASE,
    "ln: jnp.var(mean=shared mean)": dataclasses.replace(BASE, layer_norm="var_given_mean"),
    "ln: shared mean, mean((x-m)^2)": dataclasses.replace(BASE, layer_norm="centered"),
    "ln: custom_jvp (mean, var)": dataclasses.replace(BASE, layer_norm="custom_jvp_moments"),
    "ln: custom_jvp normalize": dataclasses.replace(BASE, layer_norm="custom_jvp"),
    "ln: mean(x^2)-mean^2": dataclasses.replace(BASE, layer_norm="fast"),
    "ln: custom_vjp": dataclasses.replace(BASE, layer_norm="custom_vjp"),
    "dense: jnp.dot": dataclasses.replace(BASE, dense="dot"),
    "dense: einsum": dataclasses.replace(BASE, dense="einsum"),
    "dense: lax.dot_general": dataclasses.replace(BASE, dense="dot_general"),
    "dense: reshape to [B*T, D]": dataclasses.replace(BASE, dense="flat"),
    "embed: take(mode=clip)": dataclasses.replace(BASE, embed="take_clip"),
    "embed: one_hot @ table": dataclasses.replace(BASE, embed="one_hot"),
    "attn: dpa additive bias": dataclasses.replace(BASE, attention="dpa_bias"),
    "attn: dpa is_causal=True": dataclasses.replace(BASE, attention="dpa_causal"),
    "attn: einsum+softmax, mask": dataclasses.replace(BASE, attention="einsum_mask"),
    "attn: einsum+softmax, bias": dataclasses.replace(BASE, attention="einsum_bias"),
    "attn: numpy constant mask": dataclasses.replace(BASE, mask="constant"),
    "attn: + masked-row fixup": dataclasses.replace(BASE, masked_row_fixup=True),
    "gelu: exact (erf)": dataclasses.replace(BASE, gelu_approximate=False),
    "loss: log_softmax by hand": dataclasses.replace(BASE, loss="log_softmax"),
    "layers: lax.scan": dataclasses.replace(BASE, stack="scan"),
    # Not one change: the two exact choices hk_core takes (LayerNorm, Linear), together.
    "both: shared-mean ln + [B*T, D]": dataclasses.replace(BASE, layer_norm="centered",
                                                          dense="flat"),
}


def _train_step(loss, tx):
    def step(params, opt_state, tokens, targets):
        value, grads = jax.value_and_grad(loss)(params, tokens, targets)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value
    return step


def hlo_stats(compiled) -> dict[str, int]:
    """Kernels XLA:CPU emits: LLVM loop fusions, YNNPACK (dot/reduce) fusions, fused ops."""
    text = compiled.as_text() or ""
    entry = text[text.find("ENTRY"):]
    return {"loop_fusions": entry.count("kind=kLoop"),
            "ynn_fusions": entry.count('"__ynn_fusion"'),
            "hlo_ops": sum(1 for line in text.splitlines() if " = " in line)}


def measure(cfg: gpt.Config, layers: int, variants: dict[str, Ops], repeats: int) -> dict:
    key = jax.random.PRNGKey(0)
    tokens = jax.random.randint(key, (cfg.batch, cfg.seq), 0, cfg.vocab)
    targets = jnp.roll(tokens, -1, axis=1)
    tx = optax.adamw(1e-3)
    args = {}
    for name, ops in variants.items():
        params = init(ops, cfg, layers, key)
        args[name] = (params, tx.init(params), tokens, targets)

    def lower(name):
        step = _train_step(loss_fn(variants[name], cfg, layers), tx)  # fresh: no trace cache
        return jax.jit(step, donate_argnums=(0, 1)).lower(*args[name])

    names = list(variants)
    samples = {name: [] for name in names}
    losses, stats = {}, {}
    for rep in range(repeats):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            lowered = lower(name)  # a fresh Lowered each time: .compile() is cached per object
            start = time.process_time()
            compiled = lowered.compile()
            samples[name].append(time.process_time() - start)
            if name not in losses:
                fresh = jax.tree.map(jnp.copy, args[name][:2])
                losses[name] = float(compiled(*fresh, *args[name][2:])[2])
                stats[name] = hlo_stats(compiled)
            print(f"  rep {rep} {name:<34} {samples[name][-1]:7.2f}s", file=sys.stderr)
    return {name: {"min": min(s), "median": statistics.median(s), "loss": losses[name],
                   **stats[name]} for name, s in samples.items()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny smoke test (CI)")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated prefixes of variant names")
    args = parser.parse_args(argv)
    if args.quick:
        cfg, layers, repeats = gpt.Config(vocab=64, d_model=32, heads=2, seq=16, batch=2), 2, 1
    else:
        cfg, layers, repeats = gpt.Config(), args.layers, args.repeats
    variants = dict(VARIANTS)
    if args.quick and not args.only:
        variants = dict(list(VARIANTS.items())[:3])
    if args.only:
        prefixes = [p.strip() for p in args.only.split(",")]
        variants = {n: o for n, o in variants.items()
                    if n == next(iter(VARIANTS)) or any(n.startswith(p) for p in prefixes)}
    results = measure(cfg, layers, variants, repeats)
    base_name = next(iter(VARIANTS))
    base, base_loss = results[base_name]["min"], results[base_name]["loss"]
    print(f"B3 compile study on {harness.device_name()}: {layers}-layer GPT train step, "
          f"d_model {cfg.d_model}, seq {cfg.seq}, batch {cfg.batch}, vocab {cfg.vocab}; "
          f"process CPU s, {repeats} interleaved repetitions; ratio = min / baseline min")
    print(f"  {'variant':<34} {'min':>7} {'median':>7} {'ratio':>6} {'loop':>5} {'ynn':>4} "
          f"{'hlo ops':>7}  loss - baseline")
    ratios = {}
    for name, r in results.items():
        ratios[name] = round(r["min"] / base, 3)
        print(f"  {name:<34} {r['min']:7.2f} {r['median']:7.2f} {ratios[name]:6.3f} "
              f"{r['loop_fusions']:5d} {r['ynn_fusions']:4d} {r['hlo_ops']:7d}  "
              f"{r['loss'] - base_loss:+.2e}")
    print(json.dumps({"benchmark": "B3_ops", "device": harness.device_name(),
                      "layers": layers, "results": results, "ratios": ratios, "unit": "s"}))
    return results


if __name__ == "__main__":
    main()
