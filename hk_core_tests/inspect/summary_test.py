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


def test_eval_summary_params_include_submodules_sorted_by_key():
    # Haiku 0.0.17 gives the keys sorted (b before w).
    outer, first, _ = hk.experimental.eval_summary(_mlp)(X)
    assert {k: str(v) for k, v in first.module_details.params.items()} == {
        "mlp/~/linear_0/w": "f32[3,4]", "mlp/~/linear_0/b": "f32[4]"}
    assert list(outer.module_details.params) == [
        "mlp/~/linear_0/b", "mlp/~/linear_0/w", "mlp/~/linear_1/b", "mlp/~/linear_1/w"]


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


def _jitted_then_mlp(x):
    @jax.jit
    def inner(x):
        return hk.Linear(3)(x)

    return hk.nets.MLP([4, 2])(inner(x))


# Recorded from Haiku 0.0.17 (black box): tabulate(_jitted_then_mlp)(jnp.ones([2, 5])). Calls made
# inside jax.jit are recorded; owned params list the largest first; bytes read "72.00 B" and
# are right-aligned like the counts.
_JITTED_TABLE = """\
+-------------------------+----------------------------------------+-----------------+----------+----------+---------------+---------------+
| Module                  | Config                                 | Module params   | Input    | Output   |   Param count |   Param bytes |
+=========================+========================================+=================+==========+==========+===============+===============+
| linear (Linear)         | Linear(output_size=3)                  | w: f32[5,3]     | f32[2,5] | f32[2,3] |            18 |       72.00 B |
|                         |                                        | b: f32[3]       |          |          |               |               |
+-------------------------+----------------------------------------+-----------------+----------+----------+---------------+---------------+
| mlp (MLP)               | MLP(output_sizes=[4, 2])               |                 | f32[2,3] | f32[2,2] |            26 |      104.00 B |
+-------------------------+----------------------------------------+-----------------+----------+----------+---------------+---------------+
| mlp/~/linear_0 (Linear) | Linear(output_size=4, name='linear_0') | w: f32[3,4]     | f32[2,3] | f32[2,4] |            16 |       64.00 B |
|  └ mlp (MLP)            |                                        | b: f32[4]       |          |          |               |               |
+-------------------------+----------------------------------------+-----------------+----------+----------+---------------+---------------+
| mlp/~/linear_1 (Linear) | Linear(output_size=2, name='linear_1') | w: f32[4,2]     | f32[2,4] | f32[2,2] |            10 |       40.00 B |
|  └ mlp (MLP)            |                                        | b: f32[2]       |          |          |               |               |
+-------------------------+----------------------------------------+-----------------+----------+----------+---------------+---------------+"""


def test_tabulate_records_calls_inside_jit_as_haiku_prints_them():
    pytest.importorskip("tabulate")
    assert hk.experimental.tabulate(_jitted_then_mlp)(jnp.ones([2, 5])) == _JITTED_TABLE


def test_eval_summary_records_calls_inside_jit_with_haiku_reprs():
    # Haiku 0.0.17: specs repr as f32[2,5]; params sorted by key.
    calls = hk.experimental.eval_summary(_jitted_then_mlp)(jnp.ones([2, 5]))
    rows = [(c.module_details.module.module_name, repr(c.args_spec), repr(c.output_spec),
             list(c.module_details.params)) for c in calls]
    assert rows == [
        ("linear", "(f32[2,5],)", "f32[2,3]", ["linear/b", "linear/w"]),
        ("mlp", "(f32[2,3],)", "f32[2,2]",
         ["mlp/~/linear_0/b", "mlp/~/linear_0/w", "mlp/~/linear_1/b", "mlp/~/linear_1/w"]),
        ("mlp/~/linear_0", "(f32[2,3],)", "f32[2,4]", ["mlp/~/linear_0/b", "mlp/~/linear_0/w"]),
        ("mlp/~/linear_1", "(f32[2,4],)", "f32[2,2]", ["mlp/~/linear_1/b", "mlp/~/linear_1/w"]),
    ]


def test_tabulate_with_owned_params_of_equal_size_lists_them_by_name():
    # Haiku 0.0.17 on Linear(1) of a [1, 1] input: "b: f32[1]" above "w: f32[1,1]".
    pytest.importorskip("tabulate")
    table = hk.experimental.tabulate(lambda x: hk.Linear(1)(x),
                                     columns=("owned_params",))(jnp.ones([1, 1]))
    assert table.splitlines()[3:5] == ["| b: f32[1]       |", "| w: f32[1,1]     |"]
