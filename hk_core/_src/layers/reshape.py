"""``hk.Reshape`` and ``hk.Flatten``: reshape all but the leading ``preserve_dims`` axes."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from hk_core._src.core import facade as hk
from hk_core._src.layers import errors



class Reshape(hk.Module):
    """Keeps the first ``preserve_dims`` axes and reshapes the rest to ``output_shape``.

    ``preserve_dims`` follows Python slicing, so a negative value keeps all but the last
    ``-preserve_dims`` axes. One entry of ``output_shape`` may be ``-1``.

    Example:
        >>> f = hk.transform(lambda x: hk.Reshape((-1, 4))(x))
        >>> f.apply({}, None, jnp.ones([2, 3, 8])).shape
        (2, 6, 4)
        >>> g = hk.transform(lambda x: hk.Reshape((-1, 5), preserve_dims=-1)(x))
        >>> g.apply({}, None, jnp.ones([2, 3, 5])).shape
        (2, 3, 1, 5)
    """

    def __init__(self, output_shape: Sequence[int], preserve_dims: int = 1,
                 name: str | None = None):
        """Stores the target shape.

        Args:
            output_shape: Shape for the axes after the preserved ones; at most one ``-1``.
            preserve_dims: Number of leading axes to keep (negative: count from the end).
            name: Module name; defaults to the snake-cased class name.

        Raises:
            ValueError: if ``preserve_dims`` is 0 or ``output_shape`` has several ``-1``.
        """
        super().__init__(name=name)
        if preserve_dims == 0:
            raise errors.ConfigurationError(
                f"{self.module_name}: Argument preserve_dims should be non-zero, got 0.",
                module_path=self.module_name, argument="preserve_dims", expected="non-zero",
                got=preserve_dims)
        output_shape = tuple(output_shape)
        if output_shape.count(-1) > 1:
            raise errors.ConfigurationError(
                f"{self.module_name}: -1 can only occur once in `output_shape`, got "
                f"{output_shape}.", module_path=self.module_name, argument="output_shape",
                expected="at most one -1", got=output_shape)
        self.output_shape = output_shape
        self.preserve_dims = preserve_dims

    def __call__(self, inputs: jax.Array) -> jax.Array:
        """Reshapes ``inputs``; returns it unchanged if it has ``<= preserve_dims`` axes.

        Args:
            inputs: Array of any shape.

        Returns:
            ``inputs.shape[:preserve_dims] + output_shape`` with the ``-1`` resolved.

        Raises:
            TypeError: if the trailing axes cannot be reshaped to ``output_shape`` (the
                message names this module's path and both shapes).
        """
        preserve = self.preserve_dims
        if inputs.ndim <= preserve:
            return inputs
        kept = inputs.shape[:preserve]
        rest = inputs.shape[preserve:]
        output_shape = self.output_shape
        rest_size = int(np.prod(rest))
        if -1 in output_shape:
            # The product of output_shape is negative (one -1), so abs() is the known size.
            known = abs(int(np.prod(output_shape)))
            unknown = rest_size // known if known else 0
            output_shape = tuple(unknown if d == -1 else d for d in output_shape)
        if int(np.prod(output_shape)) != rest_size:
            raise errors.ArgumentTypeError(
                f"{self.module_name}: cannot reshape the trailing axes {rest} of input shape "
                f"{inputs.shape} (size {rest_size}) to output_shape {self.output_shape}.",
                module_path=self.module_name, argument="inputs",
                expected=f"trailing axes of size {int(np.prod(output_shape))}", got=inputs.shape)
        return jnp.reshape(inputs, kept + output_shape)


class Flatten(Reshape):
    """Flattens all but the first ``preserve_dims`` axes (``Reshape`` with ``(-1,)``).

    Example:
        >>> f = hk.transform(lambda x: hk.Flatten()(x))
        >>> f.apply({}, None, jnp.ones([2, 8, 8, 3])).shape
        (2, 192)
    """

    def __init__(self, preserve_dims: int = 1, name: str | None = None):
        """Stores the configuration.

        Args:
            preserve_dims: Number of leading axes to keep (negative: count from the end).
            name: Module name; defaults to ``'flatten'``.

        Raises:
            ValueError: if ``preserve_dims`` is 0.
        """
        super().__init__(output_shape=(-1,), preserve_dims=preserve_dims, name=name)
