"""Tests of hk_core/_src/checkpoint/manifest.py: paths, host shards, CRC32s, the JSON form."""

import dataclasses
import json
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from hk_core._src.checkpoint import manifest


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class _State:
    step: jax.Array
    params: dict


def _mesh(n: int) -> jax.sharding.Mesh:
    return jax.make_mesh((n,), ("d",), devices=jax.devices()[:n])


def test_flatten_joins_dict_attribute_and_index_keys_with_slashes():
    tree = _State(step=jnp.zeros(()), params={"mlp/~/linear_0": {"w": jnp.ones(2)},
                                             "opt": (jnp.ones(1), jnp.ones(1))})
    paths = [path for path, _ in manifest.flatten(tree, "t")]
    assert paths == ["step", "params/mlp/~/linear_0/w", "params/opt/0", "params/opt/1"]


def test_flatten_dataclass_and_nested_dict_give_the_same_paths():
    as_dataclass = _State(step=jnp.zeros(()), params={"m": {"w": jnp.ones(2)}})
    as_dict = {"params": {"m": {"w": jnp.ones(2)}}, "step": jnp.zeros(())}
    assert (sorted(p for p, _ in manifest.flatten(as_dataclass, "t"))
            == sorted(p for p, _ in manifest.flatten(as_dict, "t")))


def test_flatten_with_colliding_paths_raises_naming_the_path():
    tree = {"a/b": jnp.ones(1), "a": {"b": jnp.ones(1)}}
    with pytest.raises(ValueError, match=r"save\(step=1\): two leaves have the path 'a/b'"):
        manifest.flatten(tree, "save(step=1)")


def test_flatten_with_typed_prng_key_raises_type_error_with_fix():
    with pytest.raises(TypeError, match=r"t: 'rng' is a typed PRNG key .*key_data"):
        manifest.flatten({"rng": jax.random.key(0)}, "t")


def test_flatten_with_string_leaf_raises_type_error_naming_path():
    with pytest.raises(TypeError, match=r"t: 'name' is a str; checkpoint leaves must be arrays"):
        manifest.flatten({"name": "abc"}, "t")


@pytest.mark.parametrize("leaf, shape, dtype", [
    (jnp.ones((2, 3), jnp.bfloat16), (2, 3), "bfloat16"),
    (np.zeros(4, np.int8), (4,), "int8"),
    (3, (), "int64"),
    (jax.ShapeDtypeStruct((5,), jnp.float32), (5,), "float32"),
])
def test_shape_and_dtype_gives_shape_tuple_and_dtype_name(leaf, shape, dtype):
    assert manifest.shape_and_dtype(leaf) == (shape, dtype)


def test_crc32_is_zlib_crc32_of_c_order_bytes():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert manifest.crc32(x[:, 1:3]) == zlib.crc32(np.ascontiguousarray(x[:, 1:3]).tobytes())


def test_host_shards_of_array_sharded_on_8_devices_gives_8_row_blocks():
    x = jax.device_put(jnp.arange(32.0).reshape(16, 2), NamedSharding(_mesh(8), P("d")))
    pieces = manifest.host_shards(x)
    assert sorted(index for index, _ in pieces) == [((2 * i, 2 * i + 2), (0, 2)) for i in range(8)]
    for index, host in pieces:
        np.testing.assert_array_equal(host, np.arange(32.0).reshape(16, 2)[index[0][0]:index[0][1]])


def test_host_shards_of_replicated_array_gives_one_full_piece():
    x = jax.device_put(jnp.ones((4, 2)), NamedSharding(_mesh(8), P()))
    assert [index for index, _ in manifest.host_shards(x)] == [((0, 4), (0, 2))]


def test_pending_manifest_to_json_records_shapes_dtypes_and_crcs():
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    pending = manifest.PendingManifest.capture([("m/w", x)])
    entries, process_index, process_count = manifest.decode(pending.to_json())
    assert (process_index, process_count) == (0, 1)
    assert entries == [manifest.LeafEntry("m/w", (2, 3), "int32",
                                          [(((0, 2), (0, 3)), zlib.crc32(x.tobytes()))])]


def test_decode_with_changed_field_raises_naming_location():
    text = manifest.encode([manifest.LeafEntry("w", (2,), "float32", [(((0, 2),), 7)])], 0, 1)
    outer = json.loads(text)
    outer["manifest"]["leaves"][0]["shape"] = [3]  # a flip that still parses
    with pytest.raises(ValueError, match=r"not a valid .* does not match its own checksum"):
        manifest.decode(json.dumps(outer))


def test_decode_with_truncated_text_raises_value_error():
    text = manifest.encode([manifest.LeafEntry("w", (2,), "float32", [])], 0, 1)
    with pytest.raises(ValueError, match=r"not a valid hk_core checkpoint manifest"):
        manifest.decode(text[: len(text) // 2])
