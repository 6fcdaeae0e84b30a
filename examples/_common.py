"""The training loop, flags and output files shared by the examples (not an example itself).

Every example defines its model, data and loss, then calls ``train(...)`` here, which owns
what is the same everywhere: the common flags, the loop with its progress line, the
metrics file (``metrics.jsonl``) and curve (``curve.png``), the model summary and the last
stdout line (one JSON object of final metrics). Saving and resuming go through the
``Checkpointer`` hook, so adding checkpoints changes ``make_checkpointer`` only.
"""

import json
import logging as std_logging
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

from absl import flags, logging

try:
    import hk_core  # noqa: F401
except ImportError:  # run from a checkout without `pip install .`: use the checkout
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import jax
import numpy as np

import hk_core as hk
from hk_core import training

FLAGS = flags.FLAGS

# JAX logs at INFO that it found no TPU; with absl at INFO (for the progress line) that
# would be printed on every run.
std_logging.getLogger("jax._src.xla_bridge").setLevel(std_logging.WARNING)


def define_flags(*, steps: int | None, batch_size: int, learning_rate: float,
                 quick_steps: int, log_every: int = 100) -> None:
    """Defines the flags every example has, with that example's defaults."""
    flags.DEFINE_integer("steps", steps, "Number of training steps (None: the example's "
                         "default for the chosen model).")
    flags.DEFINE_integer("batch_size", batch_size, "Examples per training step.")
    flags.DEFINE_float("learning_rate", learning_rate, "Peak learning rate of the optimizer.")
    flags.DEFINE_integer("seed", 0, "Seed for the data split, the init and the batches.")
    flags.DEFINE_string(
        "checkpoint_dir", None, "Directory to save checkpoints to and resume from (empty: "
        "no checkpoints).")
    flags.DEFINE_integer("checkpoint_every", 100, "Steps between checkpoints with "
                         "--checkpoint_dir (the last step is always saved).")
    flags.DEFINE_string(
        "workdir", None, "Directory for metrics.jsonl and curve.png (default: a new "
        "temporary directory).")
    flags.DEFINE_bool("quick", False, f"Smoke test for CI: {quick_steps} steps, in seconds.")
    flags.DEFINE_integer("log_every", log_every, "Steps between progress lines.")
    flags.DEFINE_integer("quick_steps", quick_steps, "Steps run with --quick.")


def num_steps() -> int:
    """The number of steps to run: ``--steps``, or ``--quick_steps`` with ``--quick``."""
    return FLAGS.quick_steps if FLAGS.quick else FLAGS.steps


def workdir(name: str) -> pathlib.Path:
    """Returns ``--workdir`` (created if needed), or a new temporary directory."""
    if FLAGS.workdir:
        path = pathlib.Path(FLAGS.workdir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return pathlib.Path(tempfile.mkdtemp(prefix=f"hk_core_{name}_"))


# ------------------------------------------------------------------------------------------
# Model summary


def print_summary(forward: Callable[..., Any], *example_inputs: Any) -> None:
    """Prints a table of the model's modules, shapes and parameter counts.

    Uses ``hk.experimental.tabulate`` when the package has it; otherwise prints every
    parameter and state array with its shape and size.
    """
    tabulate = getattr(hk.experimental, "tabulate", None)
    if tabulate is not None:
        try:
            # The 'config' column (each module's repr) is too wide for a terminal.
            columns = ("module", "owned_params", "input", "output", "params_size",
                       "params_bytes")
            print(tabulate(forward, columns=columns)(*example_inputs))
            return
        except ImportError:  # the `tabulate` package is optional (the `summary` extra)
            pass
    params, state = jax.eval_shape(
        hk.transform_with_state(forward).init, jax.random.key(0), *example_inputs)
    print(params_table(params, state))


def params_table(params: Mapping[str, Mapping[str, Any]],
                 state: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """Formats one line per parameter (and state) array: path, shape, dtype, size."""
    rows = []
    for kind, tree in (("param", params), ("state", state or {})):
        for module_name, bundle in tree.items():
            for name, leaf in jax.tree_util.tree_leaves_with_path(bundle):
                size = int(np.prod(leaf.shape))
                path = f"{module_name}/{jax.tree_util.keystr(name)[2:-2]}"
                rows.append((kind, path, str(tuple(leaf.shape)), str(leaf.dtype), size))
    width = max([len(r[1]) for r in rows] + [4])
    lines = [f"{'kind':5}  {'path':{width}}  {'shape':>14}  {'dtype':8}  {'size':>9}"]
    lines += [f"{k:5}  {p:{width}}  {s:>14}  {d:8}  {n:>9,}" for k, p, s, d, n in rows]
    total = sum(r[4] for r in rows if r[0] == "param")
    lines.append(f"total parameters: {total:,}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# Checkpoint hook


class Checkpointer:
    """Saves and restores the ``TrainState``; this default keeps nothing.

    ``restore`` returns the state to start from (the one given when there is nothing to
    resume); ``save`` is called every ``save_every`` steps and after the last step.
    """

    save_every = 0

    def restore(self, train_state: training.TrainState) -> training.TrainState:
        return train_state

    def save(self, step: int, train_state: training.TrainState) -> None:
        del step, train_state

    def close(self) -> None:
        """Waits for pending writes."""


def make_checkpointer(checkpoint_dir: str | None) -> Checkpointer:
    """Returns the checkpointer for ``--checkpoint_dir``."""
    if not checkpoint_dir:
        return Checkpointer()
    # Imported only when asked for: it loads orbax, which a run without checkpoints skips.
    import _checkpointing
    return _checkpointing.OrbaxCheckpointer(checkpoint_dir, save_every=FLAGS.checkpoint_every)


# ------------------------------------------------------------------------------------------
# Metrics files


class MetricsWriter:
    """Appends one JSON object per record to ``metrics.jsonl`` and keeps them for a plot."""

    def __init__(self, directory: pathlib.Path):
        self.path = directory / "metrics.jsonl"
        self.records: list[dict[str, Any]] = []
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        record = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        self.records.append(record)
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def plot_curve(records: list[dict[str, Any]], path: pathlib.Path) -> pathlib.Path | None:
    """Plots every metric against the step into ``path``; None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")  # files only; no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = sorted({k for r in records for k in r} - {"step"})
    fig, axes = plt.subplots(len(names), 1, figsize=(6, 2.2 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        points = [(r["step"], r[name]) for r in records if name in r]
        ax.plot(*zip(*points), marker="." if len(points) < 50 else None)
        ax.set_ylabel(name)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------
# The loop


def train(
    name: str,
    train_state: training.TrainState,
    train_step: Callable[..., Any],
    batch_fn: Callable[[int], Any],
    *,
    evaluate: Callable[[training.TrainState], Mapping[str, float]],
    eval_every: int | None = None,
    final: Mapping[str, Any] | None = None,
    print_json: bool = True,
) -> dict[str, Any]:
    """Runs the training loop and prints the final metrics as the last line of stdout.

    Args:
        name: The example's name, for the temporary directory.
        train_state: The initial state (replaced by a checkpoint's when resuming).
        train_step: ``(train_state, batch, rng) -> (train_state, metrics)``, e.g. from
            ``hk_core.training.make_train_step``.
        batch_fn: ``step -> batch``; a function of the step number, so a resumed run sees
            the same batches as an uninterrupted one.
        evaluate: ``train_state -> metrics`` on held-out data; run every ``eval_every``
            steps and at the end.
        eval_every: Steps between evaluations; None evaluates only at the end.
        final: Extra entries for the final JSON line (e.g. the data's entropy).
        print_json: Whether to print the final JSON line; False lets the caller add to
            the result and call ``print_result`` itself.

    Returns:
        The final metrics, as printed.
    """
    start = time.perf_counter()
    steps = num_steps()
    out_dir = workdir(name)
    writer = MetricsWriter(out_dir)
    checkpointer = make_checkpointer(FLAGS.checkpoint_dir)
    train_state = checkpointer.restore(train_state)
    first_step = int(train_state.step)
    log_every = min(FLAGS.log_every, max(steps, 1))
    progress = training.ProgressLogger(every_steps=log_every, total_steps=steps)
    rng = jax.random.key(FLAGS.seed + 1)  # not the init key: dropout noise of its own
    logging.info("training %s for %d steps; metrics in %s", name, steps, writer.path)

    train_metrics: dict[str, float] = {}
    for step in range(first_step + 1, steps + 1):
        train_state, metrics = train_step(
            train_state, batch_fn(step), jax.random.fold_in(rng, step))
        if progress.update(step, metrics) is not None:
            train_metrics = {f"train_{k}": v for k, v in progress.last_means.items()}
            writer.write(step, train_metrics)
        if eval_every and step % eval_every == 0 and step != steps:
            writer.write(step, evaluate(train_state))
        if checkpointer.save_every and step % checkpointer.save_every == 0:
            checkpointer.save(step, train_state)

    eval_metrics = dict(evaluate(train_state))
    writer.write(steps, eval_metrics)
    checkpointer.save(steps, train_state)
    checkpointer.close()
    writer.close()
    curve = plot_curve(writer.records, out_dir / "curve.png")
    logging.info("metrics: %s; curve: %s", writer.path,
                 curve or "not drawn (matplotlib is not installed)")
    result = {"step": int(train_state.step), **train_metrics, **eval_metrics,
              **(final or {}), "wall_s": round(time.perf_counter() - start, 2)}
    if print_json:
        print_result(result)
    return result


def print_result(result: Mapping[str, Any]) -> None:
    """Prints the final metrics as one JSON object: the last line of stdout."""
    result = {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}
    sys.stdout.flush()
    print(json.dumps(result), flush=True)
