"""``hk.nets.VectorQuantizer`` and ``VectorQuantizerEMA`` (van den Oord et al. 2017, VQ-VAE).

Both snap each input vector to its nearest codebook entry and return a dict with the
straight-through quantized output, the loss, the perplexity of codebook use, the one-hot
encodings, their indices and the distances.
"""

from collections.abc import Hashable

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from hk_core._src.core import facade as hk
from hk_core._src.layers import errors
from hk_core._src.layers import initializers
from hk_core._src.layers import moving_averages


def _codebook_init() -> initializers.Initializer:
    return initializers.VarianceScaling(distribution="uniform")


def _check_last_axis(module_path: str, inputs: jax.Array, embedding_dim: int) -> None:
    if inputs.ndim < 1 or inputs.shape[-1] != embedding_dim:
        raise errors.InputShapeError(
            f"{module_path}: inputs must have a last axis of size embedding_dim={embedding_dim}, "
            f"got shape {inputs.shape}.", module_path=module_path, argument="inputs",
            expected=f"last axis {embedding_dim}", got=inputs.shape)


def _nearest(flat_inputs: jax.Array, embeddings: jax.Array) -> jax.Array:
    """Squared distances ``[N, K]`` from each input row to each codebook column."""
    return (jnp.sum(jnp.square(flat_inputs), 1, keepdims=True)
            - 2 * jnp.matmul(flat_inputs, embeddings)
            + jnp.sum(jnp.square(embeddings), 0, keepdims=True))


def _perplexity(encodings: jax.Array, cross_replica_axis: Hashable | None) -> jax.Array:
    avg_probs = jnp.mean(encodings, 0)
    if cross_replica_axis is not None:
        avg_probs = jax.lax.pmean(avg_probs, axis_name=cross_replica_axis)
    # 1e-10 keeps log finite for unused codes (p = 0 contributes 0 either way).
    return jnp.exp(-jnp.sum(avg_probs * jnp.log(avg_probs + 1e-10)))


def _encode(inputs: jax.Array, embeddings: jax.Array, embedding_dim: int):
    flat_inputs = jnp.reshape(inputs, [-1, embedding_dim])
    distances = _nearest(flat_inputs, embeddings)
    indices = jnp.argmax(-distances, 1)
    encodings = jax.nn.one_hot(indices, embeddings.shape[1], dtype=distances.dtype)
    return flat_inputs, distances, encodings, jnp.reshape(indices, inputs.shape[:-1])


def _outputs(inputs, quantized, loss, encodings, indices, distances, cross_replica_axis):
    return {
        # Straight-through estimator: the forward value is `quantized`, the gradient
        # flows to `inputs` as if quantization were the identity.
        "quantize": inputs + jax.lax.stop_gradient(quantized - inputs),
        "loss": loss,
        "perplexity": _perplexity(encodings, cross_replica_axis),
        "encodings": encodings,
        "encoding_indices": indices,
        "distances": distances,
    }


class VectorQuantizer(hk.Module):
    """Quantizes vectors to a learned codebook (param ``embeddings [D, K]``).

    ``loss = mean((q - sg(x))²) + commitment_cost · mean((sg(q) - x)²)`` trains the
    codebook and commits the encoder to it.

    Example:
        >>> def f(x):
        ...     return hk.nets.VectorQuantizer(4, 16, commitment_cost=0.25)(x, is_training=True)
        >>> f = hk.transform(f)
        >>> x = jnp.ones([2, 5, 4])
        >>> params = f.init(jax.random.PRNGKey(0), x)
        >>> jax.tree.map(jnp.shape, params)
        {'vector_quantizer': {'embeddings': (4, 16)}}
        >>> out = f.apply(params, None, x)
        >>> out["quantize"].shape, out["encodings"].shape, out["encoding_indices"].shape
        ((2, 5, 4), (10, 16), (2, 5))
    """

    def __init__(self, embedding_dim: int, num_embeddings: int, commitment_cost: float,
                 dtype: DTypeLike = jnp.float32, name: str | None = None,
                 cross_replica_axis: Hashable | None = None):
        """Creates the quantizer.

        Args:
            embedding_dim: Size ``D`` of each vector (the inputs' last axis).
            num_embeddings: Number ``K`` of codebook entries.
            commitment_cost: Weight of the commitment term of the loss.
            dtype: Dtype of the codebook.
            name: Module name; defaults to ``"vector_quantizer"``.
            cross_replica_axis: Named axis over which code usage is averaged for the
                perplexity.
        """
        super().__init__(name=name)
        self.embedding_dim = embedding_dim
        self.num_embeddings = num_embeddings
        self.commitment_cost = commitment_cost
        self.cross_replica_axis = cross_replica_axis
        self._dtype = dtype
        self._embedding_shape = [embedding_dim, num_embeddings]

    @property
    def embeddings(self) -> jax.Array:
        """The codebook ``[embedding_dim, num_embeddings]`` (param ``embeddings``)."""
        return hk.get_parameter("embeddings", self._embedding_shape, self._dtype,
                                        init=_codebook_init())

    def __call__(self, inputs: jax.Array, is_training: bool) -> dict[str, jax.Array]:
        """Quantizes ``inputs [..., embedding_dim]``.

        Args:
            inputs: Vectors to quantize, last axis of size ``embedding_dim``.
            is_training: Unused (the loss is the same); kept for ``VectorQuantizerEMA``'s
                signature.

        Returns:
            Dict with ``quantize`` (input shape), ``loss`` (scalar), ``perplexity``
            (scalar), ``encodings [N, K]``, ``encoding_indices`` (input shape minus the last
            axis) and ``distances [N, K]``, with ``N`` the number of input vectors.

        Raises:
            ValueError: if the last axis of ``inputs`` is not ``embedding_dim``.
        """
        del is_training
        _check_last_axis(self.module_name, inputs, self.embedding_dim)
        _, distances, encodings, indices = _encode(inputs, self.embeddings, self.embedding_dim)
        quantized = self.quantize(indices)
        e_latent_loss = jnp.mean(jnp.square(jax.lax.stop_gradient(quantized) - inputs))
        q_latent_loss = jnp.mean(jnp.square(quantized - jax.lax.stop_gradient(inputs)))
        loss = q_latent_loss + self.commitment_cost * e_latent_loss
        return _outputs(inputs, quantized, loss, encodings, indices, distances,
                        self.cross_replica_axis)

    def quantize(self, encoding_indices: jax.Array) -> jax.Array:
        """Returns the codebook vectors for ``encoding_indices`` (shape ``[..., D]``)."""
        return jnp.swapaxes(self.embeddings, 1, 0)[(encoding_indices,)]


class VectorQuantizerEMA(hk.Module):
    """Quantizes vectors to a codebook learned by moving averages (state, not params).

    The codebook is state ``embeddings [D, K]``; while training, moving averages of the
    code counts (``ema_cluster_size``) and of the summed assigned inputs (``ema_dw``)
    replace each code by the (Laplace-smoothed) mean of its inputs. The loss is only the
    commitment term.

    Example:
        >>> def f(x, is_training):
        ...     vq = hk.nets.VectorQuantizerEMA(4, 16, commitment_cost=0.25, decay=0.99)
        ...     return vq(x, is_training)["quantize"]
        >>> f = hk.transform_with_state(f)
        >>> x = jnp.ones([8, 4])
        >>> params, state = f.init(jax.random.PRNGKey(0), x, True)
        >>> for bundle, values in state.items():
        ...     print(bundle, list(values))
        vector_quantizer_ema ['embeddings']
        vector_quantizer_ema/~/ema_cluster_size ['hidden', 'average', 'counter']
        vector_quantizer_ema/~/ema_dw ['hidden', 'average', 'counter']
        >>> f.apply(params, state, None, x, False)[0].shape
        (8, 4)
    """

    def __init__(self, embedding_dim: int, num_embeddings: int, commitment_cost: float,
                 decay: float, epsilon: float = 1e-5, dtype: DTypeLike = jnp.float32,
                 cross_replica_axis: Hashable | None = None, name: str | None = None):
        """Creates the quantizer and its two moving averages.

        Args:
            embedding_dim: Size ``D`` of each vector (the inputs' last axis).
            num_embeddings: Number ``K`` of codebook entries.
            commitment_cost: Weight of the commitment loss.
            decay: Decay of the moving averages, in ``[0, 1]``.
            epsilon: Laplace smoothing of the code counts (keeps unused codes finite).
            dtype: Dtype of the codebook and averages.
            cross_replica_axis: Named axis over which counts and sums are ``psum``'d and
                code usage averaged.
            name: Module name; defaults to ``"vector_quantizer_ema"``.

        Raises:
            ValueError: if ``decay`` is outside ``[0, 1]``.
        """
        super().__init__(name=name)
        if not 0 <= decay <= 1:
            raise errors.ConfigurationError(
                f"{self.module_name}: decay must be in range [0, 1], got {decay}.",
                module_path=self.module_name, argument="decay", expected="in [0, 1]", got=decay)
        self.embedding_dim = embedding_dim
        self.num_embeddings = num_embeddings
        self.commitment_cost = commitment_cost
        self.decay = decay
        self.epsilon = epsilon
        self.cross_replica_axis = cross_replica_axis
        self._dtype = dtype
        self._embedding_shape = [embedding_dim, num_embeddings]
        self._ema_cluster_size = moving_averages.ExponentialMovingAverage(
            decay=decay, name="ema_cluster_size")
        self._ema_dw = moving_averages.ExponentialMovingAverage(decay=decay, name="ema_dw")

    @property
    def embeddings(self) -> jax.Array:
        """The codebook ``[embedding_dim, num_embeddings]`` (state ``embeddings``)."""
        return hk.get_state("embeddings", self._embedding_shape, self._dtype,
                                    init=_codebook_init())

    @property
    def ema_cluster_size(self) -> moving_averages.ExponentialMovingAverage:
        """The moving average of code counts ``[K]`` (its state created if missing)."""
        self._ema_cluster_size.initialize([self.num_embeddings], self._dtype)
        return self._ema_cluster_size

    @property
    def ema_dw(self) -> moving_averages.ExponentialMovingAverage:
        """The moving average of per-code input sums ``[D, K]`` (state created if missing)."""
        self._ema_dw.initialize(self._embedding_shape, self._dtype)
        return self._ema_dw

    def __call__(self, inputs: jax.Array, is_training: bool) -> dict[str, jax.Array]:
        """Quantizes ``inputs [..., embedding_dim]``; updates the codebook if training.

        Args:
            inputs: Vectors to quantize, last axis of size ``embedding_dim``.
            is_training: Update the moving averages and the codebook.

        Returns:
            The same dict as ``VectorQuantizer``; ``loss`` is
            ``commitment_cost · mean((sg(q) - x)²)``.

        Raises:
            ValueError: if the last axis of ``inputs`` is not ``embedding_dim``.
        """
        _check_last_axis(self.module_name, inputs, self.embedding_dim)
        embeddings = self.embeddings
        flat_inputs, distances, encodings, indices = _encode(
            inputs, embeddings, self.embedding_dim)
        quantized = jnp.swapaxes(embeddings, 1, 0)[(indices,)]
        e_latent_loss = jnp.mean(jnp.square(jax.lax.stop_gradient(quantized) - inputs))
        if is_training:
            cluster_size = jnp.sum(encodings, axis=0)
            if self.cross_replica_axis is not None:
                cluster_size = jax.lax.psum(cluster_size, axis_name=self.cross_replica_axis)
            cluster_size = self.ema_cluster_size(cluster_size)
            dw = jnp.matmul(flat_inputs.T, encodings)
            if self.cross_replica_axis is not None:
                dw = jax.lax.psum(dw, axis_name=self.cross_replica_axis)
            dw = self.ema_dw(dw)
            n = jnp.sum(cluster_size)
            cluster_size = ((cluster_size + self.epsilon)
                            / (n + self.num_embeddings * self.epsilon) * n)
            hk.set_state("embeddings", dw / jnp.reshape(cluster_size, [1, -1]))
        loss = self.commitment_cost * e_latent_loss
        return _outputs(inputs, quantized, loss, encodings, indices, distances,
                        self.cross_replica_axis)

    def quantize(self, encoding_indices: jax.Array) -> jax.Array:
        """Returns the codebook vectors for ``encoding_indices`` (shape ``[..., D]``)."""
        return jnp.swapaxes(self.embeddings, 1, 0)[(encoding_indices,)]
