"""Random keys: ``PRNGSequence`` and the frame's key functions (``next_rng_key`` ...).

Keys are split exactly as Haiku 0.0.17 splits them (API.md §2.4), so a seed gives the
same initial values after switching libraries: ``reserve(n)`` splits the sequence key into
``n + 1`` keys, keeps the first as the new sequence key and queues the others.
"""

import collections
import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hk_core._src.core import config as config_lib
from hk_core._src.core import errors
from hk_core._src.core import frame as frame_lib
from hk_core._src.core import kernels


@kernels.kernel(static_argnums=1)
def _reserve_keys(key: jax.Array, num: int) -> tuple[jax.Array, list[jax.Array]]:
    """``num`` new keys and the next sequence key: a kernel (core/kernels.py), so an eager
    reservation is one dispatch (un-jitted `jax.random.split` costs ~10x that on CPU) whose
    keys come out already unstacked. Threefry is integer arithmetic: the bits are the same."""
    key, *subkeys = jax.random.split(key, num + 1)
    return key, subkeys


_KEY_SHAPES: dict[str, tuple[int, ...]] = {}


def _raw_key_shape() -> tuple[int, ...]:
    """Shape of a raw key of the default PRNG implementation now (``(2,)``; ``(4,)`` for rbg).

    Read on each call: ``jax.default_prng_impl("rbg")`` may switch it in a ``with`` block.
    """
    impl = getattr(jax.config, "jax_default_prng_impl", None)
    shape = _KEY_SHAPES.get(impl) if impl is not None else None
    if shape is None:
        shape = tuple(jax.eval_shape(lambda: jax.random.PRNGKey(0)).shape)
        if impl is not None:
            _KEY_SHAPES[impl] = shape
    return shape


def is_typed_key(value: Any) -> bool:
    dtype = getattr(value, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def as_key(value: Any, error_message: str) -> jax.Array | None:
    """Converts what ``init``/``apply`` accept as an rng to a key, or raises ``ValueError``.

    Accepted: ``None``; a Python int or bool seed; a 0-d ``int32`` array (a seed); a raw
    ``uint32`` key of the default shape; a typed key of shape ``()``.
    """
    if value is None:
        return None
    if isinstance(value, int):  # bool is an int too
        return jax.random.PRNGKey(value)
    dtype = getattr(value, "dtype", None)
    shape = getattr(value, "shape", None)
    if dtype is not None and shape is not None:
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            if shape == ():
                return value
        elif dtype == np.int32 and shape == ():
            return jax.random.PRNGKey(value)
        elif dtype == np.uint32 and tuple(shape) == _raw_key_shape():
            return value
    got = f"{type(value).__name__} with dtype={dtype} shape={shape}" if dtype is not None else (
        type(value).__name__)
    raise ValueError(f"{error_message} Got {got}.")


class PRNGSequence(Iterator[jax.Array]):
    """An iterator of random keys, split from one key exactly as Haiku splits them.

    Example:
        >>> seq = hk.PRNGSequence(42)
        >>> k1, k2 = next(seq), next(seq)
        >>> bool((k1 == jax.random.split(jax.random.PRNGKey(42))[1]).all())
        True
    """

    __slots__ = ("_key", "_subkeys")

    def __init__(self, key_or_seed: "jax.Array | int | tuple[jax.Array, Iterable[jax.Array]]"):
        if isinstance(key_or_seed, tuple):
            key, subkeys = key_or_seed
            self._key = _checked_key(key)
            self._subkeys = collections.deque(subkeys)
        elif isinstance(key_or_seed, int):
            self._key = jax.random.PRNGKey(key_or_seed)
            self._subkeys = collections.deque()
        else:
            self._key = _checked_key(key_or_seed)
            self._subkeys = collections.deque()

    def reserve(self, num: int) -> None:
        """Splits ``num`` keys off the sequence key now, to be returned by later ``next`` calls."""
        if num <= 0:
            return
        self._key, subkeys = _reserve_keys(self._key, num)
        self._subkeys.extend(subkeys)

    def reserve_up_to_full(self) -> None:
        """Tops the queue up to ``rng_reserve_size`` keys, or drops the keys beyond it."""
        size = config_lib.get_config().rng_reserve_size
        queued = len(self._subkeys)
        if queued < size:
            self.reserve(size - queued)
        elif queued > size:
            self._subkeys = collections.deque(list(self._subkeys)[:size])

    def __next__(self) -> jax.Array:
        if not self._subkeys:
            self.reserve(config_lib.get_config().rng_reserve_size)
        return self._subkeys.popleft()

    next = __next__

    def take(self, num: int) -> tuple[jax.Array, ...]:
        """Returns the next ``num`` keys, splitting the missing ones in one call."""
        self.reserve(max(num - len(self._subkeys), 0))
        return tuple(next(self) for _ in range(num))

    @property
    def internal_state(self) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        """``(key, subkeys)``: everything needed to resume the sequence."""
        return self._key, tuple(self._subkeys)

    def replace_internal_state(self, state: tuple[jax.Array, Iterable[jax.Array]]) -> None:
        key, subkeys = state
        self._key = key
        self._subkeys = collections.deque(subkeys)


def _checked_key(key: Any) -> jax.Array:
    if isinstance(key, PRNGSequence):
        raise TypeError("PRNGSequence expects a key or a seed, not another PRNGSequence.")
    if is_typed_key(key):
        return key
    shape = getattr(key, "shape", None)
    if shape is None or tuple(shape) != _raw_key_shape():
        raise ValueError(
            f"PRNGSequence expects a PRNG key of shape {_raw_key_shape()} (or a typed key, or an "
            f"int seed), got {type(key).__name__} with shape {shape}.")
    return key


class _KeyCounters(threading.local):
    def __init__(self):
        self.active: list[list[int]] = []


_COUNTERS = _KeyCounters()


@contextlib.contextmanager
def counting_keys() -> Iterator[Callable[[], int]]:
    """Counts the keys drawn with ``next_rng_key(s)`` inside the block (used by
    ``hk.experimental.optimize_rng_use``); yields a function returning the count."""
    counter = [0]
    _COUNTERS.active.append(counter)
    try:
        yield lambda: counter[0]
    finally:
        _COUNTERS.active.remove(counter)


def _count(num: int) -> None:
    for counter in _COUNTERS.active:
        counter[0] += num


def _sequence(what: str) -> PRNGSequence:
    frame = frame_lib.current_frame(what)
    seq = frame.rng
    if seq is None:
        bundle = frame.scopes[-1].bundle
        raise errors.missing_rng("~" if bundle is None else bundle, what, frame.is_init)
    return seq


def next_rng_key() -> jax.Array:
    """Returns a fresh key from the transform's RNG sequence.

    Example:
        >>> f = hk.transform(lambda: hk.next_rng_key())
        >>> key = f.apply({}, jax.random.PRNGKey(0))
        >>> key.shape
        (2,)
    """
    seq = _sequence("`hk.next_rng_key`")
    if _COUNTERS.active:
        _count(1)
    return next(seq)


def next_rng_keys(num: int) -> jax.Array:
    """Returns ``num`` fresh keys stacked on a leading axis (``[num, *key_shape]``).

    Example:
        >>> f = hk.transform(lambda: hk.next_rng_keys(3))
        >>> f.apply({}, jax.random.PRNGKey(0)).shape
        (3, 2)
    """
    seq = _sequence("`hk.next_rng_keys`")
    if _COUNTERS.active:
        _count(num)
    return jnp.stack(seq.take(num))


def maybe_next_rng_key() -> jax.Array | None:
    """Returns ``next_rng_key()``, or ``None`` when the transform was given no rng.

    Example:
        >>> f = hk.transform(lambda: hk.maybe_next_rng_key())
        >>> f.apply({}, None) is None
        True
    """
    seq = frame_lib.current_frame("`hk.maybe_next_rng_key`").rng
    if seq is None:
        return None
    if _COUNTERS.active:
        _count(1)
    return next(seq)


def reserve_rng_keys(num: int) -> None:
    """Pre-splits ``num`` keys in one ``jax.random.split`` call.

    Example:
        >>> f = hk.transform(lambda: (hk.reserve_rng_keys(2), hk.next_rng_key())[1])
        >>> f.apply({}, jax.random.PRNGKey(0)).shape
        (2,)
    """
    _sequence("`hk.reserve_rng_keys`").reserve(num)


@contextlib.contextmanager
def with_rng(key: jax.Array) -> Iterator[None]:
    """Draws keys from a new sequence started at ``key`` inside the ``with`` block.

    Example:
        >>> def f():
        ...     with hk.with_rng(jax.random.PRNGKey(3)):
        ...         return hk.next_rng_key()
        >>> key = hk.transform(f).apply({}, None)
        >>> bool((key == jax.random.split(jax.random.PRNGKey(3))[1]).all())
        True
    """
    frame = frame_lib.current_frame("`hk.with_rng`")
    previous = frame.rng
    frame.rng = PRNGSequence(key)
    try:
        yield
    finally:
        frame.rng = previous


def maybe_get_rng_sequence_state() -> tuple[jax.Array, tuple[jax.Array, ...]] | None:
    """Returns the current sequence's ``(key, subkeys)``, or ``None`` without an rng.

    Example:
        >>> f = hk.transform(lambda: hk.maybe_get_rng_sequence_state())
        >>> f.apply({}, None) is None
        True
    """
    seq = frame_lib.current_frame("`hk.maybe_get_rng_sequence_state`").rng
    return None if seq is None else seq.internal_state


def replace_rng_sequence_state(state: tuple[jax.Array, Iterable[jax.Array]]) -> None:
    """Replaces the current sequence's ``(key, subkeys)`` (see ``maybe_get_rng_sequence_state``).

    Example:
        >>> def f():
        ...     saved = hk.maybe_get_rng_sequence_state()
        ...     first = hk.next_rng_key()
        ...     hk.replace_rng_sequence_state(saved)
        ...     return bool((first == hk.next_rng_key()).all())
        >>> hk.transform(f).apply({}, jax.random.PRNGKey(0))
        True
    """
    seq = frame_lib.current_frame("`hk.replace_rng_sequence_state`").rng
    if seq is None:
        raise errors.MissingRNGError(
            "replace_rng_sequence_state requires an RNG to be passed into the transformed "
            "function")
    seq.replace_internal_state(state)
