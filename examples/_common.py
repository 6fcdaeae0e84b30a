"""The training loop, flags and output files shared by the examples (not an example itself).

Every example defines its model, data and loss, then calls ``train(...)`` here, which owns
what is the same everywhere: the common flags (listed by every example's ``--help``), the
run directory (``--workdir``, printed at start), JAX's persistent compilation cache, the
loop with its progress bar, the metrics file (``metrics.jsonl``) and curve (``curve.png``),
the model summary and the last stdout line (one JSON object of final metrics). Saving and
resuming go through the ``Checkpointer`` hook, so adding checkpoints changes
``make_checkpointer`` only.
"""

import datetime
import json
import logging as std_logging
import pathlib
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from absl import app, flags, logging

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


_EXAMPLES_DIR = pathlib.Path(__file__).resolve().parent
_RUN: dict[str, Any] = {}  # the example's name, workdir and compile-cache counts


def define_flags(*, steps: int | None, batch_size: int, learning_rate: float,
                 quick_steps: int, log_every: int = 100) -> None:
    """Defines the flags every example has, with that example's defaults.

    Also lists them in the example's ``--help`` (absl shows only the main module's own
    flags there) and arranges for the run directory and the compilation cache to be set
    up once the flags are parsed, before ``main`` compiles anything.
    """
    name = pathlib.Path(sys.argv[0]).stem
    flags.DEFINE_integer("steps", steps, "Number of training steps (None: the example's "
                         "default for the chosen model).")
    flags.DEFINE_integer("batch_size", batch_size, "Examples per training step.")
    flags.DEFINE_float("learning_rate", learning_rate, "Peak learning rate of the optimizer.")
    flags.DEFINE_integer("seed", 0, "Seed for the data split, the init and the batches.")
    flags.DEFINE_string(
        "checkpoint_dir", None, "Directory to save checkpoints to and resume from (empty: "
        "no checkpoints). Run again with the same flags to resume.")
    flags.DEFINE_integer("checkpoint_every", 100, "Steps between checkpoints with "
                         "--checkpoint_dir (the last step is always saved).")
    flags.DEFINE_string(
        "workdir", None, "Directory this run writes metrics.jsonl and curve.png to "
        f"(default: ./runs/{name}/<date-time>, new for each run).")
    flags.DEFINE_string(
        "compilation_cache_dir", None, "JAX's persistent compilation cache, so that a "
        f"second run loads its compiled programs instead of compiling again (default: "
        f"./runs/{name}/jax_cache, shared by the runs in ./runs/{name}; "
        "<workdir>/jax_cache with an explicit --workdir; empty: off).")
    flags.DEFINE_bool("quick", False, f"Smoke test for CI: {quick_steps} steps, in seconds.")
    flags.DEFINE_integer("log_every", log_every, "Steps between progress lines (and updates "
                         "of the progress bar's metrics).")
    flags.DEFINE_integer("quick_steps", quick_steps, "Steps run with --quick.")
    show_flags_in_help()
    app.call_after_init(lambda: start_run(name))


def show_flags_in_help() -> None:
    """Lists every flag defined by the examples' helper modules in the main ``--help``."""
    main_module = sys.argv[0]
    for module_name, module_flags in FLAGS.flags_by_module_dict().items():
        module = sys.modules.get(module_name)
        path = getattr(module, "__file__", None)
        if path and pathlib.Path(path).resolve().parent == _EXAMPLES_DIR:
            for flag in module_flags:
                FLAGS.register_key_flag_for_module(main_module, flag)


def start_run(name: str) -> pathlib.Path:
    """Creates the run directory, prints it and turns on the compilation cache."""
    if FLAGS.workdir:
        workdir = pathlib.Path(FLAGS.workdir)
        default_cache = workdir / "jax_cache"
    else:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        workdir = pathlib.Path("runs", name, stamp)
        for attempt in range(2, 100):  # runs started within one second get their own
            if not workdir.exists():
                break
            workdir = pathlib.Path("runs", name, f"{stamp}-{attempt}")
        default_cache = pathlib.Path("runs", name, "jax_cache")
    workdir.mkdir(parents=True, exist_ok=True)
    cache = FLAGS.compilation_cache_dir
    cache = default_cache if cache is None else (pathlib.Path(cache) if cache else None)
    _RUN.update(name=name, workdir=workdir, cache=cache, compiles=0, cache_hits=0)
    if cache is not None:
        enable_compilation_cache(cache)
    print(f"{name}: writing to {workdir}" + (f" (compilation cache: {cache})" if cache else ""),
          flush=True)
    return workdir


def enable_compilation_cache(directory: pathlib.Path) -> None:
    """Points JAX's persistent compilation cache at ``directory`` and counts its hits."""
    jax.config.update("jax_compilation_cache_dir", str(directory.resolve()))
    # Every compiled program, however fast to compile: the examples compile a handful,
    # and on a fast machine the train step compiles in under the 1 s default.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

    def count(event: str, **kwargs: Any) -> None:
        del kwargs
        if event == "/jax/compilation_cache/compile_requests_use_cache":
            _RUN["compiles"] += 1
        elif event == "/jax/compilation_cache/cache_hits":
            _RUN["cache_hits"] += 1

    jax.monitoring.register_event_listener(count)


def run_dir() -> pathlib.Path:
    """This run's directory (set up by ``start_run`` once the flags are parsed)."""
    if "workdir" not in _RUN:
        start_run(pathlib.Path(sys.argv[0]).stem)
    return _RUN["workdir"]


def num_steps() -> int:
    """The number of steps to run: ``--steps``, or ``--quick_steps`` with ``--quick``."""
    return FLAGS.quick_steps if FLAGS.quick else FLAGS.steps


# ------------------------------------------------------------------------------------------
# Model summary


def print_summary(forward: Callable[..., Any], *example_inputs: Any) -> None:
    """Prints the model's parameters, one row per module, and its input and output shapes."""
    print(summary_table(forward, *example_inputs))


def _short(leaf: Any) -> str:
    """``f32[64,256]``: the dtype abbreviated as JAX prints it, then the shape."""
    name = np.dtype(leaf.dtype).name
    for long, short in (("bfloat", "bf"), ("float", "f"), ("uint", "u"), ("int", "s"),
                        ("complex", "c")):
        if name.startswith(long):
            name = short + name[len(long):]
            break
    return f"{name}[{','.join(map(str, leaf.shape))}]"


def _size(num_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes} B"


def summary_table(forward: Callable[..., Any], *example_inputs: Any) -> str:
    """Formats the params of ``forward`` by module path, from shapes alone.

    Built from the parameter tree, which names every module by the path its params are
    saved under, so wrappers such as ``hk.layer_stack`` add no rows of their own.
    """
    model = hk.transform_with_state(forward)
    key = jax.random.key(0)
    created: dict[str, list[str]] = {}

    def init(*args: Any) -> Any:
        params, state = model.init(*args)
        # Creation order (w before b, stem first): eval_shape's result is sorted by path.
        created.update({module_name: list(bundle) for module_name, bundle in params.items()})
        return params, state

    params, state = jax.eval_shape(init, key, *example_inputs)
    output, _ = jax.eval_shape(model.apply, params, state, key, *example_inputs)

    def count(tree: Any) -> tuple[int, int]:
        leaves = jax.tree.leaves(tree)
        size = sum(int(np.prod(leaf.shape)) for leaf in leaves)
        return size, sum(int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize
                         for leaf in leaves)

    rows = []
    for module_name, names in created.items():
        bundle = params[module_name]
        arrays = "  ".join(f"{name}: {_short(bundle[name])}" for name in names)
        rows.append((module_name, arrays, *count(params[module_name])))
    width = max([len(r[0]) for r in rows] + [6])
    arrays_width = max([len(r[1]) for r in rows] + [6])
    lines = [f"{'module':{width}}  {'params':{arrays_width}}  {'size':>10}  {'bytes':>9}"]
    lines.append("-" * len(lines[0]))
    lines += [f"{m:{width}}  {a:{arrays_width}}  {n:>10,}  {_size(b):>9}" for m, a, n, b in rows]
    lines.append("-" * len(lines[0]))
    total, total_bytes = count(params)
    inputs = ", ".join(_short(x) for x in jax.tree.leaves(example_inputs))
    outputs = ", ".join(_short(x) for x in jax.tree.leaves(output))
    lines.append(f"{total:,} parameters ({_size(total_bytes)}); input {inputs} -> "
                 f"output {outputs}")
    if state:
        state_size, state_bytes = count(state)
        lines.append(f"model state: {state_size:,} values ({_size(state_bytes)}) in "
                     f"{len(state)} modules (e.g. {next(iter(state))})")
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
    fig, axes = plt.subplots(len(names), 1, figsize=(6, 2.2 * len(names)), squeeze=False,
                             sharex=True)  # one step axis: train and eval points line up
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


class Progress:
    """Shows training progress: a tqdm bar on a terminal, absl log lines otherwise.

    Both report the running means of the metrics every ``log_every`` steps (the bar in
    its postfix); ``last_means`` holds the latest.
    """

    def __init__(self, *, first_step: int, total_steps: int, log_every: int,
                 stream: TextIO | None = None):
        stream = sys.stderr if stream is None else stream
        self._bar = None
        if stream.isatty():
            try:
                import tqdm
            except ImportError:  # the `examples` extra installs it; lines are the fallback
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm.tqdm(total=total_steps, initial=first_step, unit="step",
                                      file=stream, dynamic_ncols=True)
        self._logger = training.ProgressLogger(
            every_steps=log_every, total_steps=total_steps,
            log_fn=logging.info if self._bar is None else self._show)

    @property
    def last_means(self) -> dict[str, float]:
        return self._logger.last_means

    def _show(self, line: str) -> None:
        # The line is 'step N/T | metric v | ... | S steps/s'; the bar shows the rest.
        metrics = line.split(" | ")[1:-1]
        self._bar.set_postfix_str(", ".join(metrics), refresh=False)

    def update(self, step: int, metrics: Mapping[str, Any]) -> str | None:
        """Counts a finished step; returns the progress line when one is due."""
        if self._bar is not None:
            self._bar.update(1)
        return self._logger.update(step, metrics)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


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
        name: The example's name (for messages).
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
    out_dir = run_dir()
    writer = MetricsWriter(out_dir)
    checkpointer = make_checkpointer(FLAGS.checkpoint_dir)
    train_state = checkpointer.restore(train_state)
    first_step = int(train_state.step)
    rng = jax.random.key(FLAGS.seed + 1)  # not the init key: dropout noise of its own
    train_metrics: dict[str, float] = {}
    if first_step >= steps:
        print(f"{name}: nothing left to train: the checkpoint in {FLAGS.checkpoint_dir} is "
              f"at step {first_step} and --steps is {steps}; evaluating it.", flush=True)
    else:
        logging.info("training %s for %d steps; metrics in %s", name, steps, writer.path)
        progress = Progress(first_step=first_step, total_steps=steps,
                            log_every=min(FLAGS.log_every, max(steps, 1)))
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
        progress.close()

    eval_metrics = dict(evaluate(train_state))
    writer.write(int(train_state.step), eval_metrics)
    checkpointer.save(int(train_state.step), train_state)
    checkpointer.close()
    writer.close()
    curve = plot_curve(writer.records, out_dir / "curve.png")
    logging.info("metrics: %s; curve: %s", writer.path,
                 curve or "not drawn (matplotlib is not installed: pip install '.[examples]')")
    if _RUN.get("cache"):
        logging.info("compilation cache %s: %d of %d compiled programs loaded from it",
                     _RUN["cache"], _RUN["cache_hits"], _RUN["compiles"])
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
