"""``hk.nets.MLP``: a stack of ``Linear`` layers with activations and optional dropout."""

from collections.abc import Callable, Iterable

import jax

from hk_core._src.core import facade as hk
from hk_core._src.layers import dropout as dropout_lib
from hk_core._src.layers import errors
from hk_core._src.layers import linear
from hk_core._src.layers import relu_kernels
from hk_core._src.layers.initializers import InitializerFn


class MLP(hk.Module):
    """A multi-layer perceptron: ``Linear`` layers named ``linear_0``, ``linear_1``, ...

    Example:
        >>> f = hk.transform(lambda x: hk.nets.MLP([8, 2])(x))
        >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 3]))
        >>> list(params)
        ['mlp/~/linear_0', 'mlp/~/linear_1']
    """

    def __init__(self, output_sizes: Iterable[int], w_init: InitializerFn | None = None,
                 b_init: InitializerFn | None = None, with_bias: bool = True,
                 activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
                 activate_final: bool = False, name: str | None = None):
        """Creates the layers.

        Args:
            output_sizes: Output size of each layer.
            w_init: Initializer of every ``w``.
            b_init: Initializer of every ``b`` (not allowed with ``with_bias=False``).
            with_bias: Whether the layers have biases.
            activation: Applied after every layer but the last (and the last too with
                ``activate_final``).
            activate_final: Whether to activate (and drop out) after the last layer.
            name: Module name; defaults to ``"mlp"``.
        """
        if not with_bias and b_init is not None:
            # Checked before the module is named, as in Haiku: no module path yet.
            raise errors.ConfigurationError(
                "When with_bias=False b_init must not be set.", argument="b_init",
                expected="None when with_bias=False", got=b_init)
        super().__init__(name=name)
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init
        self.activation = activation
        self.activate_final = activate_final
        output_sizes = tuple(output_sizes)
        self.layers = tuple(
            linear.Linear(output_size=size, w_init=w_init, b_init=b_init, with_bias=with_bias,
                          name=f"linear_{index}")
            for index, size in enumerate(output_sizes))
        self._output_sizes = output_sizes
        # An instance attribute, as in Haiku: the last layer's size.
        self.output_size = output_sizes[-1] if output_sizes else None

    def __call__(self, inputs: jax.Array, dropout_rate: float | None = None,
                 rng: jax.Array | None = None) -> jax.Array:
        """Applies the layers.

        Args:
            inputs: Array ``[..., features]``.
            dropout_rate: Dropout rate applied before each activation; needs ``rng``.
            rng: Key for dropout; needs ``dropout_rate``.

        Returns:
            Array ``[..., output_sizes[-1]]``.
        """
        if dropout_rate is not None and rng is None:
            raise errors.ConfigurationError(
                "When using dropout an rng key must be passed.", module_path=self.module_name,
                argument="rng", expected="a key when dropout_rate is set", got=None)
        if rng is not None and dropout_rate is None:
            raise errors.ConfigurationError(
                "RNG should only be passed when using dropout.", module_path=self.module_name,
                argument="rng", expected="None when dropout_rate is None", got=rng)
        seq = hk.PRNGSequence(rng) if rng is not None else None
        num_layers = len(self.layers)
        out = inputs
        for index, layer in enumerate(self.layers):
            out = layer(out)
            if index < num_layers - 1 or self.activate_final:
                if dropout_rate is not None:
                    out = dropout_lib.dropout(next(seq), dropout_rate, out)
                out = relu_kernels.as_kernel_if_relu(self.activation)(out)
        return out

    def reverse(self, activate_final: bool | None = None, name: str | None = None) -> "MLP":
        """Returns an MLP mirroring this one's sizes back to its input size.

        Example:
            >>> def f(x):
            ...     mlp = hk.nets.MLP([5, 4])
            ...     y = mlp(x)
            ...     return mlp.reverse()(y)
            >>> hk.transform(f).apply(hk.transform(f).init(0, jnp.ones([1, 3])), None,
            ...                       jnp.ones([1, 3])).shape
            (1, 3)
        """
        if activate_final is None:
            activate_final = self.activate_final
        if name is None:
            name = self.name + "_reversed"
        if self.layers[0].input_size is None:
            raise errors.ConfigurationError(
                "You cannot reverse an MLP until it has been called.",
                module_path=self.module_name, argument="self",
                expected="an MLP that has been called", got="an MLP not yet called")
        output_sizes = tuple(
            layer.input_size for layer in reversed(self.layers))
        return MLP(output_sizes=output_sizes, w_init=self.w_init, b_init=self.b_init,
                   with_bias=self.with_bias, activation=self.activation,
                   activate_final=activate_final, name=name)
