"""jaxpr_info.make_model_info and format_module: module tree, FLOPs, params, options."""

import jax
import jax.numpy as jnp
import pytest

import hk_core as hk
from hk_core._src.inspect import model_info
from hk_core.experimental import jaxpr_info

X = jnp.ones([1, 4])
_ESTIMATE = model_info.estimated_flops


def _mlp_info(**kwargs):
    f = hk.transform(lambda x: hk.nets.MLP([3, 2])(x))
    params = f.init(jax.random.PRNGKey(0), X)
    return jaxpr_info.make_model_info(f.apply, **kwargs)(params, None, X)


def _modules(module):
    return [item for item in module.expressions if isinstance(item, jaxpr_info.Module)]


def test_root_is_named_after_function_or_name_argument():
    assert _mlp_info().name == "apply_fn"
    assert _mlp_info(name="mlp model").name == "mlp model"


def test_module_calls_nest_with_module_names_and_user_jits_as_haiku_does():
    [mlp] = _modules(_mlp_info())
    assert mlp.name == "mlp"
    assert [m.name for m in _modules(mlp)] == ["linear_0", "custom_jvp", "linear_1"]


def test_without_compute_flops_no_flops_are_counted():
    info = _mlp_info()
    [mlp] = _modules(info)
    assert (info.flops, mlp.flops, _modules(mlp)[0].expressions[0].flops) == (None, None, None)


def test_flops_are_summed_up_the_tree():
    info = _mlp_info(compute_flops=_ESTIMATE)
    [mlp] = _modules(info)
    linear_0, _, linear_1 = _modules(mlp)
    assert linear_0.flops == 2 * 4 * 3 + 3  # matmul [1,4]x[4,3] + bias add
    assert linear_1.flops == 2 * 3 * 2 + 2
    assert mlp.flops == linear_0.flops + 3 + linear_1.flops  # + relu on [1,3]
    assert info.flops == mlp.flops


def test_params_count_visible_parameter_elements():
    info = _mlp_info()
    [mlp] = _modules(info)
    assert [m.params for m in _modules(mlp)] == [4 * 3 + 3, 0, 3 * 2 + 2]
    assert mlp.params == info.params == 23


def test_expressions_record_primitive_and_shapes():
    [mlp] = _modules(_mlp_info(compute_flops=_ESTIMATE))
    dot = _modules(mlp)[0].expressions[0]
    assert (dot.primitive, dot.invars, dot.outvars, dot.flops) == (
        "dot_general", ["f32[1,4]", "f32[4,3]"], ["f32[1,3]"], 24)


def test_without_module_info_groups_by_named_scope():
    info = _mlp_info(include_module_info=False)
    [mlp] = _modules(info)
    assert mlp.name == "mlp"
    assert [m.name for m in _modules(mlp)] == ["linear_0", "custom_jvp", "linear_1"]
    assert info.params == 0


def test_custom_compute_flops_is_used_for_each_primitive():
    info = _mlp_info(compute_flops=lambda eqn, expression: 1)
    [mlp] = _modules(info)
    assert [e.flops for e in _modules(mlp)[0].expressions] == [1, 1, 1]


def test_scan_flops_are_per_step_and_count_length_times_in_the_total():
    info = jaxpr_info.make_model_info(
        lambda xs: jax.lax.scan(lambda c, x: (c + x, x * x), 0.0, xs),
        compute_flops=_ESTIMATE)(jnp.ones([5]))
    [scan] = [e for e in info.expressions if e.primitive == "scan"]
    assert (scan.flops, scan.details) == (2, "length=5 unroll=1")  # add and mul per step
    assert info.flops == 5 * 2
    assert [m.name for m in scan.submodule.expressions] == ["jaxpr"]


# Recorded from Haiku 0.0.17 (black box): a scan, a cond and a while loop, every primitive
# counted as 1 FLOP. A scan lists its body and counts it `length` times in the total; a cond
# is one operation; a while loop lists its body only.
_CONTROL_FLOW_TEXT = """\
g 21 flops
  scan length=5 unroll=1 3 flops
    convert_element_type 1 flops in f32[], out f32[]
    add 1 flops in f32[], f32[], out f32[]
    mul 1 flops in f32[], f32[], out f32[]
  slice 1 flops in f32[5], out f32[1]
  squeeze 1 flops in f32[1], out f32[]
  gt 1 flops in f32[], f32[], out bool[]
  convert_element_type 1 flops in bool[], out int32[]
  cond 1 flops in int32[], f32[5], out f32[5]
  while 1 flops
    add 1 flops in f32[5], f32[], out f32[5]
"""


def test_format_module_of_control_flow_matches_haiku():
    def g(x):
        y = jax.lax.scan(lambda c, x: (c + x, x * x), 0.0, x, reverse=True)[1]
        z = jax.lax.cond(x[0] > 0, lambda v: jnp.sin(v), lambda v: v * 2.0, y)
        return jax.lax.while_loop(lambda v: v[0] < 3.0, lambda v: v + 1.0, z)

    info = jaxpr_info.make_model_info(g, compute_flops=lambda eqn, e: 1)(jnp.ones(5))
    assert jaxpr_info.format_module(info) == _CONTROL_FLOW_TEXT


def test_hk_modules_inside_hk_scan_are_found_in_the_body():
    def f(xs):
        linear = hk.Linear(4)
        return hk.scan(lambda c, x: (c, linear(x)), 0.0, xs)[1]

    f = hk.transform(f)
    xs = jnp.ones([3, 4])
    info = jaxpr_info.make_model_info(f.apply, compute_flops=_ESTIMATE)(
        f.init(jax.random.PRNGKey(0), xs), None, xs)
    [scan] = [e for e in info.expressions if e.primitive == "scan"]
    [body] = scan.submodule.expressions
    assert [m.name for m in _modules(body)] == ["linear"]
    assert (scan.flops, info.flops) == (2 * 4 * 4 + 4, 3 * (2 * 4 * 4 + 4))  # per step; total


def test_axis_env_allows_collectives():
    info = jaxpr_info.make_model_info(lambda x: jax.lax.psum(x, "i"), axis_env=[("i", 4)])(
        jnp.ones([3]))
    assert [e.primitive for e in info.expressions] == ["psum"]


def test_python_arguments_stay_static():
    info = jaxpr_info.make_model_info(lambda x, n: x * n if n > 1 else x)(jnp.ones([2]), 3)
    assert [e.primitive for e in info.expressions] == ["mul"]


# Recorded from Haiku 0.0.17 (black box): format_module(make_model_info(apply, compute_flops=...))
# of hk.nets.MLP([3, 2]) on a [1, 4] input, with compute_flops=None and with every primitive
# counted as 7 FLOPs.
_MLP_TEXT = """\
apply_fn
  mlp 23 params
    linear_0 15 params
      dot_general in f32[1,4], f32[4,3], out f32[1,3]
      broadcast_in_dim in f32[3], out f32[1,3]
      add in f32[1,3], f32[1,3], out f32[1,3]
    custom_jvp
      relu
        max in f32[1,3], f32[], out f32[1,3]
    linear_1 8 params
      dot_general in f32[1,3], f32[3,2], out f32[1,2]
      broadcast_in_dim in f32[2], out f32[1,2]
      add in f32[1,2], f32[1,2], out f32[1,2]
"""
_MLP_TEXT_7_FLOPS = """\
apply_fn 49 flops
  mlp 49 flops 23 params
    linear_0 21 flops 15 params
      dot_general 7 flops in f32[1,4], f32[4,3], out f32[1,3]
      broadcast_in_dim 7 flops in f32[3], out f32[1,3]
      add 7 flops in f32[1,3], f32[1,3], out f32[1,3]
    custom_jvp 7 flops
      relu 7 flops
        max 7 flops in f32[1,3], f32[], out f32[1,3]
    linear_1 21 flops 8 params
      dot_general 7 flops in f32[1,3], f32[3,2], out f32[1,2]
      broadcast_in_dim 7 flops in f32[2], out f32[1,2]
      add 7 flops in f32[1,2], f32[1,2], out f32[1,2]
"""


def test_format_module_without_flops_matches_haiku():
    assert jaxpr_info.format_module(_mlp_info()) == _MLP_TEXT


def test_format_module_with_compute_flops_matches_haiku():
    text = jaxpr_info.format_module(_mlp_info(compute_flops=lambda eqn, expression: 7))
    assert text == _MLP_TEXT_7_FLOPS


# Haiku 0.0.17 on hk.Linear(1000) of a [1, 300] input, each of its 3 primitives counted as
# `flops`: the root line and the module line.
@pytest.mark.parametrize("flops, root, module", [
    (999, "apply_fn 2.997 kflops", "  linear 2.997 kflops 301 kparams"),
    (1000, "apply_fn 3 kflops", "  linear 3 kflops 301 kparams"),
    (12345678, "apply_fn 37.04 Mflops", "  linear 37.04 Mflops 301 kparams"),
    (1500000000000, "apply_fn 4.5 Tflops", "  linear 4.5 Tflops 301 kparams"),
    (0, "apply_fn 0 flops", "  linear 301 kparams"),
])
def test_format_module_counts_use_haiku_units(flops, root, module):
    f = hk.transform(lambda x: hk.Linear(1000)(x))
    x = jnp.ones([1, 300])
    params = f.init(jax.random.PRNGKey(0), x)
    info = jaxpr_info.make_model_info(f.apply, compute_flops=lambda eqn, e: flops)(
        params, None, x)
    assert jaxpr_info.format_module(info).splitlines()[:2] == [root, module]


def test_make_model_info_propagates_tracing_errors():
    with pytest.raises(TypeError, match="add got incompatible shapes"):
        jaxpr_info.make_model_info(lambda x: x + jnp.ones([2]))(jnp.ones([3]))
