"""Damaged checkpoint files give CheckpointCorruptionError, never silently wrong values."""

import os
import pathlib

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from hk_core import checkpoint

# When a read fails, Orbax drops its other pending read coroutines without awaiting them;
# Python reports those at garbage collection. They are Orbax's, and harmless here.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

# 256 KiB of random floats: the largest file of the step is almost all array bytes.
_BIG = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)


def _tree() -> dict:
    return {"params": {"big": {"w": jnp.asarray(_BIG)}, "small": {"b": jnp.arange(5.0)}},
            "step": jnp.asarray(3)}


def _saved_step(directory: pathlib.Path) -> pathlib.Path:
    with checkpoint.CheckpointManager(directory, async_save=False) as manager:
        manager.save(1, _tree())
    return directory / "1"


def _files(step_dir: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in step_dir.rglob("*") if p.is_file())


def _largest_file(step_dir: pathlib.Path) -> pathlib.Path:
    return max(_files(step_dir), key=lambda p: p.stat().st_size)


def _flip_byte(path: pathlib.Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _restore(directory: pathlib.Path):
    with checkpoint.CheckpointManager(directory) as manager:
        return manager.restore(1, target=_tree())


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_flipped_byte_in_largest_file_raises_naming_the_array(tmp_path, fraction):
    step_dir = _saved_step(tmp_path)
    largest = _largest_file(step_dir)
    _flip_byte(largest, int(largest.stat().st_size * fraction))
    with pytest.raises(checkpoint.CheckpointCorruptionError,
                       match=r"1, array 'params/big/w': shard \[0:256, 0:256\] reads back with "
                             r"CRC32 .* changed after saving"):
        _restore(tmp_path)


@pytest.mark.parametrize("where", ["first", "last"])
def test_flipped_header_or_index_byte_of_largest_file_raises_or_reads_exact_values(
        tmp_path, where):
    step_dir = _saved_step(tmp_path)
    largest = _largest_file(step_dir)
    _flip_byte(largest, 0 if where == "first" else largest.stat().st_size - 1)
    try:
        restored = _restore(tmp_path)
    except checkpoint.CheckpointCorruptionError:
        return
    chex.assert_trees_all_equal(restored, _tree())  # a byte nobody reads may change


def test_truncated_largest_file_raises_corruption_error(tmp_path):
    largest = _largest_file(_saved_step(tmp_path))
    os.truncate(largest, largest.stat().st_size // 2)
    with pytest.raises(checkpoint.CheckpointCorruptionError, match=r"1: cannot read the arrays"):
        _restore(tmp_path)


@pytest.mark.parametrize("index", range(16))
def test_any_file_truncated_to_half_raises_or_reads_exact_values(tmp_path, index):
    files = _files(_saved_step(tmp_path))
    if index >= len(files):
        index %= len(files)
    os.truncate(files[index], files[index].stat().st_size // 2)
    try:
        restored = _restore(tmp_path)
    except (checkpoint.CheckpointCorruptionError, FileNotFoundError):
        return  # FileNotFoundError: the step's own metadata is gone, so it is not listed
    chex.assert_trees_all_equal(restored, _tree())


def test_flipped_byte_in_manifest_raises_naming_the_manifest(tmp_path):
    manifest_file = _saved_step(tmp_path) / "manifest" / "manifest.process_0.json"
    _flip_byte(manifest_file, manifest_file.stat().st_size // 2)
    with pytest.raises(checkpoint.CheckpointCorruptionError,
                       match=r"1/manifest/manifest\.process_0\.json: not a valid hk_core "
                             r"checkpoint manifest"):
        _restore(tmp_path)


def test_missing_manifest_raises_corruption_error(tmp_path):
    os.remove(_saved_step(tmp_path) / "manifest" / "manifest.process_0.json")
    with pytest.raises(checkpoint.CheckpointCorruptionError, match=r"1: the step has no hk_core "
                                                                   r"manifest"):
        _restore(tmp_path)


def test_pickle_in_place_of_manifest_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    manifest_file = _saved_step(tmp_path / "ckpt") / "manifest" / "manifest.process_0.json"
    # A pickle that would create `marker` if anything unpickled it.
    payload = (b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    manifest_file.write_bytes(payload)
    with pytest.raises(checkpoint.CheckpointCorruptionError, match=r"not a valid hk_core"):
        _restore(tmp_path / "ckpt")
    assert not marker.exists()
