r"""Classifies scikit-learn's bundled 8x8 handwritten digits with an MLP or a ConvNet.

The data (1,797 images, 10 classes) ships with scikit-learn, so this runs offline. A
stratified 20% of it, fixed by --seed, is held out and only used for the test accuracy.

    python examples/digits.py                 # MLP, about 98% test accuracy
    python examples/digits.py --model conv    # ConvNet
    python examples/digits.py --quick         # a few steps, for CI
    python examples/digits.py --quantize int8 # also evaluate int8 weights
    python examples/digits.py --prune 0.8     # train with 80% of the weights pruned

    python examples/digits.py --help          # every flag, the shared ones included

A run writes metrics.jsonl and curve.png under --workdir (default
./runs/digits/<date-time>, printed first) and keeps JAX's compilation cache in
./runs/digits/jax_cache, so the next run starts without compiling. The last line of stdout
is one JSON object of final metrics, e.g.
{"step": 1500, "train_loss": 0.01, "test_accuracy": 0.98, "wall_s": 6.1}.
"""

import _common  # first: makes hk_core importable from a checkout

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from sklearn import datasets, model_selection

import hk_core as hk
from hk_core import export
from hk_core import training

_common.define_flags(steps=None, batch_size=128, learning_rate=3e-3, quick_steps=20)
# A ConvNet learns these digits in fewer steps, each of which costs more.
DEFAULT_STEPS = {"mlp": 1500, "conv": 500}
_MODEL = flags.DEFINE_enum("model", "mlp", ["mlp", "conv"], "Which classifier to train.")
_DROPOUT = flags.DEFINE_float("dropout", 0.2, "Dropout rate in training (MLP only).")
_WEIGHT_DECAY = flags.DEFINE_float("weight_decay", 1e-4, "AdamW weight decay.")
_QUANTIZE = flags.DEFINE_enum(
    "quantize", None, ["int8"], "After training, also evaluate the params quantized to int8 "
    "weights with per-channel scales (hk_core.export.quantize_int8) and print both accuracies.")
_PRUNE = flags.DEFINE_float(
    "prune", 0.0, "Target fraction of zeros in the Linear/Conv weights: magnitude pruning "
    "(hk_core.training.magnitude_pruning), sparsity rising on a cubic schedule from 10% to "
    "70% of the steps. 0: dense.")
FLAGS = flags.FLAGS

NUM_CLASSES = 10


def load_data(seed: int) -> dict[str, np.ndarray]:
    """Returns train and test images ``[N, 8, 8, 1]`` in [0, 1] and integer labels."""
    digits = datasets.load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]  # pixels are 0..16
    x_train, x_test, y_train, y_test = model_selection.train_test_split(
        images, digits.target.astype(np.int32), test_size=0.2, random_state=seed,
        stratify=digits.target)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def mlp(images: jax.Array, is_training: bool) -> jax.Array:
    x = hk.Flatten()(images)
    rate = _DROPOUT.value if is_training else None
    return hk.nets.MLP([256, 256, NUM_CLASSES])(
        x, dropout_rate=rate, rng=hk.next_rng_key() if rate else None)


def convnet(images: jax.Array, is_training: bool) -> jax.Array:
    del is_training  # no dropout: weight sharing regularises enough on this data
    x = images
    for channels in (32, 64):  # 8x8 -> 4x4 -> 2x2
        x = jax.nn.relu(hk.Conv2D(channels, kernel_shape=3)(x))
        x = hk.max_pool(x, window_shape=(1, 2, 2, 1), strides=(1, 2, 2, 1), padding="SAME")
    x = hk.Flatten()(x)  # [B, 2, 2, 64] -> [B, 256]
    return hk.nets.MLP([128, NUM_CLASSES])(x)


def main(argv):
    del argv
    if FLAGS.steps is None:
        FLAGS.steps = DEFAULT_STEPS[_MODEL.value]
    data = load_data(FLAGS.seed)
    network = {"mlp": mlp, "conv": convnet}[_MODEL.value]
    model = hk.transform(network)
    example = data["x_train"][:2]
    print(f"digits: {len(data['x_train'])} train, {len(data['x_test'])} test images; "
          f"model {_MODEL.value}")
    _common.print_summary(lambda x: network(x, is_training=False), example)

    def loss_fn(params, state, rng, batch):
        images, labels = batch
        logits = model.apply(params, rng, images, is_training=True)
        one_hot = jax.nn.one_hot(labels, NUM_CLASSES)
        loss = optax.softmax_cross_entropy(logits, one_hot).mean()
        accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
        return loss, {"accuracy": accuracy}

    steps = _common.num_steps()
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, FLAGS.learning_rate, warmup_steps=min(100, steps // 10 + 1), decay_steps=steps)
    # Jitted: one compilation instead of one per initializer op.
    init = jax.jit(functools.partial(model.init, is_training=True))
    tx = optax.adamw(schedule, weight_decay=_WEIGHT_DECAY.value)
    if _PRUNE.value:
        sparsity = optax.polynomial_schedule(
            0.0, _PRUNE.value, power=3, transition_steps=int(0.6 * steps),
            transition_begin=int(0.1 * steps))
        tx = optax.chain(tx, training.magnitude_pruning(sparsity))
    train_state = training.TrainState.create(
        apply_fn=model.apply, params=init(jax.random.key(FLAGS.seed), example), tx=tx)
    train_step = training.make_train_step(loss_fn, has_aux=True)

    @jax.jit
    def predict(params, images):
        return jnp.argmax(model.apply(params, None, images, is_training=False), -1)

    last = {}

    def evaluate(train_state):
        last["params"] = train_state.params  # the final call sees the trained params
        predictions = predict(train_state.params, data["x_test"])
        return {"test_accuracy": float(np.mean(np.asarray(predictions) == data["y_test"]))}

    num_train = len(data["x_train"])

    def batch_fn(step):
        # Shuffle once per epoch, from the seed and the epoch alone, so a resumed run
        # sees the same batches.
        per_epoch = num_train // FLAGS.batch_size
        epoch, index = divmod(step - 1, per_epoch)
        order = np.random.default_rng([FLAGS.seed, epoch]).permutation(num_train)
        take = order[index * FLAGS.batch_size:(index + 1) * FLAGS.batch_size]
        return data["x_train"][take], data["y_train"][take]

    result = _common.train("digits", train_state, train_step, batch_fn, evaluate=evaluate,
                           eval_every=500, final={"model": _MODEL.value}, print_json=False)
    if _PRUNE.value:
        result["sparsity"] = training.sparsity_of(last["params"])
        print(f"pruned: {result['sparsity']:.1%} zeros in the Linear/Conv weights, test "
              f"accuracy {result['test_accuracy']:.4f}")
    if _QUANTIZE.value:
        result.update(evaluate_int8(network, last["params"], data))
    _common.print_result(result)


def evaluate_int8(network, params, data) -> dict[str, float]:
    """Quantizes the weights to int8 and prints test accuracy and bytes against float32."""
    forward = functools.partial(network, is_training=False)
    qparams = export.quantize_int8(forward, params, data["x_test"][:2])
    apply = jax.jit(hk.transform(export.int8_weights(forward)).apply)
    predictions = jnp.argmax(apply(qparams, None, data["x_test"]), -1)
    accuracy = float(np.mean(np.asarray(predictions) == data["y_test"]))
    quantized = [m for m, b in qparams.items() if b.get("w") is not None
                 and b["w"].dtype == jnp.int8]
    f32_bytes = sum(params[m]["w"].nbytes for m in quantized)
    int8_bytes = sum(qparams[m]["w"].nbytes + qparams[m]["w@scale"].nbytes for m in quantized)
    float_accuracy = float(np.mean(np.asarray(jnp.argmax(
        hk.transform(forward).apply(params, None, data["x_test"]), -1)) == data["y_test"]))
    print(f"int8 weights: test accuracy {accuracy:.4f} (float32 {float_accuracy:.4f}); "
          f"{len(quantized)} weights take {int8_bytes:,} bytes = "
          f"{int8_bytes / f32_bytes:.3f} x float32")
    return {"int8_test_accuracy": accuracy, "int8_bytes_ratio": int8_bytes / f32_bytes}


if __name__ == "__main__":
    app.run(main)
