"""Tests for ``hk.Deferred`` (hk_core/_src/transforms/deferred.py, API.md §3.1)."""

import jax
import jax.numpy as jnp
import pytest

import hk_core as hk


def _param_keys(f, *args):
    return list(hk.transform(f).init(jax.random.PRNGKey(0), *args))


class Outer(hk.Module):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.lazy = hk.Deferred(lambda: hk.Linear(2))

    def __call__(self, x):
        return self.lazy(x)


def test_target_built_in_constructor_context_gets_tilde_path():
    assert _param_keys(lambda x: Outer()(x), jnp.zeros((1, 3))) == ["outer/~/linear"]


def test_target_built_in_name_scope_context_keeps_scope_path():
    def f(x):
        with hk.name_scope("foo"):
            lazy = hk.Deferred(lambda: hk.Linear(2))
        return lazy(x)

    assert _param_keys(f, jnp.zeros((1, 3))) == ["foo/linear"]


def test_factory_runs_once_on_first_use_and_target_is_that_module():
    calls = []

    def factory():
        calls.append(1)
        return hk.Linear(2)

    def f(x):
        lazy = hk.Deferred(factory)
        before = len(calls)
        lazy(x)
        lazy(x)
        return before, len(calls), lazy.target.module_name

    f_t = hk.transform(f)
    x = jnp.zeros((1, 3))
    params = f_t.init(jax.random.PRNGKey(0), x)
    calls.clear()
    assert f_t.apply(params, None, x) == (0, 1, "linear")


def test_attributes_are_unreachable_before_creation():
    def f():
        lazy = hk.Deferred(lambda: hk.Linear(2))
        with pytest.raises(AttributeError, match=r"Deferred has no attribute 'output_size' yet"):
            lazy.output_size  # noqa: B018 - the read is the test

    hk.transform(f).init(None)


def test_attribute_get_set_and_delete_are_forwarded_after_creation():
    def f():
        lazy = hk.Deferred(lambda: hk.Linear(2))
        target = lazy.target
        lazy.extra = 5
        read = lazy.output_size
        has_extra = target.extra == 5
        del lazy.extra
        return read, has_extra, hasattr(target, "extra")

    assert hk.transform(f).apply({}, None) == (2, True, False)


def test_str_and_repr_wrap_the_target():
    def f():
        lazy = hk.Deferred(lambda: hk.Linear(2, name="q"))
        return str(lazy), repr(lazy), repr(lazy.target)

    as_str, as_repr, target_repr = hk.transform(f).apply({}, None)
    assert as_repr == f"Deferred({target_repr})"
    assert as_str.startswith("Deferred(") and as_str.endswith(")")


class Codec(hk.Module):
    def encode(self, x):
        return x + 1

    def decode(self, x):
        return x - 1


def test_extra_call_methods_become_attributes_that_create_and_call_target():
    def f():
        lazy = hk.Deferred(Codec, call_methods=("encode", "decode"))
        return lazy.encode(1), lazy.decode(1), lazy.target.module_name

    assert hk.transform(f).apply({}, None) == (2, 0, "codec")


def test_calling_without_call_in_call_methods_raises_type_error():
    def f():
        hk.Deferred(Codec, call_methods=("encode",))(1)

    with pytest.raises(TypeError, match=r"'__call__' is not in its call_methods \('encode',\)"):
        hk.transform(f).apply({}, None)
