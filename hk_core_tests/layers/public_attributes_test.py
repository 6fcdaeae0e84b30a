"""Every layer's public attributes hold the values and types Haiku 0.0.17 gives them.

The cases and the recorder live in ``fixtures/haiku_0.0.17_blackbox/record_layer_attributes.py``;
``layer_attributes.json`` is what that recorder saw under Haiku 0.0.17 (black box). Here the
same cases are built under hk_core and their snapshots must be equal: attribute names, value
types and reprs (tuples stay tuples, ``-1`` becomes ``(-1,)``), submodule paths, initializer
classes; plain functions compare by presence only.
"""

import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

_FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures" / "haiku_0.0.17_blackbox"


def _load_recorder():
    spec = importlib.util.spec_from_file_location(
        "record_layer_attributes", _FIXTURES / "record_layer_attributes.py")
    recorder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recorder)
    return recorder


_RECORDER = _load_recorder()
_EXPECTED = json.loads((_FIXTURES / "layer_attributes.json").read_text())["cases"]


def test_fixture_covers_every_case():
    assert sorted(_EXPECTED) == sorted(_RECORDER.CASES)


@pytest.mark.parametrize("case_id", sorted(_RECORDER.CASES))
def test_public_attributes_match_haiku(case_id):
    actual = _RECORDER.record_case(hk, case_id, abstract=True)  # traced: same attributes
    expected = _EXPECTED[case_id]
    assert actual["constructed"] == expected["constructed"]
    assert actual.get("called", actual["constructed"]) == expected.get(
        "called", expected["constructed"])


class _AlphaFoldStyleLayerNorm(hk.LayerNorm):
    """Reads param_axis the way AlphaFold 2's model code (as ColabFold ships it) does."""

    def __call__(self, x):
        param_shape = [x.shape[self.param_axis[0]]]
        scale = hk.get_parameter("scale", param_shape, x.dtype, init=jnp.ones)
        mean = jnp.mean(x, axis=tuple(self.axis), keepdims=True)
        return (x - mean) * scale, tuple(self.param_axis)


def test_layer_norm_subclass_reads_axes_as_tuples():
    f = hk.transform(lambda x: _AlphaFoldStyleLayerNorm(-1, True, True, name="ln")(x))
    x = jnp.arange(6.0).reshape(2, 3)
    params = f.init(jax.random.PRNGKey(0), x)
    (out, param_axis) = f.apply(params, None, x)
    assert param_axis == (-1,)
    assert jax.tree.map(jnp.shape, params) == {"ln": {"scale": (3,)}}
    np.testing.assert_allclose(out, [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
