"""``hk.Embed``: a learned table of vectors looked up by integer id."""

import enum

import jax
import jax.numpy as jnp
from jax import lax

from hk_core._src.core import facade as hk
from hk_core._src.layers import errors
from hk_core._src.layers import initializers
from hk_core._src.layers.initializers import InitializerFn


class EmbedLookupStyle(enum.Enum):
    """How ``hk.Embed`` turns ids into vectors.

    ``ARRAY_INDEX`` gathers rows (``embeddings[ids]``); ``ONE_HOT`` multiplies a one-hot
    encoding of the ids with the table, which can be faster on some accelerators.

    Example:
        >>> hk.EmbedLookupStyle["ONE_HOT"]
        <EmbedLookupStyle.ONE_HOT: 2>
    """

    ARRAY_INDEX = 1
    ONE_HOT = 2


def _resolve_style(style: "str | EmbedLookupStyle") -> EmbedLookupStyle:
    if isinstance(style, str):
        # An unknown name raises AttributeError, as Haiku's enum attribute lookup does.
        return getattr(EmbedLookupStyle, style.upper())
    return style


class Embed(hk.Module):
    """Maps integer ids to rows of a ``[vocab_size, embed_dim]`` parameter ``embeddings``.

    The table is initialized with ``TruncatedNormal(stddev=1.0)`` unless ``w_init`` or an
    ``embedding_matrix`` (used as the initial value, keeping its dtype) is given.

    Example:
        >>> f = hk.transform(lambda ids: hk.Embed(vocab_size=10, embed_dim=4)(ids))
        >>> ids = jnp.array([[1, 2, 3]])
        >>> params = f.init(jax.random.PRNGKey(0), ids)
        >>> jax.tree.map(jnp.shape, params)
        {'embed': {'embeddings': (10, 4)}}
        >>> f.apply(params, None, ids).shape
        (1, 3, 4)
    """

    def __init__(
        self,
        vocab_size: int | None = None,
        embed_dim: int | None = None,
        embedding_matrix: jax.typing.ArrayLike | None = None,
        w_init: InitializerFn | None = None,
        lookup_style: "str | EmbedLookupStyle" = "ARRAY_INDEX",
        name: str | None = None,
        precision: lax.Precision = lax.Precision.HIGHEST,
    ):
        """Creates the layer; the table is made on the first use.

        Args:
            vocab_size: Number of rows. Taken from ``embedding_matrix`` if that is given.
            embed_dim: Number of columns. Taken from ``embedding_matrix`` if that is given.
            embedding_matrix: Optional initial table ``[vocab_size, embed_dim]``.
            w_init: Initializer of the table; default ``TruncatedNormal(stddev=1.0)``.
            lookup_style: ``'ARRAY_INDEX'`` (default) or ``'ONE_HOT'`` (any case), or an
                ``hk.EmbedLookupStyle``.
            name: Module name; defaults to ``'embed'``.
            precision: Matmul precision of the ``ONE_HOT`` lookup.

        Raises:
            ValueError: if neither ``embedding_matrix`` nor both sizes are given, or the sizes
                disagree with ``embedding_matrix``.
        """
        super().__init__(name=name)
        if embedding_matrix is None and not (vocab_size and embed_dim):
            raise errors.ConfigurationError(
                f"{self.module_name}: hk.Embed must be supplied either with an initial "
                "`embedding_matrix` or with `embed_dim` and `vocab_size` (got "
                f"vocab_size={vocab_size!r}, embed_dim={embed_dim!r}).",
                module_path=self.module_name, argument="embedding_matrix",
                expected="a matrix, or vocab_size and embed_dim", got=None)
        if embedding_matrix is not None:
            embedding_matrix = jnp.asarray(embedding_matrix)
            matrix_vocab, matrix_dim = embedding_matrix.shape
            if ((vocab_size is not None and vocab_size != matrix_vocab)
                    or (embed_dim is not None and embed_dim != matrix_dim)):
                raise errors.ConfigurationError(
                    f"{self.module_name}: An `embedding_matrix` of shape "
                    f"{embedding_matrix.shape} was supplied but the `vocab_size` of "
                    f"{vocab_size} or `embed_dim` of {embed_dim} do not match it.",
                    module_path=self.module_name, argument="embedding_matrix",
                    expected=(vocab_size, embed_dim), got=embedding_matrix.shape)
            vocab_size, embed_dim = matrix_vocab, matrix_dim
            w_init = lambda shape, dtype: embedding_matrix  # noqa: E731 - the given table
            self._dtype = embedding_matrix.dtype
        else:
            self._dtype = jnp.float32
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.lookup_style = lookup_style
        self.precision = precision
        self.w_init = w_init if w_init is not None else initializers.TruncatedNormal()

    @property
    def embeddings(self) -> jax.Array:
        """The ``[vocab_size, embed_dim]`` table (created on first access)."""
        return hk.get_parameter("embeddings", [self.vocab_size, self.embed_dim],
                                        self._dtype, init=self.w_init)

    def __call__(self, ids: jax.typing.ArrayLike,
                 lookup_style: "str | EmbedLookupStyle | None" = None,
                 precision: lax.Precision | None = None) -> jax.Array:
        """Looks up the rows of ``ids``.

        Args:
            ids: Integer array of any shape. Out-of-range ids follow JAX indexing
                (``ARRAY_INDEX``: clamped; negative ids count from the end).
            lookup_style: Overrides the constructor's ``lookup_style`` for this call.
            precision: Overrides the constructor's ``precision`` for this call.

        Returns:
            ``[*ids.shape, embed_dim]``.

        Raises:
            ValueError: if ``ids`` is not of an integer dtype (the message names the module).
            AttributeError: for an unknown ``lookup_style`` name.
        """
        ids = jnp.asarray(ids)
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise errors.InputShapeError(
                f"{self.module_name}: hk.Embed's __call__ method must take an array of integer "
                f"dtype but was called with an array of {ids.dtype} (shape {ids.shape}).",
                module_path=self.module_name, argument="ids", expected="an integer dtype",
                got=ids.dtype)
        style = _resolve_style(lookup_style or self.lookup_style)
        # asarray: params passed to apply may be numpy arrays, which index differently.
        embeddings = jnp.asarray(self.embeddings)
        if style == EmbedLookupStyle.ARRAY_INDEX:
            return embeddings[ids]
        if style == EmbedLookupStyle.ONE_HOT:
            one_hot_ids = jax.nn.one_hot(ids, self.vocab_size, dtype=embeddings.dtype)
            return jnp.dot(one_hot_ids, embeddings,
                           precision=precision if precision is not None else self.precision)
        raise errors.ConfigurationError(
            f"{self.module_name}: lookup_style must be an EmbedLookupStyle or its name, got "
            f"{style!r}.", module_path=self.module_name, argument="lookup_style",
            expected="an EmbedLookupStyle or its name", got=style)
