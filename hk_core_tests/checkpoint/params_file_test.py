"""Tests of hk_core/_src/checkpoint/params_file.py: the portable, checksummed .npz params file."""

import hashlib
import io
import json
import os
import pathlib
import zipfile
from unittest import mock

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from hk_core import checkpoint
from hk_core_tests.checkpoint import _trees
from hk_core._src.checkpoint import params_file

_W = _trees.W
_params = _trees.params


@pytest.fixture
def saved(tmp_path) -> pathlib.Path:
    path = tmp_path / "params.npz"
    checkpoint.save_params(path, _params())
    return path


def _replace_member(path: pathlib.Path, name: str, content: bytes) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members[name] = content
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)


def _flip_byte(path: pathlib.Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_load_returns_saved_values_dtypes_and_module_order(saved):
    loaded = checkpoint.load_params(saved)
    chex.assert_trees_all_equal(loaded, _params())
    assert list(loaded) == ["mlp/~/linear_0", "mlp/~/linear_1", "~"]
    assert loaded["mlp/~/linear_1"]["w"].dtype == jnp.bfloat16


def test_file_is_plain_npz_with_module_param_keys_readable_without_pickle(saved):
    with np.load(saved, allow_pickle=False) as npz:
        assert npz.files == ["mlp/~/linear_0/w", "mlp/~/linear_0/b", "mlp/~/linear_1/w", "~/count",
                             params_file.CHECKSUMS_KEY]
        np.testing.assert_array_equal(npz["mlp/~/linear_0/w"], _W)


def test_checksum_record_holds_sha256_of_each_array(saved):
    with np.load(saved, allow_pickle=False) as npz:
        record = json.loads(npz[params_file.CHECKSUMS_KEY].tobytes())
    entry = record["arrays"][0]
    assert (entry["key"], entry["dtype"], entry["shape"]) == ("mlp/~/linear_0/w", "float32",
                                                              [64, 32])
    assert entry["sha256"] == hashlib.sha256(_W.tobytes()).hexdigest()


def test_bfloat16_is_stored_as_uint16_bits(saved):
    with np.load(saved, allow_pickle=False) as npz:
        stored = npz["mlp/~/linear_1/w"]
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(stored, np.full((32, 2), 0x3F80, np.uint16))  # bf16 1.0


def test_save_leaves_no_temporary_file(saved):
    assert os.listdir(saved.parent) == ["params.npz"]


def test_failed_save_keeps_the_previous_file_and_leaves_no_temporary(saved):
    before = saved.read_bytes()
    with mock.patch.object(np.lib.format, "write_array", side_effect=OSError("disk full")):
        with pytest.raises(OSError, match="disk full"):
            checkpoint.save_params(saved, {"m": {"w": jnp.zeros(3)}})
    assert saved.read_bytes() == before and os.listdir(saved.parent) == ["params.npz"]


@pytest.mark.parametrize("fraction", [0.2, 0.4, 0.6, 0.8])
def test_flipped_byte_raises_corruption_error_naming_the_file(saved, fraction):
    _flip_byte(saved, int(saved.stat().st_size * fraction))
    with pytest.raises(checkpoint.CheckpointCorruptionError, match=rf"{saved}"):
        checkpoint.load_params(saved)


def test_flipped_array_byte_with_fixed_zip_crc_raises_naming_the_array(saved):
    # Rewrite the zip so its own CRC32s agree with the altered bytes: only our SHA-256 notices.
    with zipfile.ZipFile(saved) as zf:
        data = bytearray(zf.read("mlp/~/linear_0/w.npy"))
    data[-1] ^= 0x01
    _replace_member(saved, "mlp/~/linear_0/w.npy", bytes(data))
    with pytest.raises(checkpoint.CheckpointCorruptionError,
                       match=r"params\.npz, array 'mlp/~/linear_0/w': its SHA-256 differs"):
        checkpoint.load_params(saved)


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.99])
def test_truncated_file_raises_corruption_error(saved, keep):
    os.truncate(saved, int(saved.stat().st_size * keep))
    with pytest.raises(checkpoint.CheckpointCorruptionError, match=r"cannot be read as a params"):
        checkpoint.load_params(saved)


def test_npz_without_checksums_raises_corruption_error(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, **{"linear_w": np.zeros(2)})
    with pytest.raises(checkpoint.CheckpointCorruptionError,
                       match=r"plain\.npz: has no '__hk_core_checksums__' entry"):
        checkpoint.load_params(path)


def test_pickled_member_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    checkpoint.save_params(path, {"m": {"w": jnp.zeros(2)}})

    class _RunsCode:  # what an attacker's pickle does: call a function on load
        def __reduce__(self):
            return (open, (str(marker), "w"))

    buffer = io.BytesIO()
    np.save(buffer, np.array([_RunsCode()], dtype=object), allow_pickle=True)
    _replace_member(path, "m/w.npy", buffer.getvalue())
    with pytest.raises(checkpoint.CheckpointCorruptionError,
                       match=r"evil\.npz: .*a member holds pickled Python objects") as info:
        checkpoint.load_params(path)
    assert not marker.exists()
    assert "allow_pickle" not in str(info.value)  # never advise unpickling


def test_file_that_is_not_a_zip_is_named_not_a_params_file_without_pickle_advice(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("these are my notes, not params")
    with pytest.raises(checkpoint.CheckpointCorruptionError,
                       match=r"notes\.npz: cannot be read .*: it does not start as a zip") as info:
        checkpoint.load_params(path)
    assert "pickle" not in str(info.value)


def test_load_of_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no file at .*absent\.npz"):
        checkpoint.load_params(tmp_path / "absent.npz")


def test_load_with_target_places_arrays_with_target_shardings(saved):
    sharding = NamedSharding(jax.make_mesh((8,), ("d",)), P("d"))
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _params())
    target["mlp/~/linear_0"]["w"] = jax.ShapeDtypeStruct((64, 32), jnp.float32, sharding=sharding)
    loaded = checkpoint.load_params(saved, target=target)
    assert loaded["mlp/~/linear_0"]["w"].sharding == sharding
    chex.assert_trees_all_equal(loaded, _params())


def test_load_with_numpy_target_returns_numpy(saved):
    target = jax.tree.map(np.asarray, _params())
    loaded = checkpoint.load_params(saved, target=target)
    assert isinstance(loaded["~"]["count"], np.ndarray)


def test_load_with_target_of_other_shape_names_key_expected_and_actual(saved):
    target = _params()
    target["mlp/~/linear_0"]["w"] = jnp.zeros((64, 16))
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"'mlp/~/linear_0/w': shape: target expects \(64, 16\), checkpoint "
                             r"has \(64, 32\)"):
        checkpoint.load_params(saved, target=target)


def test_load_with_target_of_other_dtype_names_key_expected_and_actual(saved):
    target = _params()
    target["~"]["count"] = jnp.zeros((), jnp.float32)
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"'~/count': dtype: target expects float32, checkpoint has int32"):
        checkpoint.load_params(saved, target=target)


def test_load_with_target_lacking_a_key_names_it(saved):
    target = _params()
    del target["~"]
    with pytest.raises(checkpoint.CheckpointMismatchError, match=r"'~/count': not in target"):
        checkpoint.load_params(saved, target=target)


def test_load_with_target_having_an_extra_key_names_it(saved):
    target = {**_params(), "head": {"w": jnp.zeros(2)}}
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"'head/w': missing from the file"):
        checkpoint.load_params(saved, target=target)


def test_save_of_name_with_slash_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"'m': parameter name 'a/b' must be a non-empty str "
                                         r"without '/'"):
        checkpoint.save_params(tmp_path / "p.npz", {"m": {"a/b": jnp.zeros(1)}})


def test_save_of_three_level_tree_raises_type_error(tmp_path):
    with pytest.raises(TypeError, match=r"params\['m'\] must be a mapping of name -> array"):
        checkpoint.save_params(tmp_path / "p.npz", {"m": [jnp.zeros(1)]})
