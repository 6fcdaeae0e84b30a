"""``make_mesh``: sizes, ``-1``, axis types (Auto by default), errors, and Explicit vs Auto."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import hk_core as hk
from hk_core import distributed


def test_host_has_eight_devices():
    assert jax.device_count() == 8


@pytest.mark.parametrize("axes, expected", [
    ({"data": -1}, {"data": 8}),
    ({"data": 4, "model": -1}, {"data": 4, "model": 2}),
    ({"data": -1, "model": 2}, {"data": 4, "model": 2}),
    ({"model": 2, "data": 4}, {"model": 2, "data": 4}),
])
def test_mesh_has_requested_axes_in_dict_order(axes, expected):
    mesh = distributed.make_mesh(axes)
    assert dict(mesh.shape) == expected
    assert mesh.axis_names == tuple(expected)


def test_mesh_uses_every_device_once():
    mesh = distributed.make_mesh({"data": 4, "model": 2})
    assert sorted(d.id for d in mesh.devices.flat) == sorted(d.id for d in jax.devices())


def test_mesh_over_given_devices():
    mesh = distributed.make_mesh({"data": -1}, devices=jax.devices()[:2])
    assert dict(mesh.shape) == {"data": 2}


def test_default_axis_types_are_auto():
    assert distributed.make_mesh({"data": 4, "model": 2}).axis_types == (AxisType.Auto,) * 2


@pytest.mark.parametrize("axis_types, expected", [
    ("explicit", (AxisType.Explicit, AxisType.Explicit)),
    (AxisType.Explicit, (AxisType.Explicit, AxisType.Explicit)),
    ((AxisType.Explicit, "auto"), (AxisType.Explicit, AxisType.Auto)),
    ({"model": "explicit"}, (AxisType.Auto, AxisType.Explicit)),
])
def test_axis_types_can_be_chosen(axis_types, expected):
    mesh = distributed.make_mesh({"data": 4, "model": 2}, axis_types=axis_types)
    assert mesh.axis_types == expected


@pytest.mark.parametrize("axes, kwargs, message", [
    ({"data": -1, "model": -1}, {}, r"at most one axis may be -1, got \{'data': -1, 'model': -1\}"),
    ({"data": 3}, {}, r"\{'data': 3\} multiply to 3, but there are 8 devices"),
    ({"data": 3, "model": -1}, {}, r"\{'data': 3, 'model': -1\} cannot use all 8 devices.*3"),
    ({"data": 0}, {}, r"axis 'data' has size 0"),
    ({}, {}, r"at least one axis"),
    ({"data": 8}, {"axis_types": "sideways"}, r"axis '\*' has axis type 'sideways'"),
    ({"data": 8}, {"axis_types": ("auto", "auto")}, r"2 axis types .* for 1 axes \['data'\]"),
    ({"data": 8}, {"axis_types": {"model": "auto"}}, r"\['model'\] .* mesh axes \['data'\]"),
])
def test_bad_mesh_request_says_what_and_why(axes, kwargs, message):
    with pytest.raises(ValueError, match=message):
        distributed.make_mesh(axes, **kwargs)


def _row_parallel(mesh):
    """A Linear whose input features and w rows are split over 'model' (a contracting dim)."""
    f = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(2, with_bias=False)(x)))
    w = np.arange(16, dtype=np.float32).reshape(8, 2)
    x = np.ones((4, 8), np.float32)
    params = jax.device_put({"linear": {"w": w}}, NamedSharding(mesh, P("model", None)))
    x = jax.device_put(x, NamedSharding(mesh, P("data", "model")))
    return jax.jit(f.apply), params, x, np.ones((4, 8), np.float32) @ w


def test_row_parallel_linear_works_on_default_auto_mesh():
    apply, params, x, expected = _row_parallel(distributed.make_mesh({"data": 4, "model": 2}))
    chex.assert_trees_all_close(apply(params, x), expected)


def test_row_parallel_linear_on_explicit_mesh_raises_sharding_type_error():
    # Why Auto is the default: Explicit axes make a sharded contraction a type error unless the
    # layer names its output sharding, which Haiku-style layers do not.
    mesh = distributed.make_mesh({"data": 4, "model": 2}, axis_types="explicit")
    apply, params, x, _ = _row_parallel(mesh)
    with pytest.raises(Exception, match="Contracting dimensions are sharded") as info:
        apply(params, x)
    assert type(info.value).__name__ == "ShardingTypeError"


def test_data_parallel_linear_works_on_explicit_mesh():
    mesh = distributed.make_mesh({"data": 8}, axis_types="explicit")
    f = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(3)(x)))
    w, b = np.ones((4, 3), np.float32), np.arange(3, dtype=np.float32)
    params = jax.device_put({"linear": {"w": w, "b": b}}, NamedSharding(mesh, P()))
    x = jax.device_put(jnp.arange(32.0).reshape(8, 4), NamedSharding(mesh, P("data")))
    out = jax.jit(f.apply)(params, x)
    chex.assert_trees_all_close(out, np.arange(32.0).reshape(8, 4) @ w + b)
    assert out.sharding.spec == P("data", None)
