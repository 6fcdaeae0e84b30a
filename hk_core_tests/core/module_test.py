"""hk.Module: method wrapping, interceptors, params_dict, repr and construction errors."""

import dataclasses
import inspect

import jax
import jax.numpy as jnp
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
    with pytest.raises(ValueError):
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
    assert str(inspect.signature(hk.to_module(lambda x: x))) == "(name: str | None = None)"


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
