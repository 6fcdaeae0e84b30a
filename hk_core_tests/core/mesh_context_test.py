"""``mesh_context``: jitted steps trace under their inputs' Explicit-axes mesh."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from hk_core._src.core import mesh_context


def _mesh(axis_type):
    return jax.make_mesh((1,), ("data",), axis_types=(axis_type,), devices=jax.devices()[:1])


def test_explicit_mesh_of_finds_the_explicit_mesh_among_other_leaves():
    mesh = _mesh(AxisType.Explicit)
    sharded = jax.device_put(jnp.ones([2]), NamedSharding(mesh, P("data")))
    found = mesh_context.explicit_mesh_of({"a": 1.0, "b": jnp.ones([3]), "c": sharded})
    assert found == mesh.abstract_mesh


@pytest.mark.parametrize("tree", [{"a": jnp.ones([2]), "b": 1.0}, {}, "a string"])
def test_explicit_mesh_of_unsharded_or_static_values_is_none(tree):
    assert mesh_context.explicit_mesh_of(tree) is None


def test_explicit_mesh_of_auto_mesh_is_none():
    sharded = jax.device_put(jnp.ones([2]), NamedSharding(_mesh(AxisType.Auto), P("data")))
    assert mesh_context.explicit_mesh_of([sharded]) is None


def test_under_inputs_mesh_traces_under_the_inputs_explicit_mesh():
    mesh = _mesh(AxisType.Explicit)
    seen = []

    def probe(x):
        seen.append(jax.sharding.get_abstract_mesh())
        return 2 * x

    x = jax.device_put(jnp.arange(2.0), NamedSharding(mesh, P("data")))
    out = jax.jit(mesh_context.under_inputs_mesh(probe))(x)
    np.testing.assert_array_equal(out, [0.0, 2.0])
    assert seen == [mesh.abstract_mesh]


def test_under_inputs_mesh_keeps_a_mesh_the_user_set():
    inputs_mesh = _mesh(AxisType.Explicit)
    user_mesh = jax.make_mesh((1,), ("batch",), axis_types=(AxisType.Explicit,),
                              devices=jax.devices()[:1])
    seen = []

    def probe(x):
        seen.append(jax.sharding.get_abstract_mesh().axis_names)
        return x

    x = jax.device_put(jnp.ones([2]), NamedSharding(inputs_mesh, P("data")))
    with jax.sharding.use_abstract_mesh(user_mesh.abstract_mesh):
        jax.jit(mesh_context.under_inputs_mesh(probe))(x)
    assert seen == [("batch",)]


def test_under_inputs_mesh_leaves_unsharded_tracing_alone():
    seen = []

    def probe(x):
        seen.append(jax.sharding.get_abstract_mesh().empty)
        return x

    jax.jit(mesh_context.under_inputs_mesh(probe))(jnp.ones([2]))
    assert seen == [True]
