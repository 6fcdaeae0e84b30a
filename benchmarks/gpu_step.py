"""B4 on an accelerator: the GPT train step in bf16 with f32 master weights, plus MFU.

hk_core runs the model of ``gpt.py`` under ``hk.mixed_precision`` policies (params float32,
compute bfloat16, logits float32; gpt.py's ``pos`` table is made in the residual dtype,
bfloat16); the raw-JAX twin casts the same float32 params to
bfloat16 inside its loss. Both call ``jax.nn.dot_product_attention``; the twin asks for
``implementation=ATTN_IMPL`` and hk_core's ``MultiHeadAttention`` picks its kernel itself,
so the HLO check below shows whether it reached cuDNN's fused attention (a custom call whose
target contains ``fmha``), with and without a causal mask.

MFU = model FLOPs per step / step time / the device's peak dense bf16 FLOP/s. Model FLOPs
count the matmuls of the forward and backward passes (6 per parameter per token, as in
Kaplan et al. 2020) plus attention's two ``T x T`` matmuls (forward and backward: 12 L T d
per token). Run: ``python benchmarks/gpu_step.py [--quick]``; ``--quick`` runs a tiny
model on any backend (the CPU smoke test CI runs).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import gpt  # noqa: E402
import harness  # noqa: E402
import hk_core as hk  # noqa: E402

# Peak dense bf16 tensor-core FLOP/s by device kind (vendor data sheets, SXM parts).
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12}
_POLICY = "params=float32,compute=bfloat16,output=bfloat16"
_MODULES = (hk.Linear, hk.LayerNorm, hk.MultiHeadAttention, hk.Embed)


def peak_flops(device) -> float | None:
    """The peak dense bf16 FLOP/s of ``device``, or None where unknown (e.g. a CPU)."""
    kind = getattr(device, "device_kind", "")
    return next((flops for name, flops in PEAK_BF16_FLOPS.items() if name in kind), None)


def model_flops_per_step(cfg: gpt.Config, layers: int, n_params: int) -> float:
    tokens = cfg.batch * cfg.seq
    return 6.0 * n_params * tokens + 12.0 * layers * cfg.seq * cfg.d_model * tokens


def raw_bf16_loss(cfg: gpt.Config, layers: int, attn_impl: str | None):
    """The raw twin in bf16: f32 master params cast once per step, f32 logits."""

    def block(p, x):
        b, t, d = x.shape
        heads, head = cfg.heads, d // cfg.heads
        h = gpt._layer_norm(p["ln_attn"], x)
        q, k, v = (gpt._dense(p[n], h).reshape(b, t, heads, head) for n in ("q", "k", "v"))
        attn = jax.nn.dot_product_attention(q, k, v, mask=gpt._causal(t),
                                            implementation=attn_impl)
        x = x + gpt._dense(p["o"], attn.reshape(b, t, d))
        h = gpt._layer_norm(p["ln_mlp"], x)
        return x + gpt._dense(p["down"], jax.nn.gelu(gpt._dense(p["up"], h)))

    def loss(params, tokens, targets):
        p = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
        x = p["embed"][tokens] + p["pos"]
        for i in range(layers):
            x = block(p[f"block_{i}"], x)
        logits = gpt._dense(p["head"], gpt._layer_norm(p["ln_f"], x)).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

    return loss


def _set_policies(enable: bool) -> None:
    for cls in _MODULES:
        if enable:
            hk.mixed_precision.set_policy(cls, _POLICY)
        else:
            hk.mixed_precision.clear_policy(cls)


def _step(loss, tx):
    def step(params, opt_state, tokens, targets):
        value, grads = jax.value_and_grad(loss)(params, tokens, targets)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value
    return jax.jit(step, donate_argnums=(0, 1))


def attention_hlo_check(cfg: gpt.Config) -> dict:
    """Whether hk_core's MultiHeadAttention compiles to cuDNN's fused attention, per mask."""
    out = {}
    x = jnp.zeros([cfg.batch, cfg.seq, cfg.d_model], jnp.bfloat16)
    for label, mask in (("causal_mask", gpt._causal(cfg.seq)), ("no_mask", None)):
        def fwd(x, mask=mask):
            mha = hk.MultiHeadAttention(cfg.heads, cfg.d_model // cfg.heads,
                                        w_init=hk.initializers.VarianceScaling(1.0))
            return mha(x, x, x, mask=mask).astype(jnp.float32).sum()
        f = hk.without_apply_rng(hk.transform(fwd))
        params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), f.init(jax.random.PRNGKey(0), x))
        hlo = jax.jit(jax.grad(f.apply)).lower(params, x).compile().as_text()
        out[label] = {"fused_custom_call": "fmha" in hlo.lower(),
                      "custom_calls": sorted({line.split('custom_call_target="')[1].split('"')[0]
                                              for line in hlo.splitlines()
                                              if 'custom_call_target="' in line})}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny model, any backend")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--attn-impl", default="auto", choices=["auto", "cudnn", "xla"],
                        help="the raw twin's attention (auto: cudnn on GPU, xla elsewhere)")
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    on_gpu = device.platform == "gpu"
    attn_impl = {"auto": "cudnn" if on_gpu else "xla"}.get(args.attn_impl, args.attn_impl)
    if args.quick:
        cfg, layers = gpt.Config(vocab=64, d_model=32, heads=2, seq=16, batch=2), 2
    else:
        cfg, layers = gpt.Config(vocab=32768, d_model=768, heads=12, seq=1024, batch=8), args.layers
    # gpt.py's model casts the embedding to cfg.dtype, so the residual stream is bf16 in both.
    cfg = gpt.Config(**{**cfg.__dict__, "dtype": "bfloat16"})
    key = jax.random.PRNGKey(0)
    tokens = jax.random.randint(key, (cfg.batch, cfg.seq), 0, cfg.vocab)
    targets = jnp.roll(tokens, -1, axis=1)
    tx = optax.adamw(1e-4)

    _set_policies(True)
    try:
        hk_model = gpt.hk_loss_fn(cfg, layers, stacked=False)
        hk_params = hk_model.init(key, tokens, targets)
        hk_step = _step(hk_model.apply, tx)
        hk_compiled = hk_step.lower(hk_params, tx.init(hk_params), tokens, targets).compile()
        hlo = attention_hlo_check(cfg)
    finally:
        _set_policies(False)
    raw_params = gpt.raw_init(gpt.Config(**{**cfg.__dict__, "dtype": "float32"}), layers, key)
    n_params = gpt._count(hk_params)
    assert n_params == gpt._count(raw_params), (n_params, gpt._count(raw_params))
    raw_step = _step(raw_bf16_loss(cfg, layers, attn_impl), tx)
    raw_compiled = raw_step.lower(raw_params, tx.init(raw_params), tokens, targets).compile()

    state = {"hk_core": [hk_params, tx.init(hk_params)], "raw_jax": [raw_params, tx.init(raw_params)]}
    compiled = {"hk_core": hk_compiled, "raw_jax": raw_compiled}

    def stepper(name):
        def call():
            params, opt = state[name]
            params, opt, loss = compiled[name](params, opt, tokens, targets)
            state[name] = [params, opt]
            return loss
        return call

    repeats = args.repeats or (2 if args.quick else 20)
    times = harness.interleaved({n: stepper(n) for n in compiled}, repeats, 3 if args.quick else 10)
    flops = model_flops_per_step(cfg, layers, n_params)
    peak = peak_flops(device)
    mfu = {name: (flops / t["min"] / peak if peak else None) for name, t in times.items()}
    extra = {"config": {**cfg.__dict__, "layers": layers, "dtype": "bf16 compute, f32 params",
                        "raw_attention": attn_impl},
             "params": n_params, "model_tflops_per_step": flops / 1e12,
             "peak_bf16_tflops": peak / 1e12 if peak else None, "mfu": mfu,
             "attention_hlo": hlo, "jax": jax.__version__}
    payload = harness.report("B4_gpu", {f"step_L{layers}_bf16": times}, unit="ms", scale=1e3,
                             extra=extra)
    print("MFU:", {k: (f"{v:.1%}" if v is not None else "n/a (unknown peak)") for k, v in mfu.items()})
    print("cuDNN fused attention in hk_core's MultiHeadAttention:",
          {k: v["fused_custom_call"] for k, v in hlo.items()})
    print(json.dumps({"benchmark": "B4_gpu_summary", "device": harness.device_name(),
                      "mfu": mfu, "attention_hlo": hlo}))
    return payload


if __name__ == "__main__":
    main()
