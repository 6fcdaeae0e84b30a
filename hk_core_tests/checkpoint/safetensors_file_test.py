"""Tests of hk_core/_src/checkpoint/safetensors_file.py through save_params / load_params."""

import json
import os
import pathlib
import pickle
import struct
import zlib
from unittest import mock

import chex
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.numpy

import hk_core as hk
from hk_core import checkpoint
from hk_core_tests.checkpoint import _trees

_W = _trees.W
_params = _trees.params


def _header(path: pathlib.Path) -> tuple[dict, int]:
    """The file's JSON header and where its data section starts, read per the format spec."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + length]), 8 + length


@pytest.fixture
def saved(tmp_path) -> pathlib.Path:
    path = tmp_path / "params.safetensors"
    checkpoint.save_params(path, _params())
    return path


def test_load_returns_saved_values_dtypes_and_module_order(saved):
    loaded = checkpoint.load_params(saved)
    chex.assert_trees_all_equal(loaded, _params())
    assert jax.tree.map(jnp.shape, loaded) == jax.tree.map(jnp.shape, _params())
    assert list(loaded) == ["mlp/~/linear_0", "mlp/~/linear_1", "~"]
    assert loaded["mlp/~/linear_1"]["w"].dtype == jnp.bfloat16


def test_file_loads_with_safetensors_numpy_load_file(tmp_path):
    path = tmp_path / "f32.safetensors"
    params = {"mlp/~/linear_0": {"w": _W, "b": np.arange(3, dtype=np.int32)}}
    checkpoint.save_params(path, params)
    loaded = safetensors.numpy.load_file(path)
    assert sorted(loaded) == ["mlp/~/linear_0/b", "mlp/~/linear_0/w"]
    np.testing.assert_array_equal(loaded["mlp/~/linear_0/w"], _W)
    np.testing.assert_array_equal(loaded["mlp/~/linear_0/b"], [0, 1, 2])


def test_bfloat16_is_stored_as_safetensors_bf16(saved):
    header, _ = _header(saved)
    assert header["mlp/~/linear_1/w"]["dtype"] == "BF16"
    with safetensors.safe_open(saved, framework="numpy") as f:
        w = f.get_tensor("mlp/~/linear_1/w")
    assert w.dtype == ml_dtypes.bfloat16 and w.view(np.uint16)[0, 0] == 0x3F80  # bf16 1.0


def test_float8_round_trips_through_unsigned_storage(tmp_path):
    path = tmp_path / "f8.safetensors"
    value = np.array([0.5, -2.0, 448.0], ml_dtypes.float8_e4m3fn)
    checkpoint.save_params(path, {"m": {"w": value}})
    assert _header(path)[0]["m/w"]["dtype"] == "U8"
    loaded = checkpoint.load_params(path)["m"]["w"]
    assert loaded.dtype == jnp.float8_e4m3fn
    np.testing.assert_array_equal(np.asarray(loaded, np.float32), [0.5, -2.0, 448.0])


def test_metadata_records_version_structure_and_crc32_of_each_tensor(saved):
    header, _ = _header(saved)
    metadata = header["__metadata__"]
    assert metadata["hk_core_version"] == "0.1.0"
    assert json.loads(metadata["hk_core_crc32"])["mlp/~/linear_0/w"] == zlib.crc32(_W.tobytes())
    assert json.loads(metadata["hk_core_tree"])["dict"]["~"] == {"dict": {"count": "~/count"}}


def test_nested_state_round_trips_with_its_containers(tmp_path):
    path = tmp_path / "state.safetensors"
    state = {"ema": {"hidden": {"mu": jnp.zeros(2), "count": jnp.asarray(1)},
                     "pair": (jnp.ones(1), [jnp.full(3, 2.0)]), "none": None}}
    checkpoint.save_params(path, state)
    loaded = checkpoint.load_params(path)
    assert isinstance(loaded["ema"]["pair"], tuple) and isinstance(loaded["ema"]["pair"][1], list)
    assert loaded["ema"]["none"] is None
    chex.assert_trees_all_equal(loaded, state)
    assert sorted(safetensors.numpy.load_file(path)) == [
        "ema/hidden/count", "ema/hidden/mu", "ema/pair/0", "ema/pair/1/0"]


def test_file_from_safetensors_save_file_loads_into_a_model(tmp_path):
    f = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP([4, 3])(x)))
    x = jnp.linspace(-1.0, 1.0, 10).reshape(2, 5)
    params = f.init(jax.random.key(0), x)
    foreign = {f"{m}/{n}": np.asarray(v) for m, b in params.items() for n, v in b.items()}
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file(foreign, path)
    loaded = checkpoint.load_params(path, target=params)
    w0, b0 = _np(params["mlp/~/linear_0"])
    w1, b1 = _np(params["mlp/~/linear_1"])
    expected = np.maximum(np.asarray(x) @ w0 + b0, 0) @ w1 + b1  # the MLP, in numpy
    chex.assert_trees_all_close(f.apply(loaded, x), expected, rtol=1e-5, atol=1e-6)


def _np(bundle):
    return np.asarray(bundle["w"]), np.asarray(bundle["b"])


def test_foreign_file_without_target_splits_keys_at_the_last_slash(tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"a/~/b/w": np.ones(2, np.float32)}, path)
    assert jax.tree.map(jnp.shape, checkpoint.load_params(path)) == {"a/~/b": {"w": (2,)}}


def test_unknown_suffix_writes_safetensors(tmp_path):
    path = tmp_path / "params.bin"
    checkpoint.save_params(path, {"m": {"w": _W}})
    np.testing.assert_array_equal(safetensors.numpy.load_file(path)["m/w"], _W)


def test_save_leaves_no_temporary_file(saved):
    assert os.listdir(saved.parent) == ["params.safetensors"]


@pytest.mark.parametrize("position", [0, 1000, -1])
def test_flipped_tensor_byte_raises_corruption_error_naming_the_tensor(saved, position):
    header, start = _header(saved)
    begin, end = header["mlp/~/linear_0/w"]["data_offsets"]
    data = bytearray(saved.read_bytes())
    data[start + (begin + position if position >= 0 else end + position)] ^= 0x01
    saved.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointCorruptionError,
                       match=r"params\.safetensors, array 'mlp/~/linear_0/w': its CRC32 differs"):
        checkpoint.load_params(saved)


def test_truncated_file_raises_corruption_error_naming_the_first_cut_tensor(saved):
    header, start = _header(saved)
    _, end = header["mlp/~/linear_0/w"]["data_offsets"]
    os.truncate(saved, start + end - 1)
    with pytest.raises(checkpoint.CheckpointCorruptionError,
                       match=r"array 'mlp/~/linear_0/w': the file is truncated"):
        checkpoint.load_params(saved)


@pytest.mark.parametrize("keep", [0, 5, 40])
def test_file_cut_inside_its_header_raises_corruption_error(saved, keep):
    os.truncate(saved, keep)
    with pytest.raises(checkpoint.CheckpointCorruptionError,
                       match=r"params\.safetensors: cannot be read as a safetensors file"):
        checkpoint.load_params(saved)


def test_target_of_other_shape_inside_nested_state_names_the_path(tmp_path):
    path = tmp_path / "state.safetensors"
    checkpoint.save_params(path, {"ema": {"pair": (jnp.ones(1), [jnp.ones((3, 2))])}})
    target = {"ema": {"pair": (jnp.ones(1), [jax.ShapeDtypeStruct((2, 3), jnp.float32)])}}
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"'ema/pair/1/0': shape: target expects \(2, 3\), checkpoint has "
                             r"\(3, 2\)"):
        checkpoint.load_params(path, target)


def test_load_with_numpy_target_returns_numpy_in_target_order(saved):
    target = jax.tree.map(np.asarray, _params())
    loaded = checkpoint.load_params(saved, target)
    assert isinstance(loaded["~"]["count"], np.ndarray)
    chex.assert_trees_all_equal(loaded, _params())


def test_load_never_unpickles_or_evaluates(saved):
    refuse = mock.Mock(side_effect=AssertionError("code was run while loading"))
    with mock.patch.object(pickle, "loads", refuse), mock.patch.object(pickle, "load", refuse), \
            mock.patch("builtins.eval", refuse), mock.patch("builtins.exec", refuse):
        loaded = checkpoint.load_params(saved)
    chex.assert_trees_all_equal(loaded, _params())
    refuse.assert_not_called()


def test_pickle_payload_in_metadata_is_never_run(tmp_path):
    marker = tmp_path / "pwned"

    class _RunsCode:  # what an attacker's pickle does: call a function on load
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.safetensors"
    metadata = {"format": "hk_core.safetensors/1", "hk_core_tree": pickle.dumps(
        _RunsCode()).decode("latin-1"), "hk_core_crc32": "{}", "hk_core_dtypes": "{}"}
    safetensors.numpy.save_file({"m/w": np.zeros(2, np.float32)}, path, metadata=metadata)
    with pytest.raises(checkpoint.CheckpointCorruptionError, match=r"'hk_core_tree' metadata"):
        checkpoint.load_params(path)
    assert not marker.exists()
