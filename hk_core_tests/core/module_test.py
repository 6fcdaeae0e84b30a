"""hk.Module: method wrapping, interceptors, params_dict, repr and construction errors."""

import dataclasses
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

X = jnp.ones([1, 3])


class Net(hk.Module):
    def __init__(self, size: int, name: str | None = None):
        super().__init__(name=name)
        self.size = size

    def __call__(self, x):
        return hk.Linear(self.size)(x)

    def encode(self, x):
        return x

    @property
    def prop(self):
        return 1

    @staticmethod
    def static():
        return 2

    def __getitem__(self, item):
        return item


def _intercepted(fn):
    seen = []

    def record(next_fun, args, kwargs, context):
        seen.append((context.method_name, type(context.module).__name__,
                     context.orig_class.__name__))
        return next_fun(*args, **kwargs)

    def run():
        with hk.intercept_methods(record):
            fn()

    hk.transform(run).init(0)
    return seen


def test_interceptor_sees_construction_calls_methods_and_properties():
    def fn():
        net = Net(2)
        net(X)
        net.encode(X)
        _ = net.prop
        Net.static()
        _ = net[0]

    assert _intercepted(fn) == [
        ("__init__", "Net", "Net"), ("__call__", "Net", "Net"), ("__init__", "Linear", "Linear"),
        ("__call__", "Linear", "Linear"), ("encode", "Net", "Net"), ("prop", "Net", "Net")]


def test_interceptor_runs_inside_module_scope():
    names = []

    def record(next_fun, args, kwargs, context):
        names.append(hk.current_name())
        return next_fun(*args, **kwargs)

    def fn(x):
        net = Net(2, name="m")
        with hk.intercept_methods(record):
            return net.encode(x)

    hk.transform(fn).init(0, X)
    assert names == ["m"]


def test_interceptors_nest_outermost_first_and_can_change_args():
    order = []

    def make(tag, scale):
        def interceptor(next_fun, args, kwargs, context):
            order.append(tag)
            return next_fun(*(a * scale for a in args), **kwargs)
        return interceptor

    def fn(x):
        net = Net(2)
        with hk.intercept_methods(make("outer", 2)), hk.intercept_methods(make("inner", 3)):
            return net.encode(x)

    out = hk.transform(fn).apply({}, None, X)
    assert order == ["outer", "inner"]
    assert float(out[0, 0]) == 6.0


def test_method_context_has_bound_original_method():
    contexts = []

    def record(next_fun, args, kwargs, context):
        contexts.append(context)
        return next_fun(*args, **kwargs)

    def fn(x):
        net = Net(2)
        with hk.intercept_methods(record):
            net.encode(x)
        return net

    hk.transform(fn).init(0, X)
    (context,) = contexts
    assert context.orig_method(5) == 5


def test_params_dict_includes_own_and_used_modules():
    def fn(x):
        shared = hk.Linear(2, name="shared")

        class User(hk.Module):
            def __call__(self, x):
                return shared(hk.Linear(3)(x))

        user = User()
        user(x)
        return sorted(user.params_dict())

    f = hk.transform(fn)
    assert f.apply(f.init(0, X), None, X) == [
        "shared/b", "shared/w", "user/linear/b", "user/linear/w"]


def test_params_dict_outside_transform_is_an_error():
    holder = {}
    hk.transform(lambda: holder.setdefault("m", Net(1))).init(None)
    with pytest.raises(ValueError, match=r"must be initialized inside an `hk\.transform`"):
        holder["m"].params_dict()


def test_auto_repr_lists_explicit_constructor_arguments():
    r = hk.transform(lambda: repr(hk.Linear(output_size=2, name="q"))).apply({}, None)
    assert r == "Linear(output_size=2, name='q')"


def test_auto_repr_can_be_switched_off():
    with hk.config.context(module_auto_repr=False):
        r = hk.transform(lambda: repr(hk.Linear(2))).apply({}, None)
    assert r.startswith("<")


def test_class_signature_is_init_without_self():
    assert str(inspect.signature(Net)) == "(size: int, name: str | None = None)"
    assert str(inspect.signature(hk.to_module(lambda x: x))) == "(name=None)"  # as Haiku's


def test_to_module_uses_function_name_and_class_name():
    def double(x):
        return 2 * x

    def fn(x):
        mod = hk.to_module(double)()
        return type(mod).__name__, mod.module_name, mod(x)

    name, path, out = hk.transform(fn).apply({}, None, 2.0)
    assert (name, path, out) == ("ToModuleWrapper", "double", 4.0)


def test_to_module_of_lambda_fails_name_validation():
    with pytest.raises(ValueError, match="not a valid module name"):
        hk.transform(lambda: hk.to_module(lambda x: x)()).init(None)


def test_constructor_without_super_init_is_an_error():
    class NoSuper(hk.Module):
        def __init__(self):
            pass

    with pytest.raises(ValueError, match="without calling the super constructor"):
        hk.transform(lambda: NoSuper()).init(None)


def test_submodule_before_super_init_is_an_error():
    class Early(hk.Module):
        def __init__(self):
            self.lin = hk.Linear(2)
            super().__init__()

    with pytest.raises(ValueError, match="super constructor must be called before"):
        hk.transform(lambda: Early()).init(None)


def test_calling_module_outside_transform_is_an_error():
    holder = {}
    hk.transform(lambda: holder.setdefault("m", Net(1))).init(None)
    with pytest.raises(ValueError, match="inside an `hk.transform`"):
        holder["m"](X)


def test_dataclass_module_params():
    @dataclasses.dataclass
    class Scale(hk.Module):
        init_value: float = 1.0
        name: str | None = None

        def __call__(self, x):
            return x * hk.get_parameter("s", [], init=hk.initializers.Constant(self.init_value))

    params = hk.transform(lambda x: Scale(2.0)(x)).init(None, 1.0)
    assert float(params["scale"]["s"]) == 2.0


def test_module_works_under_jit_of_apply():
    f = hk.transform(lambda x: Net(2)(x))
    params = f.init(jax.random.PRNGKey(0), X)
    assert jax.jit(f.apply)(params, None, X).shape == (1, 2)


# --- to_module and module_auto_repr (issue 13 item 5). Expected reprs are what Haiku 0.0.17
# prints for the same constructor calls.


def _documented(x):
    """Doubles x."""
    return 2 * x


def test_to_module_instances_carry_function_docstring():
    doc = hk.transform(lambda: hk.to_module(_documented)().__doc__).apply({}, None)
    assert doc == "Doubles x."


def test_to_module_without_docstring_has_a_default_one():
    def bare(x):
        return x

    assert hk.to_module(bare).__doc__ == "Module produced by `hk.to_module`."


@pytest.mark.parametrize("name, shown", [(1, "1"), (b"x", "b'x'")], ids=["int", "bytes"])
def test_to_module_non_string_name_is_type_error(name, shown):
    module_cls = hk.to_module(_documented)
    with pytest.raises(TypeError, match=rf"Expected a string name .* got: {shown}\."):
        hk.transform(lambda: module_cls(name)).init(None)


def _repr_of(make):
    return hk.transform(lambda: repr(make())).apply({}, None)


@pytest.mark.parametrize("make, expected", [
    (lambda: hk.Linear(2), "Linear(output_size=2)"),
    (lambda: hk.Linear(2, True), "Linear(output_size=2)"),
    (lambda: hk.Linear(2, with_bias=False, name="q"),
     "Linear(output_size=2, with_bias=False, name='q')"),
    (lambda: hk.Conv2D(4, 3), "Conv2D(output_channels=4, kernel_shape=3)"),
    (lambda: hk.Conv2D(4, kernel_shape=[3, 3], stride=2, padding="VALID"),
     "Conv2D(output_channels=4, kernel_shape=[3, 3], stride=2, padding='VALID')"),
    (lambda: hk.nets.MLP([3, 1]), "MLP(output_sizes=[3, 1])"),
    (lambda: hk.nets.MLP([3, 1], activation=jax.nn.relu), "MLP(output_sizes=[3, 1])"),
    (lambda: hk.nets.MLP([3, 1]).layers[0], "Linear(output_size=3, name='linear_0')"),
    (lambda: hk.nets.MLP([3, 1]).layers[1], "Linear(output_size=1, name='linear_1')"),
    (lambda: hk.LayerNorm(-1, True, True),
     "LayerNorm(axis=-1, create_scale=True, create_offset=True)"),
    (lambda: hk.LayerNorm(axis=-1, create_scale=True, create_offset=False, eps=1e-3),
     "LayerNorm(axis=-1, create_scale=True, create_offset=False, eps=0.001)"),
    (lambda: hk.BatchNorm(True, True, 0.9),
     "BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9)"),
    (lambda: hk.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9, name="bn"),
     "BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9, name='bn')"),
    (lambda: hk.BatchNorm(True, True, 0.9).mean_ema,
     "ExponentialMovingAverage(decay=0.9, name='mean_ema')"),
    (lambda: hk.Sequential([hk.Linear(2)]), "Sequential(layers=[Linear(output_size=2)])"),
    (lambda: hk.Reshape((2, -1)), "Reshape(output_shape=(2, -1))"),
    (lambda: hk.to_module(_documented)(), "ToModuleWrapper()"),
    (lambda: hk.to_module(_documented)(name="foo"), "ToModuleWrapper(name='foo')"),
], ids=["linear", "linear-default-positional", "linear-kwargs", "conv2d", "conv2d-kwargs", "mlp",
        "mlp-default-activation", "mlp-layer0", "mlp-layer1", "layer_norm", "layer_norm-eps",
        "batch_norm", "batch_norm-named", "ema-in-batch-norm", "sequential", "reshape",
        "to_module", "to_module-named"])
def test_auto_repr_matches_haiku(make, expected):
    assert _repr_of(make) == expected


class _Args(hk.Module):
    def __init__(self, s="", t=None, eps=1e-5, name=None):
        super().__init__(name=name)


class _Varargs(hk.Module):
    def __init__(self, a, b=2, *args, c=3, name=None, **kw):
        super().__init__(name=name)


@pytest.mark.parametrize("make, expected", [
    (lambda: _Args(eps=np.float32(1e-5)), "_Args()"),  # equal to the default: hidden
    (lambda: _Args(t=float("nan")), "_Args(t=nan)"),
    (lambda: _Args(t=np.zeros(2)), "_Args(t=array([0., 0.]))"),  # ambiguous ==: shown
    (lambda: _Args(name=None), "_Args()"),
    (lambda: _Varargs(1, 5, 6, 7, c=4, d=8), "_Varargs(a=1, b=5, 6, 7, c=4, d=8)"),
    (lambda: _Args("x" * 69), "_Args(s='" + "x" * 69 + "')"),  # 80 characters: one line
    (lambda: _Args("x" * 70), "_Args(\n    s='" + "x" * 70 + "',\n)"),
    (lambda: _Args({"b": 1, "a": 2}, "y" * 80),  # laid out with pprint (dicts sorted)
     "_Args(\n    s={'a': 2, 'b': 1},\n    t='" + "y" * 80 + "',\n)"),
    (lambda: _Args(list(range(100, 117))),
     "_Args(\n    s=[" + ",\n       ".join(str(i) for i in range(100, 117)) + "],\n)"),
], ids=["equal-default", "nan", "array", "explicit-none", "varargs", "80-chars", "81-chars",
        "pformat-dict", "pformat-list"])
def test_auto_repr_layout_matches_haiku(make, expected):
    assert _repr_of(make) == expected


class _CustomRepr(hk.Module):
    def __init__(self, v=1, name=None):
        super().__init__(name=name)

    def __repr__(self):
        return "custom"


class _InheritsCustomRepr(_CustomRepr):
    pass


def test_hand_written_repr_is_kept_but_not_inherited():
    assert _repr_of(lambda: _CustomRepr()) == "custom"
    assert _repr_of(lambda: _InheritsCustomRepr(2)) == "_InheritsCustomRepr(v=2)"


def test_dataclass_module_keeps_auto_repr():
    @dataclasses.dataclass
    class Config(hk.Module):
        a: int = 1
        name: str | None = None

    assert _repr_of(lambda: Config(2)) == "Config(a=2)"


def test_repr_works_inside_constructor_before_super_init():
    seen = []

    class Early(hk.Module):
        def __init__(self, v=1, name=None):
            seen.append(repr(self))
            super().__init__(name=name)

    _repr_of(lambda: Early(3))
    assert seen == ["Early(v=3)"]
