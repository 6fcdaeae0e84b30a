"""Functions over Haiku's two-level ``{module_name: {name: value}}`` params/state dicts."""

from collections.abc import Callable, Generator, Iterator, Mapping
import re
from typing import Any, TypeVar

import jax
import numpy as np

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

# A two-level structure: module path -> parameter (or state) name -> value.
Structure = Mapping[str, Mapping[str, Any]]
MutableStructure = dict[str, dict[str, Any]]
Predicate = Callable[[str, str, Any], bool]

# Matches jax's short dtype spelling, so merge's message reads like Haiku's ("f32[2]").
_DTYPE_PREFIX = re.compile(r"^(bfloat|float|uint|int|complex)")
_SHORT_PREFIX = {"bfloat": "bf", "float": "f", "uint": "u", "int": "s", "complex": "c"}


class FlatMap(Mapping[K, V]):
    """An immutable mapping that JAX treats as a pytree; nested mappings become FlatMaps too.

    Haiku returned ``FlatMap`` from ``init`` in early versions, and ``hk.config`` can still ask
    checkpoint restoring for one (``restore_flatmap=True``). Its pytree flattening sorts keys,
    like a ``dict``'s, so a ``FlatMap`` and a ``dict`` with the same contents have the same
    leaves in the same order.

    Example:
        >>> fm = hk.data_structures.to_immutable_dict({"linear": {"w": jnp.ones([2])}})
        >>> type(fm["linear"]).__name__
        'FlatMap'
        >>> jax.tree.map(jnp.shape, fm)
        FlatMap({'linear': FlatMap({'w': (2,)})})
    """

    __slots__ = ("_mapping",)

    def __init__(self, *args: Any, **kwargs: Any):
        """Copies ``dict(*args, **kwargs)``, turning every nested ``Mapping`` into a FlatMap.

        Args:
            *args: At most one mapping or iterable of ``(key, value)`` pairs, as for ``dict``.
            **kwargs: Further entries, as for ``dict``.
        """
        self._mapping = {
            k: (v if isinstance(v, FlatMap) or not isinstance(v, Mapping) else FlatMap(v))
            for k, v in dict(*args, **kwargs).items()
        }

    @classmethod
    def _from_converted(cls, mapping: dict[K, V]) -> "FlatMap[K, V]":
        # Unflattening rebuilds a FlatMap from children that are already converted.
        out = object.__new__(cls)
        out._mapping = mapping
        return out

    def __getitem__(self, key: K) -> V:
        return self._mapping[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._mapping)

    def __len__(self) -> int:
        return len(self._mapping)

    def __contains__(self, key: object) -> bool:
        return key in self._mapping

    def __hash__(self) -> int:
        # Arrays are unhashable, so hashing a FlatMap that holds them raises TypeError.
        return hash(tuple(sorted(self._mapping.items(), key=lambda item: item[0])))

    def __repr__(self) -> str:
        return f"FlatMap({self._mapping!r})"

    def __reduce__(self) -> tuple[type, tuple[dict[K, V]]]:
        return FlatMap, (self._mapping,)


def _flatmap_flatten_with_keys(fm: FlatMap) -> tuple[list[tuple[Any, Any]], tuple[Any, ...]]:
    keys = tuple(sorted(fm._mapping))
    return [(jax.tree_util.DictKey(k), fm._mapping[k]) for k in keys], keys


def _flatmap_flatten(fm: FlatMap) -> tuple[list[Any], tuple[Any, ...]]:
    keys = tuple(sorted(fm._mapping))
    return [fm._mapping[k] for k in keys], keys


def _flatmap_unflatten(keys: tuple[Any, ...], children: Any) -> FlatMap:
    return FlatMap._from_converted(dict(zip(keys, children)))


jax.tree_util.register_pytree_with_keys(
    FlatMap, _flatmap_flatten_with_keys, _flatmap_unflatten, _flatmap_flatten)


def to_mutable_dict(mapping: Mapping[K, V]) -> dict[K, V]:
    """Returns a copy of ``mapping`` in which every nested ``Mapping`` is a plain ``dict``.

    Args:
        mapping: A mapping, possibly holding further mappings (``FlatMap``, frozen dicts…).

    Returns:
        A new ``dict`` of dicts with the same keys, in the same order; leaves are shared.

    Example:
        >>> fm = hk.data_structures.to_immutable_dict({"linear": {"b": 0.0}})
        >>> hk.data_structures.to_mutable_dict(fm)
        {'linear': {'b': 0.0}}
    """
    return {k: (to_mutable_dict(v) if isinstance(v, Mapping) else v) for k, v in mapping.items()}


def to_haiku_dict(structure: Mapping[K, V]) -> dict[K, V]:
    """Returns a copy of ``structure`` of the type ``init`` returns: a ``dict`` of dicts.

    Args:
        structure: A two-level params or state mapping of any mapping type.

    Returns:
        A new ``dict`` of dicts with the same entries, in the same order.

    Example:
        >>> fm = hk.data_structures.to_immutable_dict({"linear": {"w": 1.0}})
        >>> hk.data_structures.to_haiku_dict(fm)
        {'linear': {'w': 1.0}}
    """
    return to_mutable_dict(structure)


def to_immutable_dict(mapping: Mapping[K, V]) -> FlatMap[K, V]:
    """Returns an immutable copy of ``mapping``, a ``FlatMap`` that JAX treats as a pytree.

    Nested mappings become FlatMaps too. Item assignment raises ``TypeError``, and so does
    ``hash`` when the mapping holds arrays.

    Args:
        mapping: A mapping, possibly holding further mappings.

    Returns:
        A ``FlatMap`` with the same entries.

    Example:
        >>> fm = hk.data_structures.to_immutable_dict({"linear": {"b": 0.0}})
        >>> fm
        FlatMap({'linear': FlatMap({'b': 0.0})})
        >>> fm["linear"]["b"]
        0.0
    """
    return FlatMap(mapping)


def traverse(structure: Structure) -> Generator[tuple[str, str, Any], None, None]:
    """Yields ``(module_name, name, value)`` for every entry, sorted by module, then by name.

    Args:
        structure: A two-level params or state mapping.

    Yields:
        One ``(module_name, name, value)`` tuple per entry.

    Example:
        >>> params = {"b": {"w": 1, "a": 2}, "a": {"w": 3}}
        >>> list(hk.data_structures.traverse(params))
        [('a', 'w', 3), ('b', 'a', 2), ('b', 'w', 1)]
    """
    for module_name in sorted(structure):
        bundle = structure[module_name]
        for name in sorted(bundle):
            yield module_name, name, bundle[name]


def filter(predicate: Predicate, structure: Structure) -> MutableStructure:  # noqa: A001
    """Returns the entries of ``structure`` for which ``predicate`` is true.

    Modules left with no entry are dropped. Entries come out sorted by module, then by name.

    Args:
        predicate: Called as ``predicate(module_name, name, value)``; keeps the entry if true.
        structure: A two-level params or state mapping.

    Returns:
        A new ``dict`` of dicts.

    Example:
        >>> params = {"linear": {"w": jnp.ones([2, 3]), "b": jnp.zeros([3])}}
        >>> weights = hk.data_structures.filter(lambda m, n, v: n == "w", params)
        >>> jax.tree.map(jnp.shape, weights)
        {'linear': {'w': (2, 3)}}
    """
    out: MutableStructure = {}
    for module_name, name, value in traverse(structure):
        if predicate(module_name, name, value):
            out.setdefault(module_name, {})[name] = value
    return out


def partition(
    predicate: Predicate, structure: Structure
) -> tuple[MutableStructure, MutableStructure]:
    """Splits ``structure`` into the entries where ``predicate`` is true and the rest.

    Modules with no entry are dropped from each output. Entries come out sorted by module,
    then by name; ``merge`` of the two outputs gives back every entry.

    Args:
        predicate: Called as ``predicate(module_name, name, value)``.
        structure: A two-level params or state mapping.

    Returns:
        ``(matching, rest)``, two new dicts of dicts.

    Example:
        >>> params = {"linear": {"w": 1.0, "b": 0.0}, "norm": {"scale": 1.0}}
        >>> trainable, frozen = hk.data_structures.partition(
        ...     lambda m, n, v: m == "linear", params)
        >>> trainable
        {'linear': {'b': 0.0, 'w': 1.0}}
        >>> frozen
        {'norm': {'scale': 1.0}}
    """
    matching, rest = partition_n(lambda m, n, v: 0 if predicate(m, n, v) else 1, structure, 2)
    return matching, rest


def partition_n(
    fn: Callable[[str, str, Any], int], structure: Structure, n: int
) -> tuple[MutableStructure, ...]:
    """Splits ``structure`` into ``n`` parts; ``fn`` gives each entry's part index.

    Modules with no entry are dropped from each part; a part with no entry is ``{}``.
    Entries come out sorted by module, then by name.

    Args:
        fn: Called as ``fn(module_name, name, value)``; returns an int in ``[0, n)``.
        structure: A two-level params or state mapping.
        n: The number of parts.

    Returns:
        A tuple of ``n`` new dicts of dicts.

    Raises:
        AssertionError: if ``fn`` returns an index outside ``[0, n)``, e.g.
            "5 must be in range [0, 2)" (Haiku raised this type; code may catch it).

    Example:
        >>> params = {"conv": {"w": 1.0}, "linear": {"w": 2.0, "b": 0.0}}
        >>> hk.data_structures.partition_n(lambda m, n, v: {"w": 0, "b": 2}[n], params, 3)
        ({'conv': {'w': 1.0}, 'linear': {'w': 2.0}}, {}, {'linear': {'b': 0.0}})
    """
    parts: tuple[MutableStructure, ...] = tuple({} for _ in range(n))
    for module_name, name, value in traverse(structure):
        index = fn(module_name, name, value)
        if not 0 <= index < n:
            raise AssertionError(f"{index} must be in range [0, {n})")
        parts[index].setdefault(module_name, {})[name] = value
    return parts


def _short_str(value: Any) -> str:
    """``f32[2,3]`` for an array-like (jax's spelling: ``s32``, ``bf16``, ``key<fry>``), else
    the value's repr, as Haiku's message shows it (``'s'``, ``1.0``, ``None``)."""
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        return repr(value)
    dtype = value.dtype
    dtype_name = dtype.name if isinstance(dtype, np.dtype) else str(dtype)
    dtype_name = _DTYPE_PREFIX.sub(lambda m: _SHORT_PREFIX[m.group(1)], dtype_name)
    return f"{dtype_name}[{','.join(str(d) for d in value.shape)}]"


def merge(*structures: Structure, check_duplicates: bool = False) -> MutableStructure:
    """Merges two-level structures; an entry in a later structure replaces an earlier one.

    Modules and names keep the order in which they were first seen.

    Args:
        *structures: Two-level params or state mappings.
        check_duplicates: If true, an entry found in several inputs must have the same shape
            and dtype in each; a value without ``shape``/``dtype`` (a Python number) only
            matches another such value.

    Returns:
        A new ``dict`` of dicts.

    Raises:
        ValueError: if ``check_duplicates`` is true and a duplicated entry's shape or dtype
            differs, e.g. "Duplicate array found with different shape/dtype for a.w: f32[2]
            vs f32[3]."

    Example:
        >>> trainable = {"linear": {"w": 1.0}}
        >>> frozen = {"linear": {"b": 0.0}, "norm": {"scale": 1.0}}
        >>> hk.data_structures.merge(trainable, frozen)
        {'linear': {'w': 1.0, 'b': 0.0}, 'norm': {'scale': 1.0}}
    """
    out: MutableStructure = {}
    for structure in structures:
        for module_name, bundle in structure.items():
            out_bundle = out.setdefault(module_name, {})
            for name, value in bundle.items():
                if check_duplicates and name in out_bundle:
                    previous = out_bundle[name]
                    # Haiku compares the (possibly missing) shape and dtype attributes, so
                    # 1.0 vs 2 passes but 1 vs f32[] does not.
                    if getattr(previous, "shape", None) != getattr(value, "shape", None) or (
                        getattr(previous, "dtype", None) != getattr(value, "dtype", None)
                    ):
                        raise ValueError(
                            "Duplicate array found with different shape/dtype for "
                            f"{module_name}.{name}: {_short_str(previous)} vs {_short_str(value)}.")
                out_bundle[name] = value
    return out


def map(  # noqa: A001
    fn: Callable[[str, str, V], T], structure: Mapping[str, Mapping[str, V]]
) -> dict[str, dict[str, T]]:
    """Returns ``structure`` with every value replaced by ``fn(module_name, name, value)``.

    Entries come out sorted by module, then by name.

    Args:
        fn: Called as ``fn(module_name, name, value)``; returns the new value.
        structure: A two-level params or state mapping.

    Returns:
        A new ``dict`` of dicts.

    Example:
        >>> params = {"linear": {"w": jnp.ones([2]), "b": jnp.ones([2])}}
        >>> zeroed = hk.data_structures.map(
        ...     lambda m, n, v: jnp.zeros_like(v) if n == "b" else v, params)
        >>> jax.tree.map(lambda v: v.tolist(), zeroed)
        {'linear': {'b': [0.0, 0.0], 'w': [1.0, 1.0]}}
    """
    out: dict[str, dict[str, T]] = {}
    for module_name, name, value in traverse(structure):
        out.setdefault(module_name, {})[name] = fn(module_name, name, value)
    return out


def tree_size(tree: Any) -> int:
    """Returns the total number of elements over all array leaves of ``tree``.

    Args:
        tree: Any pytree whose leaves have a ``size`` (arrays, ``jax.ShapeDtypeStruct``).

    Returns:
        The sum of ``leaf.size``.

    Raises:
        AttributeError: if a leaf has no ``size`` (a Python ``float``, say).

    Example:
        >>> params = {"linear": {"w": jnp.ones([2, 3]), "b": jnp.ones([3])}}
        >>> hk.data_structures.tree_size(params)
        9
    """
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


def tree_bytes(tree: Any) -> int:
    """Returns the total number of bytes over all array leaves of ``tree``.

    Args:
        tree: Any pytree whose leaves have a ``size`` and a ``dtype``.

    Returns:
        The sum of ``leaf.size * leaf.dtype.itemsize``.

    Raises:
        AttributeError: if a leaf has no ``size`` or ``dtype`` (a Python ``float``, say).

    Example:
        >>> params = {"linear": {"w": jnp.ones([2, 3]), "b": jnp.ones([3], jnp.bfloat16)}}
        >>> hk.data_structures.tree_bytes(params)
        30
    """
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


def is_subset(*, subset: Structure, superset: Structure) -> bool:
    """Returns whether every ``(module_name, name)`` of ``subset`` is also in ``superset``.

    Values are not compared.

    Args:
        subset: A two-level params or state mapping.
        superset: A two-level params or state mapping.

    Returns:
        True if each entry of ``subset`` has an entry at the same place in ``superset``.

    Example:
        >>> params = {"linear": {"w": 1.0, "b": 0.0}}
        >>> hk.data_structures.is_subset(subset={"linear": {"w": 2.0}}, superset=params)
        True
        >>> hk.data_structures.is_subset(subset=params, superset={"linear": {"w": 2.0}})
        False
    """
    return all(
        module_name in superset and name in superset[module_name]
        for module_name, name, _ in traverse(subset)
    )
