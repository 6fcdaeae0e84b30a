"""Small building blocks: ``hk.Bias``, ``hk.Sequential``, ``hk.BatchApply``, ``hk.expand_apply``,
``hk.one_hot`` and ``hk.multinomial``."""

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hk_core._src.core import facade as hk
from hk_core._src.layers import errors
from hk_core._src.layers.initializers import InitializerFn



def _bias_shape(input_shape: tuple[int, ...], bias_dims: Sequence[int] | None,
                module_path: str) -> tuple[int, ...]:
    """The shape of ``b`` for ``input_shape`` (API.md §3.1, ``Bias``)."""
    if bias_dims is None:
        return tuple(input_shape[1:])
    if not bias_dims:
        return ()
    rank = len(input_shape)
    shape = [1] * rank
    for dim in bias_dims:
        if dim < 0:
            dim %= rank
        if dim == 0:
            raise errors.ConfigurationError(
                f"{module_path}: Cannot apply bias across the minibatch dimension. Got bias_dims="
                f"{tuple(bias_dims)} for input shape {input_shape}.", module_path=module_path,
                argument="bias_dims", expected="no batch axis (0)", got=tuple(bias_dims))
        if dim >= rank:
            raise errors.ConfigurationError(
                f"{module_path}: Dimension {dim} (bias_dims={tuple(bias_dims)}) out of range for "
                f"input of rank {rank}.", module_path=module_path, argument="bias_dims",
                expected=f"axes below the input rank {rank}", got=tuple(bias_dims))
        shape[dim] = input_shape[dim]
    # Leading 1s are dropped so the bias broadcasts against the input from the right.
    for start in range(1, rank):
        if shape[start] != 1:
            return tuple(shape[start:])
    return ()


class Bias(hk.Module):
    """Adds a learned bias ``b`` (zeros at init), optionally shared over some axes.

    With ``bias_dims=None`` the bias covers every axis but the first; otherwise only the
    listed axes (``[-1]`` gives one bias per channel).

    Example:
        >>> f = hk.transform(lambda x: hk.Bias(bias_dims=[-1])(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 5, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'bias': {'b': (3,)}}
    """

    def __init__(self, output_size: Sequence[int] | None = None,
                 bias_dims: Sequence[int] | None = None, b_init: InitializerFn | None = None,
                 name: str | None = None):
        """Stores the configuration; ``b`` is created at the first call.

        Args:
            output_size: Expected ``inputs.shape[1:]`` as a tuple; checked if given.
            bias_dims: Axes the bias varies along (not 0); ``None`` for all but the first,
                ``[]`` for a scalar bias.
            b_init: Initializer of ``b``; defaults to zeros.
            name: Module name; defaults to ``'bias'``.
        """
        super().__init__(name=name)
        self.output_size = output_size
        self.bias_dims = bias_dims
        self.b_init = b_init if b_init is not None else jnp.zeros
        self.bias_shape = None  # input_size and bias_shape are set on call, as in Haiku

    def __call__(self, inputs: jax.Array, multiplier: jax.typing.ArrayLike | None = None
                 ) -> jax.Array:
        """Adds ``b`` (times ``multiplier`` if given) to ``inputs``.

        Args:
            inputs: Array of rank at least 2, ``[batch, ...]``.
            multiplier: Optional scale applied to ``b`` before it is added.

        Returns:
            ``inputs + b * multiplier``, with the shape of ``inputs``.

        Raises:
            ValueError: for inputs of rank < 2, ``inputs.shape[1:]`` different from
                ``output_size``, or a bad entry in ``bias_dims``; the message names this
                module's path.
        """
        module_path = self.module_name
        if inputs.ndim < 2:
            raise errors.InputShapeError(
                f"{module_path}: Rank of inputs must be at least 2, got shape {inputs.shape} (rank "
                f"{inputs.ndim}).", module_path=module_path, argument="inputs",
                expected="rank >= 2", got=inputs.shape)
        self.input_size = inputs.shape[1:]
        output_size = self.output_size
        # Compared as given, like Haiku: a list never equals the shape tuple.
        if output_size is not None and output_size != self.input_size:
            expected = (-1, *output_size) if isinstance(output_size, Iterable) else (
                -1, output_size)
            raise errors.InputShapeError(
                f"{module_path}: Input shape must be {expected} not {inputs.shape}",
                module_path=module_path, argument="inputs", expected=expected, got=inputs.shape)
        self.bias_shape = _bias_shape(inputs.shape, self.bias_dims, module_path)
        b = hk.get_parameter("b", self.bias_shape, inputs.dtype, init=self.b_init)
        b = jnp.broadcast_to(b, inputs.shape)
        if multiplier is not None:
            b = b * multiplier
        return inputs + b


class Sequential(hk.Module):
    """Calls ``layers`` in order; extra arguments go to the first layer only.

    Example:
        >>> f = hk.transform(lambda x: hk.Sequential([hk.Linear(3), jax.nn.relu,
        ...                                           hk.Linear(2)])(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 4]))
        >>> list(params)
        ['linear', 'linear_1']
        >>> f.apply(params, None, jnp.ones([1, 4])).shape
        (1, 2)
    """

    def __init__(self, layers: Iterable[Callable[..., Any]], name: str | None = None):
        """Stores the layers.

        Args:
            layers: Callables (modules or functions) applied in order.
            name: Module name; defaults to ``'sequential'``.
        """
        super().__init__(name=name)
        self.layers = tuple(layers)

    def __call__(self, inputs: Any, *args, **kwargs) -> Any:
        """Returns ``layers[-1](...layers[1](layers[0](inputs, *args, **kwargs)))``.

        Args:
            inputs: Input of the first layer.
            *args: Extra positional arguments for the first layer only.
            **kwargs: Extra keyword arguments for the first layer only.

        Returns:
            The last layer's output (``inputs`` if there are no layers).
        """
        out = inputs
        for index, layer in enumerate(self.layers):
            out = layer(out, *args, **kwargs) if index == 0 else layer(out)
        return out


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


class BatchApply:
    """Runs ``f`` on inputs whose leading ``num_dims`` axes are merged into one, then splits.

    The leading shape is read from the first array among the arguments; every array with at
    least ``num_dims`` axes is reshaped, and every array output gets the leading shape back.

    Example:
        >>> f = hk.transform(lambda x: hk.BatchApply(hk.Linear(4))(x))
        >>> x = jnp.ones([3, 5, 2])
        >>> f.apply(f.init(jax.random.PRNGKey(0), x), None, x).shape
        (3, 5, 4)
    """

    def __init__(self, f: Callable[..., Any], num_dims: int = 2):
        """Stores ``f``.

        Args:
            f: The function to apply on merged inputs.
            num_dims: Number of leading axes to merge (at least 1).

        Raises:
            ValueError: if ``num_dims < 1``.
        """
        if num_dims < 1:
            raise errors.ConfigurationError(
                f"BatchApply: num_dims must be at least 1, got {num_dims}.",
                module_path="BatchApply", argument="num_dims", expected="at least 1", got=num_dims)
        self._f = f
        self.num_dims = num_dims

    def __call__(self, *args, **kwargs) -> Any:
        """Merges, calls ``f``, splits.

        Raises:
            ValueError: if no argument is an array, or the first array has fewer than
                ``num_dims`` axes.
        """
        num_dims = self.num_dims
        example = next((x for x in jax.tree.leaves((args, kwargs)) if _is_array(x)), None)
        if example is None:
            raise errors.ConfigurationError(
                "BatchApply: at least one argument must be an array.", module_path="BatchApply",
                argument="args", expected="at least one array", got=None)
        if np.ndim(example) < num_dims:
            raise errors.InputShapeError(
                f"BatchApply: the first array argument must have at least num_dims={num_dims} "
                f"axes, got shape {np.shape(example)}.", module_path="BatchApply",
                argument="args", expected=f"rank >= {num_dims}", got=np.shape(example))
        leading = tuple(np.shape(example)[:num_dims])

        def merge(x):
            if not _is_array(x) or np.ndim(x) < num_dims:
                return x
            return jnp.reshape(x, (-1,) + tuple(np.shape(x)[num_dims:]))

        def split(x):
            if not _is_array(x):
                return x
            return jnp.reshape(x, leading + tuple(np.shape(x)[1:]))

        out = self._f(*jax.tree.map(merge, args), **jax.tree.map(merge, kwargs))
        return jax.tree.map(split, out)


def expand_apply(f: Callable[..., Any], axis: int = 0) -> Callable[..., Any]:
    """Wraps ``f`` to run on inputs with a new axis of size 1 at ``axis``, removed after.

    Useful to call a batched function on one example.

    Args:
        f: Function to wrap.
        axis: ``0`` or ``-1``.

    Returns:
        The wrapped function.

    Raises:
        ValueError: for another ``axis`` (raised here, not when the wrapper runs).

    Example:
        >>> f = hk.transform(lambda x: hk.expand_apply(hk.Linear(2))(x))
        >>> x = jnp.ones([3])
        >>> f.apply(f.init(jax.random.PRNGKey(0), x), None, x).shape
        (2,)
    """
    if axis not in (0, -1):
        raise errors.ConfigurationError(
            f"expand_apply currently only supports axis=0 or axis=-1. Got axis={axis!r}.",
            module_path="expand_apply", argument="axis", expected="0 or -1", got=axis)

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        def expand(x):
            return jnp.expand_dims(x, axis)

        out = f(*jax.tree.map(expand, args), **jax.tree.map(expand, kwargs))
        return jax.tree.map(lambda x: jnp.squeeze(x, axis), out)

    return wrapper


def one_hot(x: jax.typing.ArrayLike, num_classes: int,
            dtype: jax.typing.DTypeLike = jnp.float32) -> jax.Array:
    """Returns the one-hot encoding of ``x`` with ``num_classes`` classes (a new last axis).

    Example:
        >>> hk.one_hot(jnp.array([0, 2]), 3)
        Array([[1., 0., 0.],
               [0., 0., 1.]], dtype=float32)
    """
    return jax.nn.one_hot(x, num_classes, dtype=dtype)


def multinomial(rng: jax.Array, logits: jax.typing.ArrayLike, num_samples: int) -> jax.Array:
    """Draws ``num_samples`` class indices per row of ``logits`` (unnormalized log-probs).

    Args:
        rng: Random key.
        logits: ``[..., num_classes]``.
        num_samples: Number of draws per row.

    Returns:
        Integer array ``[..., num_samples]``.

    Example:
        >>> s = hk.multinomial(jax.random.PRNGKey(0), jnp.array([[0.0, -1e9]]), 4)
        >>> s.tolist()
        [[0, 0, 0, 0]]
    """
    logits = jnp.asarray(logits)
    samples = jax.random.categorical(rng, logits, shape=(num_samples,) + logits.shape[:-1])
    return jnp.moveaxis(samples, 0, -1)
