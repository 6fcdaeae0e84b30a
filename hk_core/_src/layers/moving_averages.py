"""Exponential moving averages kept in state: ``ExponentialMovingAverage`` and ``EMAParamsTree``."""

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from hk_core._src.core import facade as hk
from hk_core._src.layers import errors
from hk_core._src.layers import initializers


class ExponentialMovingAverage(hk.Module):
    """Keeps an exponential moving average of the values it is called with, in state.

    State (created at the first call, in this order): ``counter`` (int32 scalar, starts at
    ``-warmup_length``), ``hidden`` (shape and dtype of the value, starts at zeros) and
    ``average`` (the debiased average, created by the first update). Each update does
    ``counter += 1``, ``hidden = hidden * decay + value * (1 - decay)`` and, with
    ``zero_debias``, ``average = hidden / (1 - decay ** counter)``; without it
    ``average = hidden``.

    Example:
        >>> f = hk.transform_with_state(lambda x: hk.ExponentialMovingAverage(0.5)(x))
        >>> params, state = f.init(None, 2.0)
        >>> _, state = f.apply(params, state, None, 2.0)
        >>> average, state = f.apply(params, state, None, 4.0)
        >>> round(float(average), 4), state["exponential_moving_average"]["hidden"].item()
        (3.3333, 2.5)
    """

    def __init__(self, decay: float, zero_debias: bool = True, warmup_length: int = 0,
                 name: str | None = None):
        """Creates the moving average.

        Args:
            decay: Weight of the old average at each update, in ``[0, 1]``.
            zero_debias: Divide by ``1 - decay ** counter`` so early averages are not
                biased towards the zero starting value.
            warmup_length: Number of updates during which ``decay`` is 0 (the average is
                the latest value). Needs ``zero_debias=False``.
            name: Module name; defaults to ``"exponential_moving_average"``.

        Raises:
            ValueError: if ``warmup_length`` is negative, or positive with ``zero_debias``.
        """
        super().__init__(name=name)
        if warmup_length < 0:
            raise errors.ConfigurationError(
                f"{self.module_name}: `warmup_length` is {warmup_length!r}, but should be "
                "non-negative.", module_path=self.module_name, argument="warmup_length",
                expected="non-negative", got=warmup_length)
        if warmup_length and zero_debias:
            raise errors.ConfigurationError(
                f"{self.module_name}: Zero debiasing does not make sense when warming up the "
                f"value of the average to an initial value (warmup_length={warmup_length}). "
                "Set zero_debias=False if setting warmup_length to a non-zero value.",
                module_path=self.module_name, argument="zero_debias",
                expected="False when warmup_length > 0", got=zero_debias)
        self.decay = decay
        self.zero_debias = zero_debias
        self.warmup_length = warmup_length

    def initialize(self, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> None:
        """Creates ``hidden`` and ``average`` as zeros if they do not exist yet.

        Useful when the average is read (``.average``) before the first update. Does not
        create ``counter``.

        Args:
            shape: Shape of the averaged value. Passing an array instead is deprecated; its
                shape and dtype are used.
            dtype: Dtype of the averaged value.
        """
        if hasattr(shape, "shape") and hasattr(shape, "dtype"):
            warnings.warn(
                "Passing a value into initialize instead of a shape/dtype was deprecated. "
                "Update your code to use: `ema.initialize(v.shape, v.dtype)`.",
                category=DeprecationWarning, stacklevel=2)
            shape, dtype = shape.shape, shape.dtype
        hk.get_state("hidden", shape, dtype, init=jnp.zeros)
        hk.get_state("average", shape, dtype, init=jnp.zeros)

    def __call__(self, value: jax.typing.ArrayLike, update_stats: bool = True) -> jax.Array:
        """Updates the average with ``value`` and returns the new average.

        Args:
            value: The new value (any shape; the state takes its shape and dtype).
            update_stats: Whether to store the updated ``counter``, ``hidden`` and
                ``average``. If False the state is unchanged but the updated average is
                still returned.

        Returns:
            The moving average after this update, with the shape and dtype of ``value``.
        """
        value = jnp.asarray(value)
        counter = hk.get_state("counter", (), jnp.int32,
                                       init=initializers.Constant(-self.warmup_length))
        hidden = hk.get_state("hidden", value.shape, value.dtype, init=jnp.zeros)
        counter, hidden, average = _step(counter, hidden, value, self.decay,
                                         warmup=self.warmup_length > 0,
                                         zero_debias=self.zero_debias)
        if update_stats:
            hk.set_state("counter", counter)
            hk.set_state("hidden", hidden)
            hk.set_state("average", average)
        return average

    @property
    def average(self) -> jax.Array:
        """The stored average (state ``average``; call ``initialize`` first if unsure)."""
        return hk.get_state("average")


def _step_fn(counter, hidden, value, decay, *, warmup: bool, zero_debias: bool):
    """One update: the new ``counter``, ``hidden`` and (debiased) ``average``."""
    counter = counter + 1
    decay = jax.lax.convert_element_type(decay, value.dtype)
    if warmup:
        # The first `warmup_length` updates copy the value into the average.
        decay = jax.lax.select(counter <= 0, jnp.zeros_like(decay), decay)
    one = jnp.ones([], value.dtype)
    hidden = hidden * decay + value * (one - decay)
    average = hidden
    if zero_debias:
        # A kernel: eagerly one dispatch, so the counter is never read back to the host.
        average = average / (one - jnp.power(decay, counter))
    return counter, hidden, average


_step = hk.kernel(_step_fn, static_argnames=("warmup", "zero_debias"))


def _mangle(module_name: str, name: str, tilde: str) -> str:
    # Submodule names must be identifiers: '/' becomes '__' and '~' is spelled out.
    return f"{module_name}/{name}".replace("/", "__").replace("~", tilde)


class EMAParamsTree(hk.Module):
    """Keeps an exponential moving average of every leaf of a params-like tree.

    Each leaf ``<module>/<name>`` gets its own ``ExponentialMovingAverage``, named from the
    path with ``/`` → ``__`` and ``~`` → ``_tilde_`` (``mlp/~/linear_0/w`` →
    ``ema_params_tree/mlp___tilde___linear_0__w``).

    Example:
        >>> params = {"lin": {"w": jnp.ones([2]), "b": jnp.zeros([2])}}
        >>> f = hk.transform_with_state(lambda p: hk.EMAParamsTree(0.9, ignore_regex=".*/b")(p))
        >>> _, state = f.init(None, params)
        >>> list(state)
        ['ema_params_tree/lin__w']
    """

    def __init__(self, decay: float, zero_debias: bool = True, warmup_length: int = 0,
                 ignore_regex: str = "", name: str | None = None):
        """Creates the tree of moving averages.

        Args:
            decay: As for ``ExponentialMovingAverage``.
            zero_debias: As for ``ExponentialMovingAverage``.
            warmup_length: As for ``ExponentialMovingAverage``.
            ignore_regex: Leaves whose ``"<module>/<name>"`` path ``re.match``-es this
                pattern are returned unchanged and get no average. Empty: average all.
            name: Module name; defaults to ``"ema_params_tree"``.
        """
        super().__init__(name=name)
        self.decay = decay
        self.zero_debias = zero_debias
        self.warmup_length = warmup_length
        self.ignore_regex = ignore_regex

    def __call__(self, tree: Mapping[str, Mapping[str, jax.Array]],
                 update_stats: bool = True) -> dict[str, dict[str, jax.Array]]:
        """Updates every average with its leaf of ``tree``.

        Args:
            tree: A two-level mapping ``{module: {name: array}}`` (e.g. params).
            update_stats: Passed to every ``ExponentialMovingAverage``.

        Returns:
            A plain two-level dict of the averages (ignored leaves unchanged).
        """
        def average(module_name: str, name: str, value: Any) -> Any:
            if self.ignore_regex and re.match(self.ignore_regex, f"{module_name}/{name}"):
                return value
            ema = ExponentialMovingAverage(
                self.decay, zero_debias=self.zero_debias, warmup_length=self.warmup_length,
                name=_mangle(module_name, name, "_tilde_"))
            return ema(value, update_stats=update_stats)

        return hk.data_structures.map(average, tree)
