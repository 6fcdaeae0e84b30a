"""Module paths (API.md §1.2-§1.5): the checkpoint contract, asserted literally."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

import hk_core as hk
from hk_core._src.core import naming

X = jnp.ones([1, 3])


def _param_keys(fn, *args):
    return list(hk.transform(fn).init(jax.random.PRNGKey(0), *args))


@pytest.mark.parametrize("class_name, stem", [
    ("Linear", "linear"), ("MLP", "mlp"), ("MyHTTPModule", "my_http_module"),
    ("ABCDef", "abc_def"), ("Conv2D", "conv2_d"), ("Conv2DTranspose", "conv2_d_transpose"),
    ("ConvND", "conv_nd"), ("_Foo", "__foo"), ("IOError", "io_error"),
    ("DepthwiseConv2D", "depthwise_conv2_d"), ("Conv1DLSTM", "conv1_dlstm"),
    ("ResNet50", "res_net50"), ("MobileNetV1", "mobile_net_v1"), ("VanillaRNN", "vanilla_rnn"),
    ("LSTM", "lstm"), ("GRU", "gru"), ("MultiHeadAttention", "multi_head_attention"),
    ("BatchNorm", "batch_norm"), ("ExponentialMovingAverage", "exponential_moving_average"),
    ("EMAParamsTree", "ema_params_tree"), ("SNParamsTree", "sn_params_tree"),
    ("RMSNorm", "rms_norm"), ("VectorQuantizerEMA", "vector_quantizer_ema"),
])
def test_snake_case_matches_haiku_stems(class_name, stem):
    assert naming.snake_case(class_name) == stem


def test_repeated_default_modules_get_numbered_in_construction_order():
    assert _param_keys(lambda x: hk.Linear(3)(hk.Linear(3)(x)), X) == ["linear_1", "linear"]


class Parent(hk.Module):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.inner = hk.Linear(3)

    def __call__(self, x):
        x = self.inner(x)
        x = hk.Linear(3)(x)
        x = hk.Linear(3, name="custom")(x)
        return x + hk.get_parameter("w", [3], init=jnp.zeros)


def test_tilde_rule_for_constructor_submodules_and_call_submodules():
    assert _param_keys(lambda x: Parent()(x), X) == [
        "parent/~/linear", "parent/linear", "parent/custom", "parent"]


def test_submodule_in_other_method_gets_tilde_method_component():
    class M2(hk.Module):
        def encode(self, x):
            return hk.Linear(2)(x)

    assert _param_keys(lambda x: M2().encode(x), X) == ["m2/~encode/linear"]


def test_submodule_in_property_named_after_property():
    class M(hk.Module):
        @property
        def prop(self):
            return hk.Linear(2)

    assert _param_keys(lambda x: M().prop(x), X) == ["m/~prop/linear"]


def test_constructor_chain_shares_one_counter_scope():
    class A(hk.Module):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.a = hk.Linear(2)

    class B(A):
        def __init__(self):
            super().__init__()
            self.b = hk.Linear(2)

        def __call__(self, x):
            return self.b(self.a(x)[:, :2] @ jnp.ones([2, 3]))

    assert _param_keys(lambda x: B()(x), X) == ["b/~/linear", "b/~/linear_1"]


def test_super_call_gets_fresh_counter_scope_and_shares_params():
    class P(hk.Module):
        def __call__(self, x):
            return hk.Linear(2)(x)

    class C(P):
        def __call__(self, x):
            return super().__call__(x) + hk.Linear(2)(x)

    assert _param_keys(lambda x: C()(x), X) == ["c/linear"]


def test_two_mlps_inside_a_module_call():
    class M(hk.Module):
        def __call__(self, x):
            return hk.nets.MLP([2])(x) + hk.nets.MLP([2])(x)

    assert _param_keys(lambda x: M()(x), X) == ["m/mlp/~/linear_0", "m/mlp_1/~/linear_0"]


def test_module_created_in_call_reuses_params_across_calls():
    class M3(hk.Module):
        def __call__(self, x):
            return hk.Linear(3)(x)

    def f(x):
        m = M3()
        return m(m(x)) + M3()(x)

    assert _param_keys(f, X) == ["m3/linear", "m3_1/linear"]


@pytest.mark.parametrize("names, expected", [
    ([None, None], ["linear", "linear_1"]),
    (["lin", "lin"], ["lin", "lin_1"]),
    (["linear_1", None, None], ["linear_1", "linear_2", "linear_3"]),
    (["linear_0", None], ["linear_0", "linear_1"]),
    (["layer1", "layer1"], ["layer1", "layer1_1"]),
    ([None, "linear"], ["linear", "linear_1"]),
    (["linear_01", "linear_01"], ["linear_01", "linear_01_1"]),
])
def test_explicit_names_are_uniquified(names, expected):
    def f(x):
        return [hk.Linear(3, name=name)(x) for name in names]

    assert sorted(_param_keys(f, X)) == sorted(expected)


def test_same_explicit_numbered_name_twice_is_an_error():
    def f(x):
        hk.Linear(3, name="linear_1")(x)
        hk.Linear(3, name="linear_1")(x)

    with pytest.raises(ValueError, match="Module name 'linear_1' is not unique"):
        _param_keys(f, X)


@pytest.mark.parametrize("bad", ["a/b", "1abc", "a-b", ""])
def test_invalid_module_names_are_rejected(bad):
    with pytest.raises(ValueError, match="not a valid module name"):
        _param_keys(lambda x: hk.Linear(3, name=bad)(x), X)


def test_force_name_bumps_counters_at_top_level():
    def f(x):
        hk.Linear(3, name=hk.force_name("linear_1"))(x)
        return hk.Linear(3)(x)

    assert _param_keys(f, X) == ["linear_1", "linear_2"]


def test_force_name_inside_module_bumps_prefixed_counter():
    class M(hk.Module):
        def __call__(self, x):
            hk.Linear(3, name=hk.force_name("m/linear_2"))(x)
            return hk.Linear(3)(x)

    assert _param_keys(lambda x: M()(x), X) == ["m/linear_2", "m/linear_3"]


def test_force_name_of_other_path_leaves_top_level_counter_alone():
    def f(x):
        hk.Linear(3, name=hk.force_name("x/~/linear_3"))(x)
        return hk.Linear(3)(x)

    assert _param_keys(f, X) == ["x/~/linear_3", "linear"]


def test_force_name_shares_params_with_named_module():
    def f(x):
        a = hk.Linear(3, name="enc")(x)
        return hk.Linear(3, name=hk.force_name("enc"))(a)

    assert _param_keys(f, X) == ["enc"]


def test_name_like_call_names_children_as_if_in_call():
    class M(hk.Module):
        @hk.name_like("__call__")
        def encode(self, x):
            return hk.Linear(2)(x)

    assert _param_keys(lambda x: M().encode(x), X) == ["m/linear"]


def test_transparent_method_runs_in_callers_scope():
    class M(hk.Module):
        @hk.transparent
        def helper(self, x):
            return hk.Linear(2)(x)

        def __call__(self, x):
            return self.helper(x)

    assert _param_keys(lambda x: M()(x), X) == ["m/linear"]


def test_dunder_method_runs_in_callers_context():
    class M(hk.Module):
        def __getitem__(self, x):
            return hk.Linear(2)(x)

        def __call__(self, x):
            return self[x]

    assert _param_keys(lambda x: M()(x), X) == ["m/linear"]


def test_top_level_parameter_lives_under_tilde():
    assert _param_keys(lambda: hk.get_parameter("w", [1], init=jnp.ones)) == ["~"]


def test_name_scope_in_module_methods():
    class M(hk.Module):
        def __init__(self):
            super().__init__()
            with hk.name_scope("bar"):
                hk.get_parameter("p", [], init=jnp.ones)

        def __call__(self):
            with hk.name_scope("baz"):
                hk.get_parameter("p", [], init=jnp.ones)

        def encode(self):
            with hk.name_scope("foo"):
                hk.get_parameter("p", [], init=jnp.ones)

    def f():
        m = M()
        m()
        m.encode()

    assert set(_param_keys(f)) == {"m/~/bar", "m/baz", "m/~encode/foo"}


def test_name_scope_is_uniquified_when_called_not_entered():
    def f():
        s1 = hk.name_scope("foo")
        s2 = hk.name_scope("foo")
        with s2:
            hk.get_parameter("b", [], init=jnp.ones)
        with s1:
            hk.get_parameter("a", [], init=jnp.ones)

    params = hk.transform(f).init(None)
    assert list(params) == ["foo_1", "foo"]
    assert list(params["foo"]) == ["a"]


def test_nested_name_scope_with_method_name():
    def f(x):
        with hk.name_scope("a/b", method_name="enc"):
            return hk.Linear(2)(x)

    assert _param_keys(f, X) == ["a/~enc/b/~enc/linear"]


def test_name_scope_modules_get_scope_prefix():
    def f(x):
        with hk.name_scope("foo"):
            return hk.Linear(2)(x)

    assert _param_keys(f, X) == ["foo/linear"]


def test_name_scope_rejects_leading_slash_and_empty_components():
    with pytest.raises(ValueError, match=r"Name scopes must not be empty or start with '/'"):
        hk.transform(lambda: hk.name_scope("/a")).init(None)
    with pytest.raises(ValueError, match="not a valid module name"):
        hk.transform(lambda: hk.name_scope("a//b")).init(None)


def test_name_scope_is_not_reentrant_nor_reusable():
    def reenter():
        scope = hk.name_scope("s")
        with scope:
            with scope:
                pass

    def reuse():
        scope = hk.name_scope("s")
        with scope:
            pass
        with scope:
            pass

    with pytest.raises(ValueError, match="not reentrant"):
        hk.transform(reenter).init(None)
    with pytest.raises(ValueError, match="not reusable"):
        hk.transform(reuse).init(None)


def test_name_scope_outside_transform_is_an_error():
    with pytest.raises(ValueError, match="hk.transform"):
        hk.name_scope("a")


def test_vmap_runs_on_copy_of_counters_so_next_linear_reuses_name():
    def f(x):
        hk.vmap(lambda v: hk.Linear(2)(v), split_rng=False)(x)
        return hk.Linear(3)(x)

    with pytest.raises(ValueError, match=r"'linear/w' with retrieved shape \(3, 2\)"):
        hk.transform(f).init(jax.random.PRNGKey(0), X)


def test_cond_branches_and_later_module_share_linear():
    def f(x):
        y = hk.cond(True, lambda v: hk.Linear(3)(v), lambda v: hk.Linear(3)(v), x)
        return hk.Linear(3)(y)

    assert _param_keys(f, X) == ["linear"]


def test_remat_shares_counters():
    def f(x):
        y = hk.remat(lambda v: hk.Linear(3)(v))(x)
        return hk.Linear(3)(y)

    assert _param_keys(f, X) == ["linear", "linear_1"]


def test_params_created_inside_vmap_are_merged_sorted_after_existing():
    def f(x):
        hk.Linear(3, name="z_first")(x)

        def row(v):
            hk.get_parameter("zeta", [], init=jnp.ones)
            hk.get_parameter("alpha", [], init=jnp.ones)
            return hk.Linear(3, name="b_mod")(v)

        return hk.vmap(row, split_rng=False)(x)

    params = hk.transform(f).init(jax.random.PRNGKey(0), X)
    assert [(m, list(b)) for m, b in params.items()] == [
        ("z_first", ["w", "b"]), ("b_mod", ["b", "w"]), ("~", ["alpha", "zeta"])]


def test_current_name_reports_module_and_scope_paths():
    class M(hk.Module):
        def __call__(self):
            with hk.name_scope("inner"):
                return hk.current_name()

    names = hk.transform(lambda: (hk.current_name(), M()(), M()())).apply({}, None)
    assert names == ("~", "m/inner", "m_1/inner")


def test_module_name_and_name_attributes():
    def f():
        m = Parent(name="outer")
        return m.module_name, m.name, m.inner.module_name, m.inner.name

    assert hk.transform(f).apply({}, None) == ("outer", "outer", "outer/~/linear", "linear")


def test_dataclass_module_uses_name_field():
    @dataclasses.dataclass
    class Dense(hk.Module):
        size: int
        name: str | None = None

        def __call__(self, x):
            return hk.Linear(self.size)(x)

    assert _param_keys(lambda x: Dense(2, name="dd")(x), X) == ["dd/linear"]
    assert _param_keys(lambda x: Dense(2)(x), X) == ["dense/linear"]


def test_name_scope_construction_is_seen_by_method_interceptors():
    # Haiku 0.0.17 (black box, generator seed 9): one NameScopeModule '__init__' per path
    # component, at `hk.name_scope(...)` call time; current_name() is the scope's path.
    log = []

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        log.append((type(context.module).__name__, context.method_name,
                    context.orig_class.__name__, args, kwargs, context.module.module_name,
                    hk.current_name(), out))
        return out

    def f(x):
        with hk.intercept_methods(interceptor):
            with hk.name_scope("a/b"):
                x = hk.get_parameter("p", [], init=jnp.ones) * x
            with hk.name_scope("c", method_name="foo"):
                pass
        return x

    params = hk.transform(f).init(None, 1.0)
    assert list(params) == ["a/b"]
    assert log == [
        ("NameScopeModule", "__init__", "NameScopeModule", (), {"name": "a"}, "a", "a", None),
        ("NameScopeModule", "__init__", "NameScopeModule", (), {"name": "b"}, "a/b", "a/b", None),
        ("NameScopeModule", "__init__", "NameScopeModule", (), {"name": "c"}, "c", "c", None),
    ]
