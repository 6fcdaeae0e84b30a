r"""Trains a small ResNet with BatchNorm on synthetic images of shapes.

Each 16x16 RGB image holds one randomly placed, randomly coloured shape on a noisy
background; the class is the shape (horizontal bar, vertical bar, filled square, hollow
square), never the colour or the position. Training batches are drawn fresh at every step
from the seed and the step number; the test set is a fixed sample from another seed.

BatchNorm keeps running averages of the batch statistics as model state
(``hk.transform_with_state``): the train step threads that state through, and the test
accuracy is measured in eval mode (``is_training=False``), i.e. with those averages.

    python examples/resnet.py
    python examples/resnet.py --quick     # a few steps, for CI
"""

import _common  # first: makes hk_core importable from a checkout

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

import hk_core as hk
from hk_core import training

_common.define_flags(steps=200, batch_size=64, learning_rate=3e-3, quick_steps=10,
                     log_every=50)
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 16, "Height and width of the images.")
_TEST_SIZE = flags.DEFINE_integer("test_size", 512, "Number of test images.")
FLAGS = flags.FLAGS

CLASSES = ("horizontal bar", "vertical bar", "filled square", "hollow square")

# --- data ---------------------------------------------------------------------------------


def _shape_mask(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean ``[size, size]`` mask holding one shape of the given class."""
    mask = np.zeros((size, size), bool)
    if kind in (0, 1):  # a bar: long and two pixels thick
        length, offset = rng.integers(size // 2, size - 2), rng.integers(1, size - 3)
        start = rng.integers(0, size - length)
        if kind == 0:
            mask[offset:offset + 2, start:start + length] = True
        else:
            mask[start:start + length, offset:offset + 2] = True
    else:  # a square, filled or only its outline
        side = rng.integers(5, size // 2 + 2)
        top, left = rng.integers(0, size - side, size=2)
        mask[top:top + side, left:left + side] = True
        if kind == 3:
            mask[top + 1:top + side - 1, left + 1:left + side - 1] = False
    return mask


def make_images(seed: int, step: int, count: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``count`` images ``[count, size, size, 3]`` in [0, 1] and their labels."""
    rng = np.random.default_rng([seed, step])
    labels = rng.integers(0, len(CLASSES), size=count).astype(np.int32)
    images = rng.uniform(0.0, 0.3, size=(count, size, size, 3)).astype(np.float32)
    for image, label in zip(images, labels):
        colour = rng.uniform(0.5, 1.0, size=3)
        image[_shape_mask(int(label), size, rng)] = colour
    return images, labels


# --- model --------------------------------------------------------------------------------


def batch_norm() -> hk.BatchNorm:
    # A fast decay so the averages used in eval mode settle within a few hundred steps.
    return hk.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9)


class ResidualBlock(hk.Module):
    """conv-BN-relu-conv-BN plus a shortcut (projected when the shape changes), then relu."""

    def __init__(self, channels: int, stride: int, name: str | None = None):
        super().__init__(name=name)
        self.channels = channels
        self.stride = stride

    def __call__(self, x: jax.Array, is_training: bool) -> jax.Array:
        shortcut = x
        if self.stride != 1 or x.shape[-1] != self.channels:
            shortcut = hk.Conv2D(self.channels, 1, stride=self.stride, with_bias=False,
                                 name="shortcut_conv")(x)
            shortcut = batch_norm()(shortcut, is_training)
        h = hk.Conv2D(self.channels, 3, stride=self.stride, with_bias=False)(x)
        h = jax.nn.relu(batch_norm()(h, is_training))
        h = hk.Conv2D(self.channels, 3, with_bias=False)(h)
        h = batch_norm()(h, is_training)
        return jax.nn.relu(h + shortcut)


def resnet(images: jax.Array, is_training: bool) -> jax.Array:
    """A stem and three residual blocks (16, 32, 64 channels), then average-pool and logits."""
    x = hk.Conv2D(16, 3, with_bias=False, name="stem")(images)
    x = jax.nn.relu(batch_norm()(x, is_training))
    for channels, stride in ((16, 1), (32, 2), (64, 2)):
        x = ResidualBlock(channels, stride)(x, is_training)
    x = jnp.mean(x, axis=(1, 2))
    return hk.Linear(len(CLASSES), name="logits")(x)


def main(argv):
    del argv
    size = _IMAGE_SIZE.value
    model = hk.transform_with_state(resnet)
    example, _ = make_images(FLAGS.seed, 0, 2, size)
    print(f"shapes: {', '.join(CLASSES)}; {size}x{size} RGB images")
    _common.print_summary(functools.partial(resnet, is_training=True), example)

    def loss_fn(params, state, rng, batch):
        images, labels = batch
        logits, state = model.apply(params, state, rng, images, is_training=True)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
        return loss, (state, {"accuracy": accuracy})

    steps = _common.num_steps()
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, FLAGS.learning_rate, warmup_steps=min(50, steps // 10 + 1), decay_steps=steps)
    init = jax.jit(functools.partial(model.init, is_training=True))
    params, state = init(jax.random.key(FLAGS.seed), example)
    train_state = training.TrainState.create(
        apply_fn=model.apply, params=params, state=state,
        tx=optax.adamw(schedule, weight_decay=1e-4))
    train_step = training.make_train_step(loss_fn, has_aux=True, has_state=True)

    def batch_fn(step):
        return make_images(FLAGS.seed, step, FLAGS.batch_size, size)

    test_images, test_labels = make_images(FLAGS.seed + 10_000, 0, _TEST_SIZE.value, size)

    @jax.jit
    def predict(params, state):
        logits, _ = model.apply(params, state, None, test_images, is_training=False)
        return jnp.argmax(logits, -1)

    def evaluate(train_state):
        predictions = np.asarray(predict(train_state.params, train_state.state))
        return {"test_accuracy": float(np.mean(predictions == test_labels))}

    _common.train("resnet", train_state, train_step, batch_fn, evaluate=evaluate,
                  eval_every=100)


if __name__ == "__main__":
    app.run(main)
