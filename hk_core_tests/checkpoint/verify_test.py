"""Tests of hk_core/_src/checkpoint/verify.py: target checks and checksum verification."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from hk_core._src.checkpoint import errors
from hk_core._src.checkpoint import manifest
from hk_core._src.checkpoint import verify

_VALUE = np.arange(64, dtype=np.float32).reshape(16, 4)


def _mesh(n: int) -> jax.sharding.Mesh:
    return jax.make_mesh((n,), ("d",), devices=jax.devices()[:n])


def _entries_saved_from(value) -> dict[str, manifest.LeafEntry]:
    text = manifest.PendingManifest.capture([("params/w", value)]).to_json()
    entries, _, _ = manifest.decode(text)
    return {e.path: e for e in entries}


def _target(shape=(16, 4), dtype=jnp.float32, path="params/w"):
    return [(path, jax.ShapeDtypeStruct(shape, dtype))]


def test_check_target_with_same_paths_shapes_dtypes_passes():
    verify.check_target("loc", _entries_saved_from(_VALUE), _target())


def test_check_target_with_other_shape_names_path_expected_and_actual():
    with pytest.raises(errors.CheckpointMismatchError,
                       match=r"loc: 'params/w': shape: target expects \(8, 4\), checkpoint has "
                             r"\(16, 4\)"):
        verify.check_target("loc", _entries_saved_from(_VALUE), _target(shape=(8, 4)))


def test_check_target_with_other_dtype_names_path_expected_and_actual():
    with pytest.raises(errors.CheckpointMismatchError,
                       match=r"'params/w': dtype: target expects bfloat16, checkpoint has float32"):
        verify.check_target("loc", _entries_saved_from(_VALUE), _target(dtype=jnp.bfloat16))


def test_check_target_with_path_absent_from_checkpoint_lists_what_is_there():
    with pytest.raises(errors.CheckpointMismatchError,
                       match=r"'params/v': missing from the checkpoint.*not in target: 'params/w'"):
        verify.check_target("loc", _entries_saved_from(_VALUE), _target(path="params/v"))


def test_check_target_without_a_saved_path_names_the_extra_path():
    entries = _entries_saved_from(_VALUE)
    entries["opt/mu"] = manifest.LeafEntry("opt/mu", (2,), "float32", [])
    with pytest.raises(errors.CheckpointMismatchError,
                       match=r"loc: 'opt/mu': not in target: target expects nothing, checkpoint "
                             r"has an array"):
        verify.check_target("loc", entries, _target())


@pytest.mark.parametrize("saved_devices, restored_spec, restored_devices", [
    (8, P("d"), 2),      # 8 row blocks read from 2 bigger ones
    (8, P(), 2),         # ... from replicated copies
    (2, P("d"), 8),      # 2 row blocks read from the gathered array
    (1, P(), 1),
])
def test_verify_leaf_checks_every_saved_shard_in_another_sharding(
        saved_devices, restored_spec, restored_devices):
    saved = jax.device_put(_VALUE, NamedSharding(_mesh(saved_devices), P("d")))
    entry = _entries_saved_from(saved)["params/w"]
    restored = jax.device_put(_VALUE, NamedSharding(_mesh(restored_devices), restored_spec))
    assert verify.verify_leaf("loc", entry, restored) == saved_devices


def test_verify_leaf_with_one_changed_element_names_path_and_shard():
    entry = _entries_saved_from(jax.device_put(_VALUE, NamedSharding(_mesh(8), P("d"))))["params/w"]
    changed = _VALUE.copy()
    changed[5, 1] += 1.0  # rows 4:6 are the third of eight shards
    with pytest.raises(errors.CheckpointCorruptionError,
                       match=r"loc, array 'params/w': shard \[4:6, 0:4\] reads back with CRC32"):
        verify.verify_leaf("loc", entry, changed)


def test_verify_leaf_with_other_dtype_raises_corruption_error():
    entry = _entries_saved_from(_VALUE)["params/w"]
    with pytest.raises(errors.CheckpointCorruptionError,
                       match=r"'params/w': read back as int32\[16, 4\], saved as float32\[16, 4\]"):
        verify.verify_leaf("loc", entry, _VALUE.astype(np.int32))


def test_merge_entries_with_a_process_manifest_missing_raises():
    entries = list(_entries_saved_from(_VALUE).values())
    with pytest.raises(errors.CheckpointCorruptionError,
                       match=r"loc: expected manifests from processes 0..1, found \[0\]"):
        verify.merge_entries("loc", [(entries, 0, 2)])


def test_merge_entries_joins_shards_of_two_processes():
    a = manifest.LeafEntry("w", (4,), "float32", [(((0, 2),), 1)])
    b = manifest.LeafEntry("w", (4,), "float32", [(((2, 4),), 2)])
    merged = verify.merge_entries("loc", [([a], 0, 2), ([b], 1, 2)])
    assert merged["w"].shards == [(((0, 2),), 1), (((2, 4),), 2)]
