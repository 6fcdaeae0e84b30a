"""eval_summary and tabulate: recorded calls, shapes, params, the table and its options."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

X = jnp.ones([8, 3])


def _mlp(x):
    return hk.nets.MLP([4, 2])(x)


class _Gate(hk.Module):
    """Uses a Python flag, a keyword argument, a second method and state."""

    def __call__(self, x, *, scale=1.0, use_linear=True):
        hk.set_state("calls", jnp.zeros([], jnp.int32))
        return self.project(x) * scale if use_linear else x

    def project(self, x):
        return hk.Linear(5)(x)

    def log(self, x):
        del x  # returns nothing: dropped by the 'has_output' filter


def _gate(x):
    gate = _Gate()
    gate.log(x)
    return gate(x, scale=2.0, use_linear=True)


def _paths(calls):
    return [(c.module_details.module.module_name, c.module_details.method_name) for c in calls]


def test_eval_summary_records_outer_calls_before_inner_ones():
    calls = hk.experimental.eval_summary(_mlp)(X)
    assert _paths(calls) == [("mlp", "__call__"), ("mlp/~/linear_0", "__call__"),
                             ("mlp/~/linear_1", "__call__")]


def test_eval_summary_output_and_args_are_array_specs():
    outer, first, _ = hk.experimental.eval_summary(_mlp)(X)
    assert outer.args_spec == (hk.experimental.ArraySpec((8, 3), np.dtype("float32")),)
    assert outer.kwargs_spec == {}
    assert first.output_spec == hk.experimental.ArraySpec((8, 4), np.dtype("float32"))


def test_eval_summary_params_include_submodules_in_creation_order():
    outer, first, _ = hk.experimental.eval_summary(_mlp)(X)
    assert {k: str(v) for k, v in first.module_details.params.items()} == {
        "mlp/~/linear_0/w": "f32[3,4]", "mlp/~/linear_0/b": "f32[4]"}
    assert list(outer.module_details.params) == [
        "mlp/~/linear_0/w", "mlp/~/linear_0/b", "mlp/~/linear_1/w", "mlp/~/linear_1/b"]


def test_eval_summary_call_stack_lists_enclosing_calls_outermost_first():
    calls = hk.experimental.eval_summary(_gate)(X)
    linear_call = calls[-1]
    assert linear_call.module_details.module.module_name == "__gate/~project/linear"
    assert [(d.module.module_name, d.method_name) for d in linear_call.call_stack] == [
        ("__gate", "__call__"), ("__gate", "project")]


def test_eval_summary_keeps_python_flags_static_and_records_kwargs():
    calls = hk.experimental.eval_summary(_gate)(X)
    assert _paths(calls) == [("__gate", "log"), ("__gate", "__call__"), ("__gate", "project"),
                             ("__gate/~project/linear", "__call__")]
    assert calls[1].kwargs_spec == {"scale": 2.0, "use_linear": True}
    assert calls[0].output_spec is None


def test_eval_summary_records_state_specs():
    calls = hk.experimental.eval_summary(_gate)(X)
    assert calls[1].module_details.state == {
        "__gate/calls": hk.experimental.ArraySpec((), np.dtype("int32"))}


def test_eval_summary_context_names_the_method_and_class():
    calls = hk.experimental.eval_summary(_gate)(X)
    assert calls[2].context.method_name == "project"
    assert calls[2].context.orig_class is _Gate


@pytest.mark.parametrize("wrap", [hk.transform, hk.transform_with_state,
                                  lambda f: hk.without_apply_rng(hk.transform(f))])
def test_eval_summary_accepts_transformed_functions(wrap):
    calls = hk.experimental.eval_summary(wrap(_mlp))(X)
    assert len(calls) == 3


def test_eval_summary_accepts_shape_dtype_structs():
    calls = hk.experimental.eval_summary(_mlp)(jax.ShapeDtypeStruct((5, 3), jnp.bfloat16))
    assert str(calls[0].output_spec) == "bf16[5,2]"


def test_eval_summary_rejects_multi_transform():
    f = hk.multi_transform(lambda: (_mlp, (_mlp,)))
    with pytest.raises(TypeError, match="do not support multi_transform"):
        hk.experimental.eval_summary(f)


def test_tabulate_default_table_has_haiku_columns_and_counts():
    table = hk.experimental.tabulate(lambda x: hk.nets.MLP([300, 100, 10])(x))(
        jnp.ones([8, 784]))
    header = table.splitlines()[1]
    assert [h.strip() for h in header.strip("|").split("|")] == [
        "Module", "Config", "Module params", "Input", "Output", "Param count", "Param bytes"]
    mlp_row = table.splitlines()[3]
    assert "mlp (MLP)" in mlp_row and "MLP(output_sizes=[300, 100, 10])" in mlp_row
    assert "266,610" in mlp_row and "1.07 MB" in mlp_row  # 266,610 f32 = 1,066,440 bytes
    assert "w: f32[784,300]" in table and "942.00 KB" in table


def test_tabulate_labels_other_methods_and_callers():
    table = hk.experimental.tabulate(_gate, columns=("module",))(X)
    assert "__gate (_Gate.project)" in table
    assert " └ __gate (_Gate.project)" in table and " └ __gate (_Gate)" in table


def test_tabulate_has_output_filter_drops_methods_returning_none():
    keep_all = hk.experimental.tabulate(_gate, columns=("module",), filters=None)(X)
    default = hk.experimental.tabulate(_gate, columns=("module",))(X)
    assert "(_Gate.log)" in keep_all and "(_Gate.log)" not in default


def test_tabulate_has_params_filter_drops_modules_without_params():
    double = hk.to_module(lambda x: 2 * x)

    def f(x):
        return hk.Linear(2)(double(name="double")(x))

    table = hk.experimental.tabulate(f, columns=("module",), filters=("has_params",))(X)
    assert "linear (Linear)" in table and "double" not in table


def test_tabulate_passes_tabulate_kwargs():
    table = hk.experimental.tabulate(_mlp, columns=("module", "output"),
                                     tabulate_kwargs={"tablefmt": "plain"})(X)
    assert table.splitlines()[0].split() == ["Module", "Output"]


@pytest.mark.parametrize("kwargs, match", [
    ({"columns": ("module", "flops")}, r"unknown column\(s\) \['flops'\]; valid columns are"),
    ({"filters": ("has_state",)}, r"unknown filter\(s\) \['has_state'\]; valid filters are"),
])
def test_tabulate_rejects_unknown_columns_and_filters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        hk.experimental.tabulate(_mlp, **kwargs)


def test_tabulate_without_package_raises_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tabulate", None)  # makes `import tabulate` fail
    with pytest.raises(ImportError, match=r"needs the optional `tabulate` package"):
        hk.experimental.tabulate(_mlp)(X)
