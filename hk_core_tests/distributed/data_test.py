"""``shard_batch``: leading axis split over a mesh axis, scalars replicated, clear errors."""

import chex
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from hk_core import distributed

X = np.arange(16 * 3, dtype=np.float32).reshape(16, 3)


@pytest.fixture(scope="module")
def mesh():
    return distributed.make_mesh({"data": 4, "model": 2})


def test_batch_is_split_along_leading_axis_over_data(mesh):
    x = distributed.shard_batch({"x": X}, mesh)["x"]
    assert x.sharding.spec == P("data")
    assert {s.data.shape for s in x.addressable_shards} == {(4, 3)}  # 16 rows / data=4
    chex.assert_trees_all_equal(np.asarray(x), X)


def test_each_data_shard_holds_its_rows(mesh):
    x = distributed.shard_batch(X, mesh)
    for shard in x.addressable_shards:
        np.testing.assert_array_equal(np.asarray(shard.data), X[shard.index])


def test_batch_over_several_axes_uses_their_product(mesh):
    x = distributed.shard_batch(X, mesh, axis=("data", "model"))
    assert {s.data.shape for s in x.addressable_shards} == {(2, 3)}  # 16 rows / 8


def test_scalars_are_replicated(mesh):
    lr = distributed.shard_batch({"x": X, "lr": np.float32(0.1)}, mesh)["lr"]
    assert lr.sharding.spec == P() and float(lr) == pytest.approx(0.1)


def test_axis_none_replicates(mesh):
    assert distributed.shard_batch(X, mesh, axis=None).sharding.spec == P()


def test_batch_not_divisible_names_leaf_shape_and_axis(mesh):
    message = (r"batch\['y'\] has shape \(6, 3\); its leading dimension 6 is not divisible by "
               r"4, the size of mesh axis 'data' \(mesh axes \{'data': 4, 'model': 2\}\)")
    with pytest.raises(ValueError, match=message):
        distributed.shard_batch({"x": X, "y": X[:6]}, mesh)


def test_unknown_axis_names_mesh_axes(mesh):
    with pytest.raises(ValueError, match=r"axis 'batch' is not in the mesh; mesh axes are "
                                         r"\{'data': 4, 'model': 2\}"):
        distributed.shard_batch(X, mesh, axis="batch")


def test_sharded_batch_feeds_a_jitted_function_unchanged(mesh):
    batch = distributed.shard_batch({"x": X}, mesh)
    total = jax.jit(lambda b: b["x"].sum(0))(batch)
    chex.assert_trees_all_close(total, X.sum(0))
