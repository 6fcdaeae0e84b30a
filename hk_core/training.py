"""Training helpers: ``TrainState``, a compiled train step, metric averaging, progress lines.

Needs optax (the ``training`` extra: ``pip install ".[training]"`` in a checkout);
``import hk_core`` does not import this module, so import it explicitly:
``from hk_core import training``.
"""

from hk_core._src.training.metrics import MeanMetrics as MeanMetrics
from hk_core._src.training.metrics import ProgressLogger as ProgressLogger
from hk_core._src.training.metrics import average_metrics as average_metrics
from hk_core._src.training.metrics import format_progress as format_progress
from hk_core._src.training.metrics import mean_over_leading_axis as mean_over_leading_axis
from hk_core._src.training.pruning import MagnitudePruningState as MagnitudePruningState
from hk_core._src.training.pruning import magnitude_pruning as magnitude_pruning
from hk_core._src.training.pruning import sparsity_of as sparsity_of
from hk_core._src.training.step import make_train_step as make_train_step
from hk_core._src.training.train_state import TrainState as TrainState

__all__ = [
    "MagnitudePruningState",
    "MeanMetrics",
    "ProgressLogger",
    "TrainState",
    "average_metrics",
    "format_progress",
    "magnitude_pruning",
    "make_train_step",
    "mean_over_leading_axis",
    "sparsity_of",
]
