"""Spectral normalization: ``hk.SpectralNorm`` and ``hk.SNParamsTree``.

The largest singular value is estimated by power iteration; the estimate vector ``u0`` is
kept in state so each call refines it further.
"""

import re
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from hk_core._src.core import facade as hk
from hk_core._src.layers import errors
from hk_core._src.layers import initializers


def _l2_normalize(x: jax.Array, eps: float) -> jax.Array:
    # eps is added inside the root (not a max with the norm), as in Haiku.
    return x * jax.lax.rsqrt(jnp.sum(jnp.square(x)) + eps)


class SpectralNorm(hk.Module):
    """Divides a matrix by an estimate of its largest singular value.

    State: ``u0`` ``[1, value.shape[-1]]`` (random normal at init, refined by each call)
    and ``sigma`` ``()``, the latest estimate. Inputs of rank > 2 are treated as the matrix
    ``[-1, last]``.

    Example:
        >>> f = hk.transform_with_state(lambda w: hk.SpectralNorm(n_steps=10)(w))
        >>> w = jnp.diag(jnp.array([4.0, 2.0]))
        >>> params, state = f.init(jax.random.PRNGKey(0), w)
        >>> round(float(state["spectral_norm"]["sigma"]), 3)
        4.0
    """

    def __init__(self, eps: float = 1e-4, n_steps: int = 1, name: str | None = None):
        """Creates the module.

        Args:
            eps: Added to the squared norm when normalizing the power-iteration vectors.
            n_steps: Power-iteration steps per call (at least 1).
            name: Module name; defaults to ``"spectral_norm"``.

        Raises:
            ValueError: if ``n_steps < 1``.
        """
        super().__init__(name=name)
        if n_steps < 1:
            raise errors.ConfigurationError(
                f"{self.module_name}: `n_steps` must be at least 1, got {n_steps}.",
                module_path=self.module_name, argument="n_steps", expected="at least 1",
                got=n_steps)
        self.eps = eps
        self.n_steps = n_steps

    def __call__(self, value: jax.typing.ArrayLike, update_stats: bool = True,
                 error_on_non_matrix: bool = False) -> jax.Array:
        """Returns ``value / sigma``, with ``sigma`` its estimated spectral norm.

        Args:
            value: Array of rank >= 2; rank > 2 is reshaped to ``[-1, last]``.
            update_stats: Store the refined ``u0`` and the new ``sigma`` in state.
            error_on_non_matrix: Raise for rank > 2 instead of reshaping.

        Returns:
            The normalized array, shaped like ``value``.

        Raises:
            ValueError: for rank <= 1, or rank > 2 with ``error_on_non_matrix``.
        """
        value = jnp.asarray(value)
        value_shape = value.shape
        if value.ndim <= 1:
            raise errors.InputShapeError(
                f"{self.module_name}: Spectral normalization is not well defined for scalar or "
                f"vector inputs. (got shape {value_shape}; expected rank >= 2)",
                module_path=self.module_name, argument="value", expected="rank >= 2",
                got=value_shape)
        if value.ndim > 2:
            if error_on_non_matrix:
                raise errors.InputShapeError(
                    f"{self.module_name}: Input is {value.ndim}D but error_on_non_matrix is "
                    f"True (shape {value_shape}; expected a matrix).",
                    module_path=self.module_name, argument="value", expected="rank 2",
                    got=value_shape)
            value = value.reshape(-1, value_shape[-1])

        u0 = hk.get_state(
            "u0", [1, value.shape[-1]], value.dtype, init=initializers.RandomNormal())
        u = u0
        for _ in range(self.n_steps):
            v = _l2_normalize(jnp.matmul(u, value.T), self.eps)
            u = _l2_normalize(jnp.matmul(v, value), self.eps)
        # The power iteration estimates sigma; gradients flow only through `value`.
        u = jax.lax.stop_gradient(u)
        v = jax.lax.stop_gradient(v)
        sigma = jnp.matmul(jnp.matmul(v, value), u.T)[0, 0]
        if update_stats:
            hk.set_state("u0", u)
            hk.set_state("sigma", sigma)
        return (value / sigma).reshape(value_shape)

    @property
    def u0(self) -> jax.Array:
        """The stored power-iteration vector ``[1, n]``."""
        return hk.get_state("u0")

    @property
    def sigma(self) -> jax.Array:
        """The stored spectral-norm estimate (1 if none was stored yet)."""
        return hk.get_state("sigma", shape=(), init=jnp.ones)


class SNParamsTree(hk.Module):
    """Applies ``SpectralNorm`` to every leaf of a params-like tree.

    Each leaf ``<module>/<name>`` gets its own ``SpectralNorm``, named from the path with
    ``/`` → ``__`` and ``~`` → ``_tilde`` (``mlp/~/linear_0/w`` →
    ``sn_params_tree/mlp___tilde__linear_0__w``). Leaves of rank <= 1 raise, so skip them
    with ``ignore_regex``.

    Example:
        >>> params = {"lin": {"w": jnp.eye(2), "b": jnp.zeros([2])}}
        >>> f = hk.transform_with_state(lambda p: hk.SNParamsTree(ignore_regex=".*/b")(p))
        >>> _, state = f.init(jax.random.PRNGKey(0), params)
        >>> jax.tree.map(jnp.shape, state)
        {'sn_params_tree/lin__w': {'sigma': (), 'u0': (1, 2)}}
    """

    def __init__(self, eps: float = 1e-4, n_steps: int = 1, ignore_regex: str = "",
                 name: str | None = None):
        """Creates the module.

        Args:
            eps: As for ``SpectralNorm``.
            n_steps: As for ``SpectralNorm``.
            ignore_regex: Leaves whose ``"<module>/<name>"`` path ``re.match``-es this
                pattern are returned unchanged. Empty: normalize every leaf.
            name: Module name; defaults to ``"sn_params_tree"``.
        """
        super().__init__(name=name)
        self.eps = eps
        self.n_steps = n_steps
        self.ignore_regex = ignore_regex

    def __call__(self, tree: Mapping[str, Mapping[str, jax.Array]],
                 update_stats: bool = True) -> dict[str, dict[str, jax.Array]]:
        """Spectrally normalizes every leaf of ``tree`` not matched by ``ignore_regex``.

        Args:
            tree: A two-level mapping ``{module: {name: array}}`` (e.g. params).
            update_stats: Passed to every ``SpectralNorm``.

        Returns:
            A plain two-level dict of the normalized leaves (ignored leaves unchanged).
        """
        def normalize(module_name: str, name: str, value: Any) -> Any:
            path = f"{module_name}/{name}"
            if self.ignore_regex and re.match(self.ignore_regex, path):
                return value
            sn_name = path.replace("/", "__").replace("~", "_tilde")
            return SpectralNorm(self.eps, self.n_steps, name=sn_name)(
                value, update_stats=update_stats)

        return hk.data_structures.map(normalize, tree)
