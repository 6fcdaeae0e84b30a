"""Tests for hk_core/_src/training/metrics.py."""

import jax.numpy as jnp
import numpy as np
import pytest

from hk_core import training


class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_mean_over_leading_axis_averages_each_leaf():
    stacked = {"loss": jnp.array([1.0, 2.0, 6.0]), "acc": jnp.array([[0.0, 1.0], [1.0, 1.0]])}
    out = training.mean_over_leading_axis(stacked)
    np.testing.assert_allclose(out["loss"], 3.0)
    np.testing.assert_allclose(out["acc"], [0.5, 1.0])


def test_average_metrics_without_weights_is_plain_mean():
    out = training.average_metrics([{"a": 1.0, "b": jnp.asarray(4.0)}, {"a": 3.0, "b": 0.0}])
    assert out == {"a": 2.0, "b": 2.0}


def test_average_metrics_weights_each_dict():
    out = training.average_metrics([{"acc": 1.0}, {"acc": 0.5}], weights=[3, 1])
    assert out == {"acc": (3 * 1.0 + 0.5) / 4}


def test_average_metrics_returns_python_floats():
    out = training.average_metrics([{"acc": np.float32(0.5)}])
    assert type(out["acc"]) is float


def test_average_metrics_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="got no metrics to average"):
        training.average_metrics([])


def test_average_metrics_with_different_names_lists_both():
    with pytest.raises(ValueError, match=r"metrics\[1\] has names \['b'\], expected \['a'\]"):
        training.average_metrics([{"a": 1.0}, {"b": 1.0}])


def test_average_metrics_with_wrong_number_of_weights_names_both_counts():
    with pytest.raises(ValueError, match=r"one weight per metrics dict \(2\), got 1"):
        training.average_metrics([{"a": 1.0}, {"a": 2.0}], weights=[1.0])


def test_average_metrics_with_zero_total_weight_is_an_error():
    with pytest.raises(ValueError, match=r"weights must sum to more than 0; got 0.0"):
        training.average_metrics([{"a": 1.0}], weights=[0])


def test_mean_metrics_weighted_mean():
    mean = training.MeanMetrics()
    mean.update({"loss": jnp.asarray(1.0)}, weight=3)
    mean.update({"loss": jnp.asarray(5.0)}, weight=1)
    assert mean.result() == {"loss": 2.0} and mean.count == 4


def test_mean_metrics_reset_forgets_everything():
    mean = training.MeanMetrics()
    mean.update({"loss": 1.0})
    mean.reset()
    assert mean.result() == {} and mean.count == 0


def test_mean_metrics_with_new_names_lists_both():
    mean = training.MeanMetrics()
    mean.update({"loss": 1.0})
    with pytest.raises(ValueError, match=r"got names \['acc'\], expected \['loss'\]"):
        mean.update({"acc": 1.0})


def test_format_progress_shows_step_metrics_and_speed():
    line = training.format_progress(7, {"loss": 0.123456, "acc": 0.5}, steps_per_sec=12.34)
    assert line == "step 7 | loss 0.1235 | acc 0.5000 | 12.3 steps/s"


def test_format_progress_with_total_shows_fraction():
    line = training.format_progress(7, {}, steps_per_sec=1.0, total_steps=10)
    assert line == "step 7/10 | 1.0 steps/s"


def test_progress_logger_logs_only_every_n_steps():
    lines = []
    progress = training.ProgressLogger(every_steps=3, log_fn=lines.append, clock=_FakeClock())
    returned = [progress.update(step, {"loss": 1.0}) for step in range(1, 8)]
    assert [r is not None for r in returned] == [False, False, True, False, False, True, False]
    assert len(lines) == 2


def test_progress_logger_logs_mean_since_last_line_and_steps_per_second():
    clock = _FakeClock()
    lines = []
    progress = training.ProgressLogger(every_steps=2, log_fn=lines.append, clock=clock)
    progress.update(1, {"loss": 1.0})
    clock.now = 0.5
    progress.update(2, {"loss": 3.0})
    progress.update(3, {"loss": 10.0})
    clock.now = 1.5
    progress.update(4, {"loss": 20.0})
    # 2 steps in 0.5 s, then 2 steps in 1.0 s.
    assert lines == ["step 2 | loss 2.0000 | 4.0 steps/s", "step 4 | loss 15.0000 | 2.0 steps/s"]


def test_progress_logger_always_logs_last_step():
    lines = []
    progress = training.ProgressLogger(every_steps=100, total_steps=5, log_fn=lines.append,
                                       clock=_FakeClock())
    for step in range(1, 6):
        progress.update(step, {"loss": 1.0})
    assert len(lines) == 1 and lines[0].startswith("step 5/5 | loss 1.0000")


def test_progress_logger_rejects_non_positive_interval():
    with pytest.raises(ValueError, match="every_steps must be >= 1; got 0"):
        training.ProgressLogger(every_steps=0)


def test_progress_logger_keeps_means_of_last_line():
    progress = training.ProgressLogger(every_steps=2, log_fn=lambda line: None,
                                       clock=_FakeClock())
    progress.update(1, {"loss": 1.0})
    progress.update(2, {"loss": 2.0})
    progress.update(3, {"loss": 7.0})
    assert progress.last_means == {"loss": 1.5}
