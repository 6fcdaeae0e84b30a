r"""Trains a small decoder-only transformer to predict the next character of a text.

By default the text is generated here by a small English-like grammar (deterministic, so
nothing is downloaded); --text_file trains on any UTF-8 file instead. The model is
token + position embeddings, a ``hk.layer_stack`` of pre-LayerNorm blocks (causal
``hk.MultiHeadAttention`` and an MLP, each with a residual) and a final ``hk.LayerNorm``.

It prints the text's unigram entropy (the loss of the best model that ignores context) and
the final loss on held-out text, both in nats per character; with context the model should
end well below half the entropy.

    python examples/transformer_lm.py
    python examples/transformer_lm.py --text_file=README.md --steps=3000
    python examples/transformer_lm.py --quick     # a few steps, for CI
    python examples/transformer_lm.py --checkpoint_dir=/tmp/lm    # train, keep checkpoints
    python examples/transformer_lm.py --serve_from=/tmp/lm        # params only; sample text

With --mesh the params are born sharded over a device mesh (``hk_core.distributed``):
axis ``data`` splits each batch, axis ``model`` splits the weights by Megatron-style rules
(``SHARDING_RULES``), and the rules' ``explain()`` table is printed at start. On CPU, make
host devices first:

    XLA_FLAGS=--xla_force_host_platform_device_count=8 \
        python examples/transformer_lm.py --mesh data=4,model=2

On several processes (``jax.distributed``; here 2 on one machine, 4 CPU devices each), start
one per process with the same flags and checkpoint directory; each feeds its slice of
every batch, and a killed run started again resumes from the newest complete step:

    export XLA_FLAGS=--xla_force_host_platform_device_count=4
    python examples/transformer_lm.py --coordinator=127.0.0.1:1234 --num_processes=2 \
        --process_id=0 --mesh data=4,model=2 --checkpoint_dir=/tmp/lm2 &
    python examples/transformer_lm.py --coordinator=127.0.0.1:1234 --num_processes=2 \
        --process_id=1 --mesh data=4,model=2 --checkpoint_dir=/tmp/lm2

On a cluster JAX detects (SLURM, Kubernetes, Cloud TPU), ``--coordinator=auto`` reads all
three from the environment.
"""

import _common  # first: makes hk_core importable from a checkout

import functools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from jax.sharding import PartitionSpec as P

import hk_core as hk
from hk_core import distributed
from hk_core import export
from hk_core import training

_common.define_flags(steps=400, batch_size=32, learning_rate=3e-3, quick_steps=10)
_TEXT_FILE = flags.DEFINE_string(
    "text_file", None, "UTF-8 text to train on; default: text from the built-in grammar.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 64, "Characters of context per example.")
_NUM_LAYERS = flags.DEFINE_integer("num_layers", 2, "Transformer blocks (in a layer_stack).")
_MODEL_SIZE = flags.DEFINE_integer("model_size", 64, "Width of the residual stream.")
_NUM_HEADS = flags.DEFINE_integer("num_heads", 4, "Attention heads per block.")
_MESH = flags.DEFINE_string(
    "mesh", None, "Device mesh to shard over, e.g. 'data=4,model=2' ('data' splits the "
    "batch, 'model' the weights; one size may be -1 for the remaining devices). Default: "
    "one device.")
_SERVE_FROM = flags.DEFINE_string(
    "serve_from", None, "A --checkpoint_dir of an earlier run: restore only its params (the "
    "optimizer state is not read), sample text from them, and exit.")
_QUANTIZE = flags.DEFINE_enum(
    "quantize", None, ["int8"], "After training, also evaluate the params quantized to int8 "
    "weights with per-channel scales (hk_core.export.quantize_int8) and print both eval "
    "losses; with --serve_from, sample from the int8 weights.")
_SAMPLE_CHARS = flags.DEFINE_integer("sample_chars", 200, "Characters sampled by --serve_from.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator", None, "host:port of process 0 for a multi-process run (jax.distributed); "
    "'auto' lets JAX read it, --num_processes and --process_id from the cluster's environment.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index in the run.")
FLAGS = flags.FLAGS

# --- data ---------------------------------------------------------------------------------

_GRAMMAR = {
    "det": ["the", "a", "every", "one", "that"],
    "adj": ["old", "quiet", "red", "small", "brave", "grey", "tired", "clever"],
    "noun": ["sailor", "ship", "dog", "miller", "lantern", "garden", "horse", "king",
             "river", "baker"],
    "verb": ["saw", "found", "carried", "followed", "painted", "heard", "lost", "built"],
    "prep": ["near", "behind", "under", "beside", "across"],
    "place": ["the harbour", "the mill", "the bridge", "the old wall", "the market"],
}


def grammar_text(seed: int, num_sentences: int) -> str:
    """Returns sentences like 'the old sailor saw a red ship near the harbour.'."""
    rng = np.random.default_rng(seed)

    def pick(kind):
        words = _GRAMMAR[kind]
        return words[rng.integers(len(words))]

    def noun_phrase():
        adjective = f"{pick('adj')} " if rng.random() < 0.5 else ""
        return f"{pick('det')} {adjective}{pick('noun')}"

    sentences = []
    for _ in range(num_sentences):
        sentence = f"{noun_phrase()} {pick('verb')} {noun_phrase()}"
        if rng.random() < 0.4:
            sentence += f" {pick('prep')} {pick('place')}"
        sentences.append(sentence + ".")
    return " ".join(sentences)


def load_text(seed: int) -> tuple[str, str]:
    """Returns (train text, held-out text): the file split 90/10, or two grammar samples."""
    if _TEXT_FILE.value:
        text = pathlib.Path(_TEXT_FILE.value).read_text(encoding="utf-8")
        split = int(len(text) * 0.9)
        return text[:split], text[split:]
    return grammar_text(seed, 6000), grammar_text(seed + 1000, 600)


def unigram_entropy(ids: np.ndarray, vocab_size: int) -> float:
    """The entropy of the character frequencies, in nats."""
    p = np.bincount(ids, minlength=vocab_size) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def windows(ids: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Returns ``ids[start:start + length]`` for each start, as ``[len(starts), length]``."""
    return ids[starts[:, None] + np.arange(length)[None, :]]


# --- model --------------------------------------------------------------------------------


def block(x: jax.Array) -> jax.Array:
    """One pre-LayerNorm transformer block on ``[B, T, D]``; the causal mask is built here."""
    seq_len, model_size = x.shape[-2:]
    causal = jnp.tril(jnp.ones((1, 1, seq_len, seq_len), bool))  # [B, H, T, T] broadcast
    # Smaller weights for deeper stacks keep the residual stream's scale near 1.
    init = hk.initializers.VarianceScaling(2.0 / _NUM_LAYERS.value)
    h = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(x)
    attention = hk.MultiHeadAttention(
        num_heads=_NUM_HEADS.value, key_size=model_size // _NUM_HEADS.value,
        model_size=model_size, w_init=init)
    x = x + attention(h, h, h, mask=causal)
    h = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(x)
    h = jax.nn.gelu(hk.Linear(4 * model_size, w_init=init)(h))
    return x + hk.Linear(model_size, w_init=init)(h)


def language_model(tokens: jax.Array, vocab_size: int) -> jax.Array:
    """Maps ``[B, T]`` token ids to ``[B, T, vocab_size]`` next-token logits."""
    model_size = _MODEL_SIZE.value
    x = hk.Embed(vocab_size, model_size)(tokens)
    positions = hk.get_parameter(
        "position_embeddings", [tokens.shape[-1], model_size], x.dtype,
        init=hk.initializers.TruncatedNormal(0.02))
    x = hk.layer_stack(_NUM_LAYERS.value, name="blocks")(block)(x + positions)
    x = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True, name="final_norm")(x)
    return hk.Linear(vocab_size, name="unembed")(x)


# --- distribution (--mesh) ----------------------------------------------------------------

# Megatron-style tensor parallelism: attention heads and the MLP's hidden units are split
# over 'model' (column-parallel in, row-parallel out), so each block needs one all-reduce
# forward. Block weights carry layer_stack's leading [num_layers] axis. The rest (norms,
# biases after a row-parallel matmul, position embeddings, unembed) is replicated.
SHARDING_RULES = [
    (r"multi_head_attention/(query|key|value)/w$", P(None, None, "model")),
    (r"multi_head_attention/(query|key|value)/b$", P(None, "model")),
    (r"multi_head_attention/linear/w$", P(None, "model", None)),
    (r"blocks/linear/w$", P(None, None, "model")),
    (r"blocks/linear/b$", P(None, "model")),
    (r"blocks/linear_1/w$", P(None, "model", None)),
    (r"embed/embeddings$", P(None, "model")),
]


def parse_mesh(text: str) -> dict[str, int]:
    """Parses ``'data=4,model=2'`` into ``{'data': 4, 'model': 2}`` (order kept)."""
    axes = {}
    for part in text.split(","):
        name, sep, size = part.strip().partition("=")
        if not sep or not name or name in axes or not size.strip().lstrip("-").isdigit():
            raise app.UsageError(
                f"--mesh={text!r}: expected comma-separated axis=size pairs such as "
                "'data=4,model=2'.")
        axes[name] = int(size)
    return axes


@functools.cache
def mesh_and_rules() -> tuple[jax.sharding.Mesh, distributed.ShardingRules] | None:
    """The --mesh mesh and the sharding rules, or None without --mesh (one process)."""
    if not _MESH.value and jax.process_count() == 1:
        return None
    axes = parse_mesh(_MESH.value or "data=-1")  # several processes: split batches over all
    try:
        mesh = distributed.make_mesh(axes)
    except ValueError as e:
        raise app.UsageError(
            f"--mesh: {e} On CPU, set XLA_FLAGS=--xla_force_host_platform_device_count=N "
            "for N host devices.") from e
    return mesh, distributed.ShardingRules(SHARDING_RULES)


def init_params(model, rng, example):
    """Initializes the params: on one device, or born sharded over --mesh (explained)."""
    if mesh_and_rules() is None:
        return jax.jit(model.init)(rng, example)
    mesh, rules = mesh_and_rules()
    params = distributed.sharded_init(model, mesh, rules, rng, example)
    rules.explain(params, mesh)
    return params


def distribute(train_state, batch_fn):
    """Places the state and batches: as they are, or sharded by the --mesh rules.

    Adam's moments take their param's sharding; each batch is split over 'data'.
    """
    if mesh_and_rules() is None:
        return train_state, batch_fn
    mesh, rules = mesh_and_rules()
    train_state = jax.device_put(train_state, rules.shardings(train_state, mesh))
    axis = "data" if "data" in mesh.shape else None
    count, index = jax.process_count(), jax.process_index()

    def local_batch(step):  # this process's rows of the global batch (all of it if alone)
        batch = batch_fn(step)
        rows = len(batch) // count
        return batch[index * rows:(index + 1) * rows]

    return train_state, lambda step: distributed.shard_batch(local_batch(step), mesh, axis)


def join_processes() -> None:
    """Joins a multi-process run when --coordinator is given (before any other JAX call)."""
    if _COORDINATOR.value == "auto":
        distributed.initialize()
    elif _COORDINATOR.value:
        distributed.initialize(_COORDINATOR.value, num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)


def sample(apply, params, prompt: np.ndarray, num_chars: int, seed: int) -> np.ndarray:
    """Samples ``num_chars`` ids after ``prompt`` (``[seq_len]``), one window at a time.

    The position embeddings fix the context at ``seq_len``, so each step feeds the last
    ``seq_len`` ids and samples from the logits of the final position.
    """
    @jax.jit
    def next_id(params, window, key):
        return jax.random.categorical(key, apply(params, window[None])[0, -1])

    ids = list(prompt)
    key = jax.random.key(seed)
    for i in range(num_chars):
        window = np.asarray(ids[-len(prompt):], np.int32)
        ids.append(int(next_id(params, window, jax.random.fold_in(key, i))))
    return np.asarray(ids[len(prompt):])


def model_fn(vocab_size: int):
    """The forward function ``[B, T] ids -> [B, T, vocab] logits`` that is transformed."""
    return functools.partial(language_model, vocab_size=vocab_size)


def serve(model, example, vocab: list[str], eval_ids: np.ndarray) -> None:
    """--serve_from: restores the params alone from a checkpoint and samples text."""
    import hk_core.checkpoint  # loads orbax: only when serving

    abstract = jax.eval_shape(model.init, jax.random.key(0), example)  # no params computed
    start = time.perf_counter()
    restored = hk_core.checkpoint.restore_for_inference(
        _SERVE_FROM.value, target={"params": abstract})
    params = restored["params"]
    print(f"restored params ({sum(x.nbytes for x in jax.tree.leaves(params)):,} bytes, no "
          f"optimizer state) from {_SERVE_FROM.value} in {time.perf_counter() - start:.2f} s")
    apply = model.apply
    if _QUANTIZE.value:
        forward = model_fn(len(vocab))
        params = export.quantize_int8(forward, params, example)
        apply = hk.without_apply_rng(hk.transform(export.int8_weights(forward))).apply
        print(f"sampling from int8 weights ({sum(x.nbytes for x in jax.tree.leaves(params)):,} "
              "bytes of params in all)")
    prompt = eval_ids[:_SEQ_LEN.value]
    ids = sample(apply, params, prompt, _SAMPLE_CHARS.value, FLAGS.seed)
    print(f"prompt: {''.join(vocab[i] for i in prompt)!r}")
    print(f"sample: {''.join(vocab[i] for i in ids)!r}")


def main(argv):
    del argv
    join_processes()
    train_text, eval_text = load_text(FLAGS.seed)
    vocab = sorted(set(train_text) | set(eval_text))
    index = {c: i for i, c in enumerate(vocab)}
    train_ids = np.array([index[c] for c in train_text], np.int32)
    eval_ids = np.array([index[c] for c in eval_text], np.int32)
    entropy = unigram_entropy(train_ids, len(vocab))
    print(f"text: {len(train_ids):,} train and {len(eval_ids):,} held-out characters, "
          f"vocabulary {len(vocab)}; unigram entropy {entropy:.4f} nats/char")

    seq_len = _SEQ_LEN.value
    forward = model_fn(len(vocab))
    model = hk.without_apply_rng(hk.transform(forward))
    example = jnp.zeros((2, seq_len), jnp.int32)
    if _SERVE_FROM.value:
        serve(model, example, vocab, eval_ids)
        return
    _common.print_summary(forward, example)

    def loss_fn(params, state, rng, batch):
        del state, rng
        logits = model.apply(params, batch[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[:, 1:]).mean()

    steps = _common.num_steps()
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, FLAGS.learning_rate, warmup_steps=min(100, steps // 10 + 1), decay_steps=steps)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=1e-2))
    params = init_params(model, jax.random.key(FLAGS.seed), example)
    train_state = training.TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    train_step = training.make_train_step(loss_fn)

    def batch_fn(step):
        rng = np.random.default_rng([FLAGS.seed, step])
        starts = rng.integers(0, len(train_ids) - seq_len - 1, size=FLAGS.batch_size)
        return windows(train_ids, starts, seq_len + 1)

    train_state, batch_fn = distribute(train_state, batch_fn)

    # A fixed set of held-out windows, the same at every evaluation.
    eval_starts = np.arange(0, len(eval_ids) - seq_len - 1, seq_len)[:128]
    eval_batch = windows(eval_ids, eval_starts, seq_len + 1)
    eval_loss = jax.jit(lambda params: loss_fn(params, None, None, eval_batch))

    last = {}

    def evaluate(train_state):
        last["params"] = train_state.params  # the final call sees the trained params
        return {"eval_loss": float(eval_loss(train_state.params))}

    result = _common.train(
        "transformer_lm", train_state, train_step, batch_fn, evaluate=evaluate,
        eval_every=200, final={"unigram_entropy": entropy}, print_json=False)
    print(f"final eval loss {result['eval_loss']:.4f} nats/char = "
          f"{result['eval_loss'] / entropy:.2f} x unigram entropy {entropy:.4f}")
    if _QUANTIZE.value:
        params = jax.device_get(last["params"])
        qparams = export.quantize_int8(forward, params, example)
        int8_model = hk.without_apply_rng(hk.transform(export.int8_weights(forward)))
        logits = jax.jit(int8_model.apply)(qparams, eval_batch[:, :-1])
        result["int8_eval_loss"] = float(optax.softmax_cross_entropy_with_integer_labels(
            logits, eval_batch[:, 1:]).mean())
        change = result["int8_eval_loss"] / result["eval_loss"] - 1
        print(f"int8 weights: eval loss {result['int8_eval_loss']:.4f} (float32 "
              f"{result['eval_loss']:.4f}, {change:+.2%})")
    _common.print_result({**result, "loss_over_entropy": result["eval_loss"] / entropy})


if __name__ == "__main__":
    app.run(main)
