"""JAX transforms that thread hk_core's params, state and RNG (``hk.vmap``, ``hk.scan``...).

Every wrapper is built on one primitive, ``_Purified``: it turns code that reads and writes
the current frame into a pure function ``(FrameData, *args) -> (out, FrameData)`` for a JAX
transform to consume, and writes the resulting ``FrameData`` back into the frame. Params
are threaded only at ``init`` (where they can be created); at ``apply`` they are frozen
and read from the frame by closure.
"""

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from hk_core._src.core import frame as frame_lib
from hk_core._src.core import kernels
from hk_core._src.core import rng as rng_lib


class FrameData(NamedTuple):
    """The part of a frame a JAX transform must see as inputs and outputs."""

    params: Any  # dict at init, None at apply (params are frozen there)
    state: dict
    initial_state: dict
    rng: Any  # PRNGSequence.internal_state, or None without an rng


def _frame(what: str) -> frame_lib.Frame:
    return frame_lib.current_frame(what)


def _copy2(tree) -> dict:
    return {bundle: dict(values) for bundle, values in tree.items()}


def snapshot(frame: frame_lib.Frame) -> FrameData:
    """Copies what a transform threads out of ``frame`` (two-level dict copies)."""
    return FrameData(
        params=_copy2(frame.params) if frame.is_init else None,
        state=_copy2(frame.state),
        initial_state=_copy2(frame.initial_state),
        rng=None if frame.rng is None else frame.rng.internal_state,
    )


def _merge_into(target: dict, source) -> None:
    # `source` comes back from JAX with sorted keys: new bundles and names are appended in
    # sorted order after the existing ones, as Haiku does (API.md §1.1).
    for bundle, values in source.items():
        existing = target.get(bundle)
        if existing is None:
            target[bundle] = dict(values)
        else:
            existing.update(values)


def write_back(frame: frame_lib.Frame, data: FrameData) -> None:
    """Writes the data a transform returned into ``frame``."""
    if data.params is not None and frame.is_init:
        _merge_into(frame.params, data.params)
    _merge_into(frame.state, data.state)
    _merge_into(frame.initial_state, data.initial_state)
    if data.rng is not None and frame.rng is not None:
        frame.rng.replace_internal_state(data.rng)


class _Installed:
    """Installs ``FrameData`` into the frame for the duration of a traced call."""

    __slots__ = ("frame", "data", "copy_names", "saved", "rng_key", "top_up")

    def __init__(self, frame, data: FrameData, copy_names: bool, rng_key=None,
                 top_up: bool = False):
        self.frame, self.data, self.copy_names = frame, data, copy_names
        self.rng_key, self.top_up = rng_key, top_up

    def __enter__(self):
        frame, data = self.frame, self.data
        scope = frame.scopes[-1]
        self.saved = (frame.params, frame.state, frame.initial_state, frame.rng,
                      scope.counters, scope.reserved, frame.trace_state, frame.init_view)
        # The body runs in the trace of the JAX transform this wrapper applies: that is
        # sanctioned use, not the raw-transform misuse `check_jax_usage` looks for.
        if frame.trace_state is not None:
            frame.trace_state = frame_lib.opaque_trace_state()
        if data.params is not None:
            frame.params = _copy2(data.params)
            frame.init_view = data
        frame.state = _copy2(data.state)
        frame.initial_state = _copy2(data.initial_state)
        if self.rng_key is not None:
            frame.rng = rng_lib.PRNGSequence(self.rng_key)
        elif data.rng is not None:
            frame.rng = rng_lib.PRNGSequence(data.rng)
        else:
            frame.rng = None
        if self.copy_names:
            scope.counters = dict(scope.counters)
            scope.reserved = set(scope.reserved)
        return self

    def result(self) -> FrameData:
        frame = self.frame
        if frame.rng is not None and self.top_up:
            frame.rng.reserve_up_to_full()
        return FrameData(
            params=frame.params if self.data.params is not None else None,
            state=frame.state,
            initial_state=frame.initial_state,
            rng=None if (frame.rng is None or self.rng_key is not None)
            else frame.rng.internal_state,
        )

    def __exit__(self, *exc_info):
        frame = self.frame
        scope = frame.scopes[-1]
        (frame.params, frame.state, frame.initial_state, frame.rng,
         scope.counters, scope.reserved, frame.trace_state, frame.init_view) = self.saved


def purify(fun: Callable, copy_names: bool = True, top_up: bool = False) -> Callable:
    """Returns ``pure(data, *args, rng_key=None, **kwargs) -> (out, data)`` for ``fun``.

    ``copy_names`` runs ``fun`` on a copy of the current scope's name counters (API.md
    §1.5); ``top_up`` refills the RNG queue afterwards (control flow, API.md §2.4);
    ``rng_key`` gives the call a sequence of its own (``hk.vmap(split_rng=True)``).
    """
    frame = _frame(f"`{getattr(fun, '__name__', 'fun')}`")

    def pure(data: FrameData, *args, _rng_key=None, **kwargs):
        with _Installed(frame, data, copy_names, _rng_key, top_up) as installed:
            out = fun(*args, **kwargs)
            return out, installed.result()

    return pure


def _outside(name: str) -> ValueError:
    return ValueError(
        f"hk.{name} must be used as part of an `hk.transform`; outside one use jax.{name} "
        "(or jax.lax).")


def _require_frame(name: str) -> frame_lib.Frame:
    if not frame_lib.inside_transform():
        raise _outside(name)
    return frame_lib.current_frame()


# ------------------------------------------------------------------------- vmap


def _first_mapped_size(args: tuple, in_axes) -> int:
    axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
    for arg, axis in zip(args, axes):
        for leaf, leaf_axis in zip(jax.tree.leaves(arg), _broadcast_axes(arg, axis)):
            if leaf_axis is not None:
                return leaf.shape[leaf_axis]
    raise ValueError("hk.vmap needs at least one mapped input to split the RNG.")


def _broadcast_axes(arg, axis):
    if axis is None or isinstance(axis, int):
        return [axis] * len(jax.tree.leaves(arg))
    return jax.tree.leaves(
        jax.tree.map(lambda _, a: a, arg, axis, is_leaf=lambda x: x is None),
        is_leaf=lambda x: x is None)


_SPLIT_RNG_NOT_GIVEN = object()


def vmap(fun: Callable[..., Any], in_axes=0, out_axes=0, axis_name: str | None = None,
         axis_size: int | None = None, *, split_rng: bool | None = _SPLIT_RNG_NOT_GIVEN,
         spmd_axis_name: Any | None = None) -> Callable[..., Any]:
    """``jax.vmap`` for code that uses modules: params and state are shared across the batch.

    Args:
        split_rng: Required (unless ``hk.vmap.require_split_rng = False``, then it defaults
            to False). True gives each batch element its own keys (not allowed while
            creating params); False or None shares one sequence across the batch.

    Example:
        >>> def f(x):
        ...     return hk.vmap(lambda row: hk.Linear(2)(row), split_rng=False)(x)
        >>> params = hk.transform(f).init(0, jnp.ones([5, 3]))
        >>> jax.tree.map(jnp.shape, params)
        {'linear': {'b': (2,), 'w': (3, 2)}}
    """
    if split_rng is _SPLIT_RNG_NOT_GIVEN:
        if vmap.require_split_rng:
            raise TypeError(
                "hk.vmap requires the split_rng argument to be passed (a keyword): True gives "
                "each mapped element its own keys, False shares them. To opt out of this "
                "check set `hk.vmap.require_split_rng = False`.")
        split_rng = False
    if not jax.tree.leaves(in_axes):
        raise ValueError(
            f"{getattr(fun, '__name__', repr(fun))} must have at least one non-None value in "
            "in_axes to use with `hk.vmap`.")

    @functools.wraps(fun)
    def mapped(*args, **kwargs):
        if kwargs:
            raise TypeError("hk.vmap does not support keyword arguments; pass them positionally.")
        frame = _require_frame("vmap")
        pure = purify(fun)
        axes = tuple(in_axes) if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if split_rng:
            # Draw the per-element keys first: the snapshot must see the advanced sequence.
            keys = rng_lib.next_rng_keys(_first_mapped_size(args, in_axes))
            data = snapshot(frame)._replace(rng=None)

            def body(data, keys, *args):
                out, new_data = pure(data, *args, _rng_key=keys)
                # At init, split keys would give each element its own parameters; Haiku
                # refuses only when the body creates some (params built outside are fine).
                if new_data.params is not None and (
                        jax.tree.structure(new_data.params) != jax.tree.structure(data.params)):
                    raise _split_rng_creates_params(data.params, new_data.params)
                return out, new_data

            vmapped = jax.vmap(body, in_axes=(None, 0, *axes), out_axes=(out_axes, None),
                               axis_name=axis_name, axis_size=axis_size,
                               spmd_axis_name=spmd_axis_name)
            out, data = vmapped(data, keys, *args)
        else:
            data = snapshot(frame)
            vmapped = jax.vmap(pure, in_axes=(None, *axes), out_axes=(out_axes, None),
                               axis_name=axis_name, axis_size=axis_size,
                               spmd_axis_name=spmd_axis_name)
            out, data = vmapped(data, *args)
        write_back(frame, data)
        return out

    return mapped


vmap.require_split_rng = True


def _split_rng_creates_params(before: dict, after: dict) -> ValueError:
    created = sorted(f"{bundle}/{name}" for bundle, values in after.items() for name in values
                     if name not in before.get(bundle, {}))
    shown = ", ".join(created[:6]) + (", ..." if len(created) > 6 else "")
    return ValueError(
        "hk.vmap does not support setting split_rng to True during initialization because it "
        f"assumes parameters are always shared along the mapped dimension; the mapped "
        f"function created {shown}. Use `split_rng=(not hk.running_init())`, or create the "
        "modules' parameters before the vmap.")
# As Haiku shows it: `split_rng` is a required keyword (the sentinel default is internal).
vmap.__signature__ = inspect.signature(vmap).replace(parameters=[
    p.replace(default=inspect.Parameter.empty, annotation=bool) if p.name == "split_rng" else p
    for p in inspect.signature(vmap).parameters.values()])


# ------------------------------------------------------------------------- grad, remat, eval_shape


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
                   holomorphic: bool = False) -> Callable:
    """``jax.value_and_grad`` for module code: gradients w.r.t. ``fun``'s arguments only.

    Example:
        >>> def f(x):
        ...     return hk.value_and_grad(lambda x: (x ** 2).sum())(x)
        >>> hk.transform(f).apply({}, None, jnp.array([3.0]))
        (Array(9., dtype=float32), Array([6.], dtype=float32))
    """

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        frame = _require_frame("value_and_grad")
        pure = purify(fun)
        data = snapshot(frame)

        def with_aux(*args):
            out, new_data = pure(data, *args, **kwargs)
            if has_aux:
                value, aux = out
                return value, (aux, new_data)
            return out, (None, new_data)

        (value, (aux, new_data)), grads = jax.value_and_grad(
            with_aux, argnums=argnums, has_aux=True, holomorphic=holomorphic)(*args)
        write_back(frame, new_data)
        return ((value, aux), grads) if has_aux else (value, grads)

    return wrapped


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
         holomorphic: bool = False) -> Callable:
    """``jax.grad`` for module code: gradients w.r.t. ``fun``'s arguments only.

    Example:
        >>> def f(x):
        ...     return hk.grad(lambda x: (x ** 2).sum())(x)
        >>> hk.transform(f).apply({}, None, jnp.array([3.0]))
        Array([6.], dtype=float32)
    """
    value_and_grad_fun = value_and_grad(fun, argnums=argnums, has_aux=has_aux,
                                        holomorphic=holomorphic)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        if not frame_lib.inside_transform():
            raise _outside("grad")
        if has_aux:
            (_, aux), grads = value_and_grad_fun(*args, **kwargs)
            return grads, aux
        _, grads = value_and_grad_fun(*args, **kwargs)
        return grads

    return wrapped


def remat(fun: Callable, *, prevent_cse: bool = True, policy: Callable | None = None,
          static_argnums: int | tuple[int, ...] = (), concrete: bool = False) -> Callable:
    """``jax.checkpoint`` for module code (names share the caller's counters).

    Example:
        >>> def f(x):
        ...     return hk.remat(lambda x: hk.Linear(2)(x))(x)
        >>> list(hk.transform(f).init(0, jnp.ones([1, 3])))
        ['linear']
    """
    del concrete  # deprecated in JAX; accepted for compatibility
    statics = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        frame = _require_frame("remat")
        pure = purify(fun, copy_names=False)
        data = snapshot(frame)
        checkpointed = jax.checkpoint(
            lambda data, *args: pure(data, *args, **kwargs), prevent_cse=prevent_cse,
            policy=policy, static_argnums=tuple(i + 1 for i in statics))
        out, data = checkpointed(data, *args)
        write_back(frame, data)
        return out

    return wrapped


def eval_shape(fun: Callable, *args, **kwargs) -> Any:
    """``jax.eval_shape`` for module code; nothing it creates or changes is kept.

    Example:
        >>> def f(x):
        ...     return hk.eval_shape(lambda x: jnp.concatenate([x, x]), x)
        >>> hk.transform(f).apply({}, None, jnp.ones([2, 3])).shape
        (4, 3)
    """
    frame = _require_frame("eval_shape")
    pure = purify(fun)
    data = snapshot(frame)
    out, _ = jax.eval_shape(lambda data, *args: pure(data, *args, **kwargs), data, *args)
    return out


# ------------------------------------------------------------------------- control flow


def _top_up(frame) -> None:
    if frame.rng is not None:
        frame.rng.reserve_up_to_full()


_SENTINEL = object()


def cond(pred, true_fun: Callable, false_fun: Callable, *operands, operand=_SENTINEL) -> Any:
    """``jax.lax.cond`` for module code: both branches start from the same state and RNG.

    Example:
        >>> def f(x):
        ...     return hk.cond(x.sum() > 0, lambda x: x + 1, lambda x: x - 1, x)
        >>> hk.transform(f).apply({}, None, jnp.ones([2]))
        Array([2., 2.], dtype=float32)
    """
    if operand is not _SENTINEL:
        if operands:
            raise ValueError(
                "When the operand keyword argument is used you cannot pass positional "
                "operands to hk.cond.")
        operands = (operand,)
    return switch(jnp.asarray(pred).astype(jnp.int32), (false_fun, true_fun), *operands,
                  _name="cond")


def switch(index, branches: Sequence[Callable], *operands, _name: str = "switch") -> Any:
    """``jax.lax.switch`` for module code: every branch starts from the same state and RNG.

    Example:
        >>> def f(i, x):
        ...     return hk.switch(i, [lambda x: x, lambda x: 2 * x], x)
        >>> hk.transform(f).apply({}, None, 1, jnp.ones([2]))
        Array([2., 2.], dtype=float32)
    """
    frame = _require_frame(_name)
    _top_up(frame)
    data = snapshot(frame)
    # One pure function per distinct branch: JAX traces a repeated function once (Haiku's
    # `hk.cond(p, f, f, x)` runs `f`'s Python once).
    distinct = {}
    pure_branches = [
        distinct.setdefault(id(branch), (lambda pure: lambda data, ops: pure(data, *ops))(
            purify(branch, top_up=True)))
        for branch in branches]
    out, data = jax.lax.switch(index, pure_branches, data, operands)
    write_back(frame, data)
    return out


def _new_params_error(before: dict, after: dict) -> AssertionError:
    created = sorted(
        (bundle, name) for bundle, values in after.items() for name in values
        if name not in before.get(bundle, {}))
    return AssertionError(f"New parameters were created: {created}")


def _scan_step(pure, frame_params_before):
    def step(carry, x):
        (data, user_carry) = carry
        (user_carry, y), data = pure(data, user_carry, x)
        if data.params is not None and jax.tree.structure(data.params) != jax.tree.structure(
                frame_params_before):
            raise _new_params_error(frame_params_before, data.params)
        return (data, user_carry), y

    return step


def scan(f: Callable, init: Any, xs: Any, length: int | None = None, reverse: bool = False,
         unroll: int = 1) -> tuple[Any, Any]:
    """``jax.lax.scan`` for module code; construct modules used in ``f`` outside of it.

    At init the first step runs outside the scan (creating params), the rest inside.

    Example:
        >>> def f(xs):
        ...     lin = hk.Linear(2)
        ...     return hk.scan(lambda c, x: (c + lin(x).sum(), c), 0.0, xs)
        >>> f = hk.transform(f)
        >>> xs = jnp.ones([4, 1, 3])
        >>> carry, ys = f.apply(f.init(0, xs), None, xs)
        >>> ys.shape
        (4,)
    """
    frame = _require_frame("scan")
    if length is None:
        length = jax.tree.leaves(xs)[0].shape[0] if jax.tree.leaves(xs) else None
    if frame.is_init:
        return _scan_at_init(frame, f, init, xs, length, reverse, unroll)
    return _scan_traced(frame, f, init, xs, length, reverse, unroll)


def _scan_traced(frame, f, init, xs, length, reverse, unroll):
    _top_up(frame)
    # Names made in a traced loop body do not reserve names outside it (as in Haiku, whose
    # init runs the first step inline, where they do).
    pure = purify(f, copy_names=True, top_up=True)
    data = snapshot(frame)
    params_before = data.params
    with kernels.loop_body():
        (data, carry), ys = jax.lax.scan(
            _scan_step(pure, params_before), (data, init), xs, length=length, reverse=reverse,
            unroll=unroll)
    write_back(frame, data)
    return carry, ys


def _scan_at_init(frame, f, init, xs, length, reverse, unroll):
    # No RNG top-up before the inline first step (Haiku keeps keys reserved beyond
    # rng_reserve_size here; they are dropped only after the step).
    if length == 0:
        zeros = jax.tree.map(lambda x: jnp.zeros(x.shape[1:], x.dtype), xs)
        _, y = f(init, zeros)
        _top_up(frame)
        ys = jax.tree.map(lambda y: jnp.zeros((0, *jnp.shape(y)), jnp.asarray(y).dtype), y)
        return init, ys
    index = -1 if reverse else 0
    first = jax.tree.map(lambda x: x[index], xs)
    carry, y0 = f(init, first)
    _top_up(frame)
    y0 = jax.tree.map(lambda y: jnp.expand_dims(y, 0), y0)
    if length == 1:  # Haiku does not trace the body again: modules built inside it are fine
        return carry, y0
    rest = jax.tree.map(lambda x: x[:-1] if reverse else x[1:], xs)
    carry, ys = _scan_traced(frame, f, carry, rest, length - 1, reverse, unroll)
    pieces = (ys, y0) if reverse else (y0, ys)
    return carry, jax.tree.map(lambda *parts: jnp.concatenate(parts), *pieces)


def map(f: Callable, xs: Any) -> Any:  # noqa: A001 - Haiku's name
    """``jax.lax.map`` for module code (``scan`` with no carry).

    Example:
        >>> hk.transform(lambda xs: hk.map(lambda x: x * 2, xs)).apply({}, None, jnp.ones([3]))
        Array([2., 2., 2.], dtype=float32)
    """
    _, ys = scan(lambda carry, x: ((), f(x)), (), xs)
    return ys


def _concrete_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, jax.errors.ConcretizationTypeError):  # a tracer: known only at run time
        return None


def _loop_created_error(before: FrameData, after: FrameData) -> TypeError:
    created = sorted(
        f"{bundle}/{name}"
        for tree, old in ((after.params, before.params), (after.state, before.state))
        for bundle, values in tree.items() for name in values
        if name not in old.get(bundle, {}))
    shown = ", ".join(created[:6]) + (", ..." if len(created) > 6 else "")
    return TypeError(
        "hk.fori_loop: at init the loop body runs once to create parameters, then the loop "
        f"runs the other iterations; there the body created new entries ({shown}), so the "
        "loop carry would change structure. Build the modules before the loop (e.g. "
        "`linear = hk.Linear(...)` outside `body_fun`) so every iteration reuses them, or use "
        "hk.scan / hk.layer_stack for parameters per iteration.")


def fori_loop(lower, upper, body_fun: Callable, init_val: Any) -> Any:
    """``jax.lax.fori_loop`` for module code; at init one iteration runs eagerly first.

    At init the first iteration runs outside the loop (creating the params it uses), the
    rest inside, as in Haiku. With a single iteration the body may build its modules; with
    more, build them before the loop.

    Example:
        >>> def f(x):
        ...     return hk.fori_loop(0, 3, lambda i, v: v + i, x)
        >>> hk.transform(f).apply({}, None, 0)
        Array(3, dtype=int32, weak_type=True)
    """
    frame = _require_frame("fori_loop")
    initializing = frame.is_init
    if not initializing:  # at init the top-up comes after the inline iteration, as in Haiku
        _top_up(frame)
    if initializing:
        # Run one iteration outside the loop so that params and state it creates exist.
        init_val = body_fun(lower, init_val)
        _top_up(frame)
        lower = lower + 1
        low, high = _concrete_int(lower), _concrete_int(upper)
        if low is not None and low == high:
            return init_val  # that was the only iteration
    pure = purify(body_fun, copy_names=True, top_up=True)

    def body(i, carry):
        data, value = carry
        value, new_data = pure(data, i, value)
        if initializing and (
                jax.tree.structure((new_data.params, new_data.state))
                != jax.tree.structure((data.params, data.state))):
            raise _loop_created_error(data, new_data)
        return new_data, value

    with kernels.loop_body():
        data, value = jax.lax.fori_loop(lower, upper, body, (snapshot(frame), init_val))
    write_back(frame, data)
    return value


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """``jax.lax.while_loop`` for module code (not allowed in init; guard with ``running_init``).

    Example:
        >>> def f(x):
        ...     return hk.while_loop(lambda v: v < 10, lambda v: v * 2, x)
        >>> hk.transform(f).apply({}, None, 1)
        Array(16, dtype=int32, weak_type=True)
    """
    frame = _require_frame("while_loop")
    if frame.is_init:
        raise ValueError(
            "hk.while_loop does not support initialization (since we cannot statically "
            "determine if your loop will run at least once). Please use `hk.running_init()` "
            "to run the body unconditionally in init.")
    _top_up(frame)
    pure_cond = purify(cond_fun, copy_names=True)
    pure_body = purify(body_fun, copy_names=True, top_up=True)

    def cond(carry):
        data, value = carry
        out, new_data = pure_cond(data, value)
        if (jax.tree.structure(new_data) != jax.tree.structure(data)
                or any(a is not b for a, b in zip(jax.tree.leaves(new_data),
                                                  jax.tree.leaves(data)))):
            raise ValueError("hk.while_loop does not support state or RNG changes in cond_fun.")
        return out

    def body(carry):
        data, value = carry
        value, data = pure_body(data, value)
        return data, value

    with kernels.loop_body():
        data, value = jax.lax.while_loop(cond, body, (snapshot(frame), init_val))
    write_back(frame, data)
    return value
