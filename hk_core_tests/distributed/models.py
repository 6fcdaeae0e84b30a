"""Small models, Megatron-style rules and a train step shared by the distributed tests.

Importable by the two-process worker too, so nothing here touches jax at import time beyond
what a plain ``import jax`` does.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import hk_core as hk
from hk_core import distributed
from hk_core import training

VOCAB, WIDTH, HEADS, HIDDEN, LAYERS = 16, 16, 4, 32, 1


def _norm(x):
    # Parameter-free layer norm: keeps the model to hk.Linear params only.
    mean = x.mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-5)


class Block(hk.Module):
    """A pre-norm transformer block built from hk.Linear and jax.nn.dot_product_attention."""

    def __call__(self, x):
        batch, length, width = x.shape
        h = _norm(x)
        # No q/k/v biases: the key bias gets an exactly-zero gradient (softmax is shift
        # invariant), which Adam would turn into full-size steps on rounding noise.
        heads = [hk.Linear(width, with_bias=False, name=n)(h)
                 .reshape(batch, length, HEADS, width // HEADS) for n in ("query", "key", "value")]
        attended = jax.nn.dot_product_attention(*heads, is_causal=True)
        x = x + hk.Linear(width, name="attn_out")(attended.reshape(batch, length, width))
        h = jax.nn.gelu(hk.Linear(HIDDEN, name="mlp_in")(_norm(x)))
        return x + hk.Linear(width, name="mlp_out")(h)


def transformer_logits(tokens):
    x = hk.Linear(WIDTH, with_bias=False, name="embed")(jax.nn.one_hot(tokens, VOCAB))
    for _ in range(LAYERS):
        x = Block()(x)
    return hk.Linear(VOCAB, name="unembed")(_norm(x))


def mlp_logits(tokens):
    x = jax.nn.one_hot(tokens, VOCAB).reshape(tokens.shape[0], -1)
    return hk.nets.MLP([HIDDEN, HIDDEN, VOCAB])(x)[:, None, :]


# Megatron-LM: column-parallel in-projections (outputs split over "model"), row-parallel
# out-projections (inputs split), so each block needs one all-reduce forward.
TRANSFORMER_RULES = [
    (r"(query|key|value|mlp_in)/w$", P(None, "model")),
    (r"mlp_in/b$", P("model")),
    (r"(attn_out|mlp_out)/w$", P("model", None)),
    (r"embed/w$", P("model", None)),
    (r"unembed/w$", P(None, "model")),
    (r"unembed/b$", P("model")),
]
MLP_RULES = [
    (r"linear_0/w$", P(None, "model")),
    (r"linear_0/b$", P("model")),
    (r"linear_1/w$", P("model", None)),
]
MODELS = {"transformer": (transformer_logits, TRANSFORMER_RULES),
          "mlp": (mlp_logits, MLP_RULES)}


def batch(seed=0, size=16, length=8):
    tokens = np.random.default_rng(seed).integers(0, VOCAB, (size, length + 1)).astype(np.int32)
    return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}


def transformed(model):
    return hk.without_apply_rng(hk.transform(MODELS[model][0]))


def rules(model, strict=False):
    return distributed.ShardingRules(MODELS[model][1], strict=strict)


def loss_fn(apply, params, data):
    logits = apply(params, data["inputs"])
    targets = data["targets"][:, -logits.shape[1]:]
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()


def create_state(model, params, learning_rate=1e-2):
    return training.TrainState.create(apply_fn=transformed(model).apply, params=params,
                                      tx=optax.adam(learning_rate))


def step(ts, data):
    loss, grads = jax.value_and_grad(lambda p: loss_fn(ts.apply_fn, p, data))(ts.params)
    return ts.apply_gradients(grads=grads), loss


def sharded_step(ts, data, mesh, state_rules, batch_axis="data"):
    """``step`` jitted with the rules' shardings in and out (params stay where they live)."""
    ts_shardings = state_rules.shardings(ts, mesh)
    data_spec = P(batch_axis) if batch_axis in mesh.shape else P()
    data_shardings = jax.tree.map(lambda _: NamedSharding(mesh, data_spec), data)
    return jax.jit(step, in_shardings=(ts_shardings, data_shardings),
                   out_shardings=(ts_shardings, NamedSharding(mesh, P())))


def train(ts, data, steps, step_fn=None):
    step_fn = jax.jit(step) if step_fn is None else step_fn
    losses = []
    for _ in range(steps):
        ts, loss = step_fn(ts, data)
        losses.append(loss)
    return ts, jnp.stack(losses)
