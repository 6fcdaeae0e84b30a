"""``ShardingRules``: regular expressions on ``module/param`` paths mapped to partition specs.

The rules shard params, and everything that mirrors them: a ``TrainState`` (or any pytree with
``params``/``state``/``opt_state`` fields) gets its optimizer-state leaves that mirror a param
(Adam's ``mu``/``nu``) placed like that param, and its scalars replicated.
"""

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

Rule = tuple[str, PartitionSpec | Sequence[Any] | None]

# How a leaf is treated, from its key path (see _classify).
_PARAM, _STATE, _OTHER = "param", "state", "other"


class ShardingRuleError(ValueError):
    """A sharding rule cannot place a value: no rule (strict), or its spec does not fit.

    Attributes:
        path: ``module/param`` path (or key path) of the value.
        shape: Shape of the value.
        spec: The ``PartitionSpec`` that was tried (``None`` when no rule matched).
        mesh_axes: The mesh's ``{axis: size}``.

    Example:
        >>> from jax.sharding import PartitionSpec as P
        >>> from hk_core import distributed
        >>> mesh = distributed.make_mesh({"model": 1}, devices=jax.devices()[:1])
        >>> rules = distributed.ShardingRules([(r"linear/w$", P(None, "model"))], strict=True)
        >>> params = {"linear": {"w": jnp.ones([3, 4]), "b": jnp.ones([4])}}
        >>> try:
        ...     rules.placements(params, mesh)
        ... except distributed.ShardingRuleError as e:
        ...     print(e.path, e.shape, e.spec)
        linear/b (4,) None
    """

    def __init__(self, message: str, path: str, shape: tuple[int, ...],
                 spec: PartitionSpec | None, mesh_axes: dict[str, int]):
        self.path, self.shape, self.spec, self.mesh_axes = path, shape, spec, mesh_axes
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where one leaf goes: the rule that matched, its spec and the bytes each device holds.

    Attributes:
        path: ``module/param`` for params; for other leaves (model state, optimizer state,
            counters) the key path, e.g. ``.opt_state[0].mu['linear']['w']``.
        role: ``"param"``, ``"state"`` or ``"other"`` (optimizer state, step counters…).
        shape: Shape of the leaf.
        dtype: Dtype of the leaf.
        rule: The pattern that matched, ``"(mirrors param)"`` for optimizer state placed
            like its param, or ``None`` (replicated).
        spec: The ``PartitionSpec``.
        shard_count: Number of pieces the leaf is cut into (product of the sharded axes).
        nbytes: Total bytes of the leaf.

    Example:
        >>> from jax.sharding import PartitionSpec as P
        >>> from hk_core import distributed
        >>> mesh = distributed.make_mesh({"model": 1}, devices=jax.devices()[:1])
        >>> rules = distributed.ShardingRules([(r"linear/w$", P(None, "model"))])
        >>> params = {"linear": {"w": jnp.ones([3, 4]), "b": jnp.ones([4])}}
        >>> for p in rules.placements(params, mesh):
        ...     print(p.path, p.rule, tuple(p.spec), p.nbytes)
        linear/b None () 16
        linear/w linear/w$ (None, 'model') 48
    """

    path: str
    role: str
    shape: tuple[int, ...]
    dtype: np.dtype
    rule: str | None
    spec: PartitionSpec
    shard_count: int
    nbytes: int

    @property
    def bytes_per_device(self) -> int:
        """Bytes of this leaf on each device that holds a shard of it."""
        return self.nbytes // self.shard_count


def _as_spec(spec: Any, pattern: str) -> PartitionSpec:
    if isinstance(spec, PartitionSpec):
        return spec
    if spec is None:
        return PartitionSpec()
    if isinstance(spec, (tuple, list)):
        return PartitionSpec(*spec)
    raise TypeError(
        f"ShardingRules: rule {pattern!r} has spec {spec!r}; expected a "
        "jax.sharding.PartitionSpec (or a tuple of its entries, or None for replicated).")


def _spec_str(spec: PartitionSpec) -> str:
    return "P(" + ", ".join(repr(entry) for entry in spec) + ")"


def _key_name(entry: Any) -> Any:
    if isinstance(entry, jax.tree_util.DictKey):
        return entry.key
    if isinstance(entry, jax.tree_util.GetAttrKey):
        return entry.name
    return None


def _classify(path: tuple) -> tuple[str, str | None]:
    """Returns ``(role, "module/name")`` for a key path; the name is ``None`` if not 2-level."""
    if len(path) < 2 or not all(isinstance(e, jax.tree_util.DictKey) and isinstance(e.key, str)
                                for e in path[-2:]):
        return _OTHER, None
    name = f"{path[-2].key}/{path[-1].key}"
    if len(path) == 2:
        return _PARAM, name
    owner = _key_name(path[-3])
    if owner == "params":
        return _PARAM, name
    if owner == "state":
        return _STATE, name
    return _OTHER, name


def _leaf_shape_dtype(leaf: Any) -> tuple[tuple[int, ...], np.dtype]:
    shape = tuple(int(d) for d in np.shape(leaf))
    dtype = getattr(leaf, "dtype", None)
    return shape, np.dtype(dtype if dtype is not None else np.result_type(leaf))


class ShardingRules:
    """Maps ``module/param`` paths to ``PartitionSpec`` objects; the first matching rule wins.

    Each pattern is a regular expression searched (``re.search``) in the path
    ``"<module path>/<param name>"``, e.g. ``"mlp/~/linear_0/w"``. An unmatched parameter is
    replicated, or raises with ``strict=True``.

    Example:
        >>> from jax.sharding import PartitionSpec as P
        >>> from hk_core import distributed
        >>> rules = distributed.ShardingRules([(r"linear/w$", P(None, "model"))])
        >>> rules.match("mlp/~/linear/w")
        ('linear/w$', P(None, 'model'))
        >>> rules.match("mlp/~/linear/b")
        (None, P())
    """

    def __init__(self, rules: Iterable[Rule], strict: bool = False):
        """Compiles the rules.

        Args:
            rules: ``(pattern, spec)`` pairs, tried in order. ``spec`` is a
                ``PartitionSpec``, a tuple of its entries, or ``None`` (replicated).
            strict: If True, a parameter that no rule matches raises ``ShardingRuleError``
                instead of being replicated.

        Raises:
            ValueError: if a pattern is not a valid regular expression or a rule is not a pair.
            TypeError: if a spec is not a ``PartitionSpec``, tuple or ``None``.
        """
        compiled = []
        for i, rule in enumerate(rules):
            is_pair = isinstance(rule, (tuple, list)) and len(rule) == 2
            if not is_pair or not isinstance(rule[0], str):
                raise ValueError(
                    f"ShardingRules: rule {i} is {rule!r}; expected a (pattern: str, "
                    "PartitionSpec) pair.")
            pattern, spec = rule
            try:
                regex = re.compile(pattern)
            except re.error as e:
                raise ValueError(
                    f"ShardingRules: rule {i} pattern {pattern!r} is not a valid regular "
                    f"expression: {e}") from e
            compiled.append((regex, _as_spec(spec, pattern)))
        self._rules = tuple(compiled)
        self.strict = strict

    @property
    def rules(self) -> tuple[tuple[str, PartitionSpec], ...]:
        """The ``(pattern, spec)`` pairs, in matching order."""
        return tuple((regex.pattern, spec) for regex, spec in self._rules)

    def __repr__(self) -> str:
        rules = ", ".join(f"({p!r}, {_spec_str(s)})" for p, s in self.rules)
        return f"ShardingRules([{rules}], strict={self.strict})"

    def match(self, path: str) -> tuple[str | None, PartitionSpec]:
        """Returns ``(pattern, spec)`` of the first rule found in ``path``, else ``(None, P())``.

        Args:
            path: A ``"module/param"`` path such as ``"mlp/~/linear_0/w"``.

        Returns:
            The matching pattern (``None`` if none matched) and its spec (replicated if none).
        """
        for regex, spec in self._rules:
            if regex.search(path):
                return regex.pattern, spec
        return None, PartitionSpec()

    def placements(self, tree: Any, mesh: jax.sharding.Mesh) -> list[Placement]:
        """Returns one ``Placement`` per leaf of ``tree``, in ``jax.tree.leaves`` order.

        ``tree`` may be params (``{module: {name: array}}``, arrays or
        ``jax.ShapeDtypeStruct`` objects), or any pytree holding them under a ``params`` field or
        key (a ``TrainState``, ``{"params": ..., "opt_state": ...}``), with state under
        ``state``. Optimizer-state leaves whose path ends in a param's ``module``/``name``
        and whose shape equals that param's take the param's spec; other leaves of such a
        tree, and all scalars outside params, are replicated. A tree with no ``params``
        field has every two-level ``module/name`` leaf matched against the rules.

        Args:
            tree: The pytree to place.
            mesh: The mesh whose axes the specs name.

        Returns:
            The placements.

        Raises:
            ShardingRuleError: if ``strict`` and a parameter matches no rule, or a spec does not
                fit its value (more entries than dimensions, an axis not in the mesh, an axis
                used twice, or a dimension not divisible by its axes' total size).
        """
        mesh_axes = {str(k): int(v) for k, v in mesh.shape.items()}
        leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
        info = []
        for path, leaf in leaves:
            role, name = _classify(path)
            shape, dtype = _leaf_shape_dtype(leaf)
            info.append((path, role, name, shape, dtype))
        has_params = any(role == _PARAM for _, role, _, _, _ in info)

        by_param: dict[str, tuple[tuple[int, ...], str | None, PartitionSpec]] = {}
        placed: list[Placement | None] = [None] * len(info)
        # Params first: optimizer state anywhere in the tree takes its param's placement.
        for i, (path, role, name, shape, dtype) in enumerate(info):
            if role == _PARAM or (role == _OTHER and name is not None and not has_params):
                placed[i] = self._place(name, role, shape, dtype, mesh_axes,
                                        strict=self.strict and role == _PARAM)
                if role == _PARAM:
                    by_param[name] = (shape, placed[i].rule, placed[i].spec)
        for i, (path, role, name, shape, dtype) in enumerate(info):
            if placed[i] is not None:
                continue
            where = jax.tree_util.keystr(path)
            if role == _STATE:
                placement = self._place(name, role, shape, dtype, mesh_axes, strict=False)
                placed[i] = dataclasses.replace(placement, path=where)
            elif name is not None and name in by_param and by_param[name][0] == shape:
                spec = by_param[name][2]
                rule = "(mirrors param)" if by_param[name][1] is not None else None
                placed[i] = Placement(where, role, shape, dtype, rule, spec,
                                      _shard_count(spec, mesh_axes), _nbytes(shape, dtype))
            else:
                placed[i] = Placement(where, role, shape, dtype, None, PartitionSpec(), 1,
                                      _nbytes(shape, dtype))
        return placed

    def _place(self, name: str, role: str, shape: tuple[int, ...], dtype: np.dtype,
               mesh_axes: dict[str, int], strict: bool) -> Placement:
        pattern, spec = self.match(name)
        if pattern is None and strict:
            patterns = [p for p, _ in self.rules]
            raise ShardingRuleError(
                f"{name}: no sharding rule matches this parameter (shape {shape}); rules tried: "
                f"{patterns}. Add a rule for it, or use strict=False to replicate it.",
                name, shape, None, mesh_axes)
        if role != _PARAM and pattern is not None and not shape:
            pattern, spec = None, PartitionSpec()  # scalars outside params stay replicated
        _check_fits(name, shape, spec, pattern, mesh_axes)
        return Placement(name, role, shape, dtype, pattern, spec,
                         _shard_count(spec, mesh_axes), _nbytes(shape, dtype))

    def specs(self, tree: Any, mesh: jax.sharding.Mesh) -> Any:
        """Like ``shardings`` but returns a tree of ``PartitionSpec`` (e.g. for ``shard_map``).

        Example:
            >>> from jax.sharding import PartitionSpec as P
            >>> from hk_core import distributed
            >>> mesh = distributed.make_mesh({"model": 1}, devices=jax.devices()[:1])
            >>> rules = distributed.ShardingRules([("w$", P(None, "model"))])
            >>> rules.specs({"linear": {"w": jnp.zeros((2, 4)), "b": jnp.zeros(4)}}, mesh)
            {'linear': {'b': P(), 'w': P(None, 'model')}}

        Args:
            tree: As for ``placements``.
            mesh: The mesh whose axes the specs name.

        Returns:
            A tree like ``tree`` with a ``PartitionSpec`` per leaf.
        """
        treedef = jax.tree.structure(tree)
        return jax.tree.unflatten(treedef, [p.spec for p in self.placements(tree, mesh)])

    def shardings(self, tree: Any, mesh: jax.sharding.Mesh) -> Any:
        """Returns a tree like ``tree`` with a ``NamedSharding`` per leaf.

        ``tree`` may hold arrays or ``jax.ShapeDtypeStruct`` objects (from ``jax.eval_shape``); see
        ``placements`` for how params, state and optimizer state are placed.

        Example:
            >>> from jax.sharding import PartitionSpec as P
            >>> from hk_core import distributed
            >>> mesh = distributed.make_mesh({"model": 1}, devices=jax.devices()[:1])
            >>> rules = distributed.ShardingRules([("w$", P(None, "model"))])
            >>> s = rules.shardings({"linear": {"w": jnp.zeros((2, 4))}}, mesh)
            >>> s["linear"]["w"].spec
            P(None, 'model')

        Args:
            tree: Params, abstract params, a ``TrainState`` or any pytree holding them.
            mesh: The mesh.

        Returns:
            A tree of ``jax.sharding.NamedSharding``, usable as ``jax.jit``'s shardings or
            with ``jax.device_put``.

        Raises:
            ShardingRuleError: see ``placements``.
        """
        treedef = jax.tree.structure(tree)
        return jax.tree.unflatten(
            treedef, [NamedSharding(mesh, p.spec) for p in self.placements(tree, mesh)])

    def explain(self, tree: Any, mesh: jax.sharding.Mesh,
                print_fn: Callable[[str], Any] | None = print) -> str:
        """Prints, per leaf, the rule that matched, its spec and the bytes per device.

        Example:
            >>> from jax.sharding import PartitionSpec as P
            >>> from hk_core import distributed
            >>> mesh = distributed.make_mesh({"model": 1}, devices=jax.devices()[:1])
            >>> rules = distributed.ShardingRules([("w$", P(None, "model"))])
            >>> _ = rules.explain({"linear": {"w": jnp.zeros((2, 4))}}, mesh)
            sharding on mesh {'model': 1}:
            path              shape   dtype    rule  spec              bytes  bytes/device
            linear/w          (2, 4)  float32  'w$'  P(None, 'model')     32            32
            total (1 arrays)                                              32            32

        Args:
            tree: As for ``placements`` (params, abstract params or a ``TrainState``).
            mesh: The mesh.
            print_fn: Called with the table; ``None`` to only return it.

        Returns:
            The table: path, shape, dtype, rule, spec, bytes and bytes per device, then totals.
        """
        rows = [("path", "shape", "dtype", "rule", "spec", "bytes", "bytes/device")]
        placements = self.placements(tree, mesh)
        for p in placements:
            rule = "(replicated)" if p.rule is None else (
                p.rule if p.rule.startswith("(") else repr(p.rule))
            rows.append((p.path, str(p.shape), p.dtype.name, rule, _spec_str(p.spec),
                         str(p.nbytes), str(p.bytes_per_device)))
        rows.append((f"total ({len(placements)} arrays)", "", "", "", "",
                     str(sum(p.nbytes for p in placements)),
                     str(sum(p.bytes_per_device for p in placements))))
        widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
        text = f"sharding on mesh {dict(mesh.shape)}:\n" + "\n".join(
            "  ".join(cell.rjust(w) if c >= 5 else cell.ljust(w)
                      for c, (cell, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows)
        if print_fn is not None:
            print_fn(text)
        return text


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def _entry_axes(entry: Any) -> tuple[str, ...]:
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def _shard_count(spec: PartitionSpec, mesh_axes: dict[str, int]) -> int:
    return int(np.prod([mesh_axes[a] for e in spec for a in _entry_axes(e)], dtype=np.int64))


def _check_fits(path: str, shape: tuple[int, ...], spec: PartitionSpec, pattern: str | None,
                mesh_axes: dict[str, int]) -> None:
    def fail(problem: str) -> None:
        raise ShardingRuleError(
            f"{path}: rule {pattern!r} gives {_spec_str(spec)}, which does not fit shape {shape} "
            f"on mesh axes {mesh_axes}: {problem}", path, shape, spec, mesh_axes)

    if len(spec) > len(shape):
        fail(f"the spec has {len(spec)} entries but the value has rank {len(shape)}.")
    used: set[str] = set()
    for dim, entry in enumerate(spec):
        axes = _entry_axes(entry)
        for axis in axes:
            if axis not in mesh_axes:
                fail(f"axis {axis!r} is not a mesh axis.")
            if axis in used:
                fail(f"axis {axis!r} is used twice.")
            used.add(axis)
        size = int(np.prod([mesh_axes[a] for a in axes], dtype=np.int64))
        if shape[dim] % size:
            fail(f"dimension {dim} (size {shape[dim]}) is not divisible by {size} "
                 f"(mesh axes {list(axes)}).")
