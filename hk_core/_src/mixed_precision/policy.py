"""``hk.mixed_precision.Policy``: which dtypes a module stores, computes and returns in.

It has the interface of ``jmp.Policy`` (``param_dtype``, ``compute_dtype``,
``output_dtype``, ``cast_to_param/compute/output``), so ``hk.mixed_precision`` accepts
either without depending on ``jmp``.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_DTYPE_ALIASES = {
    "bf16": "bfloat16",
    "f16": "float16", "half": "float16",
    "f32": "float32", "full": "float32", "single": "float32",
    "f64": "float64", "double": "float64",
}
_FIELD_ALIASES = {
    "p": "param_dtype", "param": "param_dtype", "params": "param_dtype",
    "c": "compute_dtype", "compute": "compute_dtype",
    "o": "output_dtype", "out": "output_dtype", "output": "output_dtype",
}


def parse_dtype(name: str) -> np.dtype:
    """Returns the dtype named ``name`` (``"bf16"``, ``"float32"``, ``"half"``...).

    Raises:
        ValueError: if ``name`` is no known floating dtype.
    """
    text = name.strip().lower()
    text = _DTYPE_ALIASES.get(text, text)
    try:
        dtype = jnp.dtype(text)
    except TypeError:
        dtype = None
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(
            f"Unknown floating-point dtype {name!r} in a mixed-precision policy; expected e.g. "
            "'float32', 'bfloat16', 'float16' (or 'f32', 'bf16', 'f16', 'half', 'full').")
    return dtype


def cast_floating(tree: Any, dtype: Any) -> Any:
    """Casts every floating-point array leaf of ``tree`` to ``dtype``; other leaves are kept."""
    def cast(leaf):
        if isinstance(leaf, (jax.Array, np.ndarray)) and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree.map(cast, tree)


@dataclasses.dataclass(frozen=True)
class Policy:
    """The dtypes a module keeps its parameters in, computes in and returns.

    Build one from dtypes or from a string such as
    ``"params=float32,compute=bfloat16,output=float32"`` (keys may be shortened to
    ``p``/``c``/``o``; unnamed fields default to float32; a single dtype sets all three).

    Example:
        >>> policy = hk.mixed_precision.Policy.from_string("p=f32,c=bf16,o=f32")
        >>> policy
        Policy(param_dtype=float32, compute_dtype=bfloat16, output_dtype=float32)
        >>> policy.cast_to_compute({"x": jnp.ones([2]), "n": jnp.arange(2)})["x"].dtype
        dtype(bfloat16)
    """

    param_dtype: Any
    compute_dtype: Any
    output_dtype: Any

    def __post_init__(self):
        for field in ("param_dtype", "compute_dtype", "output_dtype"):
            object.__setattr__(self, field, jnp.dtype(getattr(self, field)))

    @classmethod
    def from_string(cls, spec: str) -> "Policy":
        """Parses ``"params=float32,compute=bfloat16,output=float32"`` (or ``"bf16"``).

        Raises:
            ValueError: for an unknown key or dtype, naming it and what is accepted.
        """
        if "=" not in spec:
            dtype = parse_dtype(spec)
            return cls(dtype, dtype, dtype)
        fields = {"param_dtype": jnp.float32, "compute_dtype": jnp.float32,
                  "output_dtype": jnp.float32}
        for item in spec.split(","):
            key, sep, value = item.partition("=")
            field = _FIELD_ALIASES.get(key.strip().lower())
            if not sep or field is None:
                raise ValueError(
                    f"Cannot parse {item!r} in mixed-precision policy {spec!r}: expected "
                    "comma-separated 'params=<dtype>', 'compute=<dtype>', 'output=<dtype>' "
                    "(or 'p=', 'c=', 'o=').")
            fields[field] = parse_dtype(value)
        return cls(**fields)

    def cast_to_param(self, tree: Any) -> Any:
        """Casts the floating-point arrays in ``tree`` to ``param_dtype``."""
        return cast_floating(tree, self.param_dtype)

    def cast_to_compute(self, tree: Any) -> Any:
        """Casts the floating-point arrays in ``tree`` to ``compute_dtype``."""
        return cast_floating(tree, self.compute_dtype)

    def cast_to_output(self, tree: Any) -> Any:
        """Casts the floating-point arrays in ``tree`` to ``output_dtype``."""
        return cast_floating(tree, self.output_dtype)

    def with_output_dtype(self, output_dtype: Any) -> "Policy":
        """Returns a copy with another ``output_dtype``."""
        return dataclasses.replace(self, output_dtype=output_dtype)

    def __str__(self) -> str:
        return (f"params={self.param_dtype.name},compute={self.compute_dtype.name},"
                f"output={self.output_dtype.name}")

    def __repr__(self) -> str:
        return (f"Policy(param_dtype={self.param_dtype.name}, compute_dtype="
                f"{self.compute_dtype.name}, output_dtype={self.output_dtype.name})")
