"""Averaging metrics over micro-batches, steps or eval batches, and a progress line."""

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging


def mean_over_leading_axis(metrics: Any) -> Any:
    """Averages every leaf of a pytree of stacked metrics over its first axis.

    Example:
        >>> from hk_core import training
        >>> training.mean_over_leading_axis({"loss": jnp.array([1.0, 2.0, 6.0])})
        {'loss': Array(3., dtype=float32)}
    """
    return jax.tree.map(lambda leaf: jnp.mean(leaf, axis=0), metrics)


def average_metrics(metrics: Iterable[Mapping[str, Any]],
                    weights: Iterable[float] | None = None) -> dict[str, float]:
    """Returns the (weighted) mean of each named scalar over a sequence of metric dicts.

    Use it for metrics of several eval batches of different sizes: weight each by its
    number of examples. Every dict must have the same names.

    Args:
        metrics: Dicts of name to scalar (Python number, numpy or jax scalar).
        weights: One non-negative weight per dict; None weighs them equally.

    Returns:
        A dict of name to Python float.

    Raises:
        ValueError: if there are no dicts, the names differ, the number of weights differs
            from the number of dicts, or the weights sum to zero.

    Example:
        >>> from hk_core import training
        >>> training.average_metrics([{"acc": 1.0}, {"acc": 0.5}], weights=[3, 1])
        {'acc': 0.875}
    """
    metrics = [dict(m) for m in metrics]
    if not metrics:
        raise ValueError("average_metrics: got no metrics to average.")
    weights = [1.0] * len(metrics) if weights is None else [float(w) for w in weights]
    if len(weights) != len(metrics):
        raise ValueError(
            f"average_metrics: expected one weight per metrics dict ({len(metrics)}), got "
            f"{len(weights)}.")
    total = sum(weights)
    if total <= 0:
        raise ValueError(f"average_metrics: weights must sum to more than 0; got {total}.")
    names = sorted(metrics[0])
    for index, m in enumerate(metrics):
        if sorted(m) != names:
            raise ValueError(
                f"average_metrics: metrics[{index}] has names {sorted(m)}, expected {names} "
                "(those of metrics[0]).")
    return {
        name: sum(w * float(np.asarray(m[name])) for w, m in zip(weights, metrics)) / total
        for name in metrics[0]
    }


class MeanMetrics:
    """Running means of named scalars, e.g. the training metrics since the last log line.

    Sums stay on the device until ``result()``, so adding a step's metrics does not wait
    for the step to finish.

    Example:
        >>> from hk_core import training
        >>> mean = training.MeanMetrics()
        >>> mean.update({"loss": jnp.asarray(2.0)})
        >>> mean.update({"loss": jnp.asarray(4.0)})
        >>> mean.result()
        {'loss': 3.0}
    """

    def __init__(self):
        self._sums: dict[str, Any] = {}
        self._weight = 0.0

    def update(self, metrics: Mapping[str, Any], weight: float = 1.0) -> None:
        """Adds one set of metrics, counted ``weight`` times.

        Raises:
            ValueError: if the names differ from those added before.
        """
        if self._sums and sorted(metrics) != sorted(self._sums):
            raise ValueError(
                f"MeanMetrics.update: got names {sorted(metrics)}, expected "
                f"{sorted(self._sums)} (those added before).")
        for name, value in metrics.items():
            previous = self._sums.get(name, 0.0)
            self._sums[name] = previous + weight * value
        self._weight += weight

    @property
    def count(self) -> float:
        """The total weight added since the last reset."""
        return self._weight

    def result(self) -> dict[str, float]:
        """Returns the mean of each name as a Python float ({} if nothing was added)."""
        if not self._weight:
            return {}
        return {name: float(np.asarray(s)) / self._weight for name, s in self._sums.items()}

    def reset(self) -> None:
        """Forgets everything added."""
        self._sums = {}
        self._weight = 0.0


def format_progress(step: int, metrics: Mapping[str, float], *, steps_per_sec: float,
                    total_steps: int | None = None) -> str:
    """Formats one progress line: step, each metric, then steps per second.

    Example:
        >>> from hk_core import training
        >>> training.format_progress(100, {"loss": 0.25}, steps_per_sec=50.0, total_steps=200)
        'step 100/200 | loss 0.2500 | 50.0 steps/s'
    """
    where = f"step {step}" if total_steps is None else f"step {step}/{total_steps}"
    parts = [where] + [f"{name} {value:.4f}" for name, value in metrics.items()]
    parts.append(f"{steps_per_sec:.1f} steps/s")
    return " | ".join(parts)


class ProgressLogger:
    """Logs the running-mean metrics and the speed every ``every_steps`` steps.

    Call ``update(step, metrics)`` after each training step with the step number just
    finished. Every ``every_steps`` steps (and at ``total_steps``) it logs one line through
    ``log_fn`` (absl ``logging.info`` by default), e.g.
    ``step 200/2000 | loss 0.1234 | 85.3 steps/s``, and returns it; other calls return None.
    The means of the last line logged are kept in ``last_means``.

    Example:
        >>> from hk_core import training
        >>> lines = []
        >>> progress = training.ProgressLogger(every_steps=2, log_fn=lines.append)
        >>> progress.update(1, {"loss": 3.0}) is None
        True
        >>> progress.update(2, {"loss": 1.0}) is not None
        True
        >>> lines[0].startswith("step 2 | loss 2.0000 | ")
        True
    """

    def __init__(self, *, every_steps: int = 100, total_steps: int | None = None,
                 log_fn: Callable[[str], Any] = logging.info,
                 clock: Callable[[], float] = time.perf_counter):
        """Creates the logger.

        Args:
            every_steps: Log once per this many steps (at least 1).
            total_steps: Shown as ``step N/total``, and always logged at; None to omit.
            log_fn: Receives each line.
            clock: Seconds, for steps per second (a fake one in tests).
        """
        if every_steps < 1:
            raise ValueError(f"ProgressLogger: every_steps must be >= 1; got {every_steps}.")
        self._every = every_steps
        self._total = total_steps
        self._log_fn = log_fn
        self._clock = clock
        self._mean = MeanMetrics()
        self._last_time = clock()
        self._last_step: int | None = None
        self.last_means: dict[str, float] = {}

    def update(self, step: int, metrics: Mapping[str, Any]) -> str | None:
        """Adds a step's metrics; logs and returns a line if this step is due."""
        if self._last_step is None:
            self._last_step = step - 1
        self._mean.update(metrics)
        if step % self._every and step != self._total:
            return None
        means = self._mean.result()  # waits for the device: once per line, not per step
        now = self._clock()
        elapsed = max(now - self._last_time, 1e-9)
        line = format_progress(step, means, steps_per_sec=(step - self._last_step) / elapsed,
                               total_steps=self._total)
        self._log_fn(line)
        self.last_means = means
        self._mean.reset()
        self._last_time, self._last_step = now, step
        return line
