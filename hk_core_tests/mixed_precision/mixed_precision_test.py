"""Tests for hk_core/_src/mixed_precision/mixed_precision.py (API.md §5.1, plus per-path policies)."""

import re
import threading

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk
from hk_core._src.core import interceptors
from hk_core._src.mixed_precision import mixed_precision as mp_lib

mp = hk.mixed_precision
HALF_COMPUTE = "params=float32,compute=bfloat16,output=float32"


@pytest.fixture(autouse=True)
def _restore_policies():
    # Policies are process-global: every test starts and ends with none set.
    registries = (mp_lib._CLASS_POLICIES, mp_lib._PATH_POLICIES, mp_lib._PATTERN_POLICIES)
    saved = [dict(r) for r in registries]
    for registry in registries:
        registry.clear()
    mp_lib._RESOLVED_PATHS.clear()
    yield
    for registry, old in zip(registries, saved):
        registry.clear()
        registry.update(old)
    mp_lib._RESOLVED_PATHS.clear()


class Recorder(hk.Module):
    """Reports the dtypes it sees: its argument, a float param, a float and an int state."""

    def __call__(self, x):
        w = hk.get_parameter("w", [2], jnp.float32, init=jnp.ones)
        s = hk.get_state("s", [2], jnp.float32, init=jnp.ones)
        n = hk.get_state("n", [], jnp.int32, init=jnp.zeros)
        return {"x": x.dtype, "w": w.dtype, "s": s.dtype, "n": n.dtype,
                "policy": mp.current_policy(), "out": x}


class SubRecorder(Recorder):
    pass


class Outer(hk.Module):
    def __call__(self, x):
        return Recorder()(x), hk.get_parameter("v", [2], x.dtype, init=jnp.ones).dtype


def _run(f, *args):
    transformed = hk.transform_with_state(f)
    params, state = transformed.init(jax.random.PRNGKey(0), *args)
    out, _ = transformed.apply(params, state, None, *args)
    return out, params, state


# Class policies (Haiku's API).


def test_linear_policy_keeps_f32_params_computes_bf16_returns_f32():
    mp.set_policy(hk.Linear, HALF_COMPUTE)
    x = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    out, params, _ = _run(lambda x: hk.Linear(4)(x), x)
    assert params["linear"]["w"].dtype == jnp.float32
    assert out.dtype == jnp.float32
    w, b = params["linear"]["w"], params["linear"]["b"]
    expected = (x.astype(jnp.bfloat16) @ w.astype(jnp.bfloat16) + b.astype(jnp.bfloat16))
    chex.assert_trees_all_close(out, expected.astype(jnp.float32))


def test_method_sees_compute_dtype_for_args_params_and_float_state_only():
    mp.set_policy(Recorder, HALF_COMPUTE)
    out, params, state = _run(lambda x: Recorder()(x), jnp.ones([2]))
    assert (out["x"], out["w"], out["s"], out["n"]) == (
        jnp.bfloat16, jnp.bfloat16, jnp.bfloat16, jnp.int32)
    assert out["out"].dtype == jnp.float32  # output cast
    # Stored values keep their own dtypes.
    assert params["recorder"]["w"].dtype == jnp.float32
    assert state["recorder"]["s"].dtype == jnp.float32


def test_params_are_created_in_param_dtype():
    mp.set_policy(hk.Linear, "params=bfloat16,compute=float32,output=float32")
    _, params, _ = _run(lambda x: hk.Linear(2)(x), jnp.ones([1, 3]))
    assert params["linear"]["w"].dtype == jnp.bfloat16
    assert params["linear"]["b"].dtype == jnp.bfloat16


def test_constructor_arguments_are_cast_to_compute_dtype():
    class Holder(hk.Module):
        def __init__(self, value, name=None):
            super().__init__(name=name)
            self.value = value

        def __call__(self):
            return self.value.dtype

    mp.set_policy(Holder, HALF_COMPUTE)
    out, _, _ = _run(lambda: Holder(jnp.ones([2]))())
    assert out == jnp.bfloat16


def test_subclasses_do_not_inherit_policy():
    mp.set_policy(Recorder, HALF_COMPUTE)
    out, _, _ = _run(lambda x: SubRecorder()(x), jnp.ones([2]))
    assert out["x"] == jnp.float32 and out["policy"] is None


def test_innermost_policy_wins_for_creation_and_reads():
    mp.set_policy(Outer, "params=float16,compute=float16,output=float32")
    mp.set_policy(Recorder, HALF_COMPUTE)
    (inner, outer_v), params, _ = _run(lambda x: Outer()(x), jnp.ones([2]))
    assert inner["w"] == jnp.bfloat16 and inner["policy"] == mp.get_policy(Recorder)
    assert params["outer/recorder"]["w"].dtype == jnp.float32
    assert params["outer"]["v"].dtype == jnp.float16
    assert outer_v == jnp.float16


def test_module_without_policy_inside_one_with_policy_uses_outer_policy():
    mp.set_policy(Outer, "params=float16,compute=bfloat16,output=float32")
    (inner, _), params, _ = _run(lambda x: Outer()(x), jnp.ones([2]))
    assert inner["policy"] == mp.get_policy(Outer)
    assert inner["w"] == jnp.bfloat16
    assert params["outer/recorder"]["w"].dtype == jnp.float16


def test_current_policy_is_none_outside_policy_modules():
    mp.set_policy(Recorder, HALF_COMPUTE)
    out, _, _ = _run(lambda: mp.current_policy())
    assert out is None and mp.current_policy() is None


def test_get_and_clear_policy():
    assert mp.get_policy(hk.Linear) is None
    mp.set_policy(hk.Linear, "bf16")
    assert mp.get_policy(hk.Linear) == mp.Policy.from_string("bf16")
    mp.clear_policy(hk.Linear)
    assert mp.get_policy(hk.Linear) is None


def test_any_object_with_jmp_policy_interface_works():
    class DuckPolicy:
        param_dtype = jnp.float32
        compute_dtype = jnp.float16
        output_dtype = jnp.float16

        def cast_to_compute(self, tree):
            return jax.tree.map(lambda x: x.astype(jnp.float16)
                                if isinstance(x, jax.Array) and x.dtype == jnp.float32 else x, tree)

        def cast_to_output(self, tree):
            return tree

    mp.set_policy(Recorder, DuckPolicy())
    out, _, _ = _run(lambda x: Recorder()(x), jnp.ones([2]))
    assert out["x"] == jnp.float16 and out["w"] == jnp.float16


def test_classes_with_same_module_and_qualname_share_a_policy():
    first = type("Twin", (Recorder,), {"__module__": "somewhere", "__qualname__": "Twin"})
    second = type("Twin", (Recorder,), {"__module__": "somewhere", "__qualname__": "Twin"})
    mp.set_policy(first, HALF_COMPUTE)
    assert mp.get_policy(second) is mp.get_policy(first)


def test_local_classes_are_keyed_by_the_class_object():
    def make():
        class Local(Recorder):
            pass
        return Local

    first, second = make(), make()
    mp.set_policy(first, HALF_COMPUTE)
    assert mp.get_policy(second) is None
    out, _, _ = _run(lambda x: second()(x), jnp.ones([2]))
    assert out["x"] == jnp.float32


# push_policy


def test_push_policy_restores_previous_policy():
    previous = mp.Policy.from_string("f16")
    mp.set_policy(hk.Linear, previous)
    with mp.push_policy(hk.Linear, "bf16"):
        assert mp.get_policy(hk.Linear) == mp.Policy.from_string("bf16")
    assert mp.get_policy(hk.Linear) is previous


def test_push_policy_clears_when_there_was_none():
    with mp.push_policy(hk.Linear, "bf16"):
        out, _, _ = _run(lambda x: hk.Linear(2)(x), jnp.ones([1, 2]))
    assert out.dtype == jnp.bfloat16
    assert mp.get_policy(hk.Linear) is None


def test_push_policy_inside_method_of_same_class_raises():
    class Pusher(hk.Module):
        def __call__(self):
            with mp.push_policy(Pusher, "bf16"):
                pass

    with pytest.raises(ValueError, match=r"^Pushing a policy inside a method on the same class "
                                         r"is not supported\.$"):
        _run(lambda: Pusher()())


# Policies for one module instance, by path or pattern (beyond Haiku).


def _mlp(x):
    return hk.nets.MLP([3, 2])(x)


def test_path_policy_applies_to_that_module_only():
    # Output in f32 so linear_1 (whose params follow its input dtype) sees f32 inputs.
    mp.set_policy("mlp/~/linear_0", "params=bfloat16,compute=bfloat16,output=float32")
    _, params, _ = _run(_mlp, jnp.ones([1, 4]))
    assert params["mlp/~/linear_0"]["w"].dtype == jnp.bfloat16
    assert params["mlp/~/linear_1"]["w"].dtype == jnp.float32


def test_path_policy_casts_that_modules_output():
    mp.set_policy("mlp/~/linear_1", "params=float32,compute=float32,output=float16")
    out, _, _ = _run(_mlp, jnp.ones([1, 4]))
    assert out.dtype == jnp.float16


def test_pattern_policy_applies_to_every_fullmatching_path():
    mp.set_policy(re.compile(r"mlp/~/linear_\d+"), "bf16")
    mp.set_policy(re.compile(r"linear"), "f16")  # fullmatch: matches no path here
    _, params, _ = _run(_mlp, jnp.ones([1, 4]))
    assert {m: b["w"].dtype for m, b in params.items()} == {
        "mlp/~/linear_0": jnp.bfloat16, "mlp/~/linear_1": jnp.bfloat16}


def test_path_policy_wins_over_class_policy():
    mp.set_policy(hk.Linear, "f16")
    mp.set_policy("mlp/~/linear_1", "bf16")
    _, params, _ = _run(_mlp, jnp.ones([1, 4]))
    assert params["mlp/~/linear_0"]["w"].dtype == jnp.float16
    assert params["mlp/~/linear_1"]["w"].dtype == jnp.bfloat16


def test_latest_matching_pattern_wins():
    mp.set_policy(re.compile(r".*linear_0"), "f16")
    mp.set_policy(re.compile(r"mlp/.*"), "bf16")
    _, params, _ = _run(_mlp, jnp.ones([1, 4]))
    assert params["mlp/~/linear_0"]["w"].dtype == jnp.bfloat16


def test_path_policy_get_clear_and_push():
    assert mp.get_policy("mlp/~/linear_0") is None
    with mp.push_policy("mlp/~/linear_0", "bf16"):
        assert mp.get_policy("mlp/~/linear_0") == mp.Policy.from_string("bf16")
        _, params, _ = _run(_mlp, jnp.ones([1, 4]))
    assert params["mlp/~/linear_0"]["w"].dtype == jnp.bfloat16
    assert mp.get_policy("mlp/~/linear_0") is None


def test_push_path_policy_inside_that_module_raises():
    class Pusher(hk.Module):
        def __call__(self):
            with mp.push_policy("pusher", "bf16"):
                pass

    with pytest.raises(ValueError, match=r"Pushing a policy for 'pusher' inside a method of a "
                                         r"module it names is not supported"):
        _run(lambda: Pusher()())


# Bad arguments.


def test_bad_target_raises_type_error():
    with pytest.raises(TypeError, match=r"must be a Module class, a module path string or a "
                                        r"compiled re.Pattern; got int 3"):
        mp.set_policy(3, "bf16")


def test_object_without_policy_interface_raises_type_error():
    with pytest.raises(TypeError, match=r"lacks param_dtype, compute_dtype, cast_to_compute, "
                                        r"cast_to_output"):
        mp.set_policy(hk.Linear, object())


# The global interceptor reaches every thread.


def test_policy_applies_in_other_threads():
    mp.set_policy(hk.Linear, "bf16")
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(out=_run(lambda x: hk.Linear(2)(x), jnp.ones([1, 2]))[0]))
    thread.start()
    thread.join()
    assert result["out"].dtype == jnp.bfloat16


class _Probe(hk.Module):
    def __call__(self):
        return 0


def test_install_global_reaches_threads_that_already_intercepted():
    seen = []

    def probe(next_fun, args, kwargs, context):
        if isinstance(context.module, _Probe) and context.method_name == "__call__":
            seen.append(threading.current_thread().name)
        return next_fun(*args, **kwargs)

    ready, go = threading.Event(), threading.Event()

    def worker():
        _run(lambda: _Probe()())  # this thread's interceptor stack now exists
        ready.set()
        go.wait()
        _run(lambda: _Probe()())

    thread = threading.Thread(target=worker, name="worker")
    thread.start()
    ready.wait()
    interceptors.install_global(probe)  # stays installed; inert for other modules
    go.set()
    thread.join()
    _run(lambda: _Probe()())
    assert sorted(seen) == ["MainThread", "MainThread", "worker", "worker"]  # init + apply
