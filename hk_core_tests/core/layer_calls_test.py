"""Layer kernels: nested jitted calls normally, inlined inside loop bodies."""

import jax
import jax.numpy as jnp
import numpy as np

import hk_core as hk
from hk_core._src.core import layer_calls


def _called_names(jaxpr) -> list[str]:
    names = []
    for eqn in jaxpr.eqns:
        if "name" in eqn.params:
            names.append(str(eqn.params["name"]))
        for sub in _sub_jaxprs(eqn.params):
            names.extend(_called_names(sub))
    return names


def _sub_jaxprs(params):
    for value in params.values():
        values = value if isinstance(value, (tuple, list)) else (value,)
        for v in values:
            if hasattr(v, "jaxpr") and hasattr(v.jaxpr, "eqns"):
                yield v.jaxpr
            elif hasattr(v, "eqns"):
                yield v


def test_kernel_is_a_nested_call_outside_loops_and_inlined_inside():
    def f(x):
        x = hk.Linear(3, name="outside")(x)
        inner = hk.Linear(3, name="inside")
        x, _ = hk.scan(lambda c, _: (inner(c), None), x, None, length=2)
        return x

    f_t = hk.transform(f)
    x = jnp.ones([2, 3])
    params = f_t.init(jax.random.PRNGKey(0), x)
    jaxpr = jax.make_jaxpr(lambda p: f_t.apply(p, None, x))(params).jaxpr
    top_level = [str(eqn.params.get("name")) for eqn in jaxpr.eqns]
    assert top_level.count("_affine_fn") == 1  # the Linear outside the scan
    assert _called_names(jaxpr).count("_affine_fn") == 1  # none inside the scan body
    scan = next(eqn for eqn in jaxpr.eqns if eqn.primitive.name == "scan")
    body = scan.params["jaxpr"].jaxpr
    assert "dot_general" in {eqn.primitive.name for eqn in body.eqns}  # inlined there


def test_loop_body_flag_nests_and_resets():
    assert not layer_calls.in_loop_body()
    with layer_calls.loop_body():
        with layer_calls.loop_body():
            assert layer_calls.in_loop_body()
        assert layer_calls.in_loop_body()
    assert not layer_calls.in_loop_body()


def test_layer_stack_matches_unrolled_layers():
    def unrolled(x):
        for i in range(3):
            x = hk.Linear(4, name=f"layer_{i}")(x)
        return x

    def stacked(x):
        return hk.layer_stack(3)(lambda y: hk.Linear(4, name="layer")(y))(x)

    x = jnp.ones([2, 4])
    u, s = hk.transform(unrolled), hk.transform(stacked)
    stacked_params = s.init(jax.random.PRNGKey(0), x)
    w = stacked_params["__layer_stack_no_per_layer/layer"]  # Haiku's path (API.md §3.9)
    unrolled_params = {f"layer_{i}": {"w": w["w"][i], "b": w["b"][i]} for i in range(3)}
    np.testing.assert_allclose(s.apply(stacked_params, None, x),
                               u.apply(unrolled_params, None, x), rtol=1e-6)
