"""Tests of hk_core/_src/export/export.py: exported apply matches the Python model anywhere."""

import os
import pathlib
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

import hk_core as hk
from hk_core import export as hk_export

_REPO = pathlib.Path(__file__).resolve().parents[2]


def _forward(x):
    return hk.nets.MLP([16, 3])(x)


_MODEL = hk.without_apply_rng(hk.transform(_forward))
_X = jax.random.normal(jax.random.key(1), (5, 8))
_PARAMS = _MODEL.init(jax.random.key(0), _X)


def _reference(params, x):
    """The MLP written out in numpy: relu between the two linear layers."""
    h = np.maximum(np.asarray(x) @ params["mlp/~/linear_0"]["w"] + params["mlp/~/linear_0"]["b"], 0)
    return h @ params["mlp/~/linear_1"]["w"] + params["mlp/~/linear_1"]["b"]


class LoadedCallTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("bound", True), ("unbound", False))
    def test_loaded_export_matches_python_model(self, bind_params):
        exported = hk_export.export(_MODEL.apply, _PARAMS, _X, bind_params=bind_params)
        loaded = self.variant(hk_export.load(exported.serialize()))
        out = loaded(_X) if bind_params else loaded(_PARAMS, _X)
        chex.assert_trees_all_close(out, _MODEL.apply(_PARAMS, _X), rtol=1e-6, atol=1e-6)
        chex.assert_trees_all_close(out, _reference(_PARAMS, _X), rtol=1e-5, atol=1e-5)


def test_unbound_export_takes_new_params_at_call_time():
    loaded = hk_export.load(hk_export.export(_MODEL.apply, _PARAMS, _X, bind_params=False)
                            .serialize())
    other = jax.tree.map(lambda p: p * 2.0, _PARAMS)
    chex.assert_trees_all_close(loaded(other, _X), _reference(other, _X), rtol=1e-5, atol=1e-5)


def test_bound_export_keeps_the_exported_params_and_bind_flag():
    exported = hk_export.export(_MODEL.apply, _PARAMS, _X)
    assert exported.bind_params and len(exported.jax_exported.in_avals) == 1


def test_exported_object_is_callable_like_the_loaded_one():
    exported = hk_export.export(_MODEL.apply, _PARAMS, _X)
    chex.assert_trees_all_close(exported(_X), _reference(_PARAMS, _X), rtol=1e-5, atol=1e-5)


def test_export_with_shape_dtype_struct_example_args():
    spec = jax.ShapeDtypeStruct((5, 8), jnp.float32)
    loaded = hk_export.load(hk_export.export(_MODEL.apply, _PARAMS, spec).serialize())
    chex.assert_shape(loaded(_X), (5, 3))


def test_save_writes_the_serialized_bytes_and_load_reads_the_path(tmp_path):
    exported = hk_export.export(_MODEL.apply, _PARAMS, _X)
    exported.save(tmp_path / "model.jaxexport")
    assert (tmp_path / "model.jaxexport").read_bytes() == exported.serialize()
    assert os.listdir(tmp_path) == ["model.jaxexport"]  # no temporary file left behind
    chex.assert_trees_all_close(hk_export.load(tmp_path / "model.jaxexport")(_X),
                                _reference(_PARAMS, _X), rtol=1e-5, atol=1e-5)


def test_load_of_bytes_that_are_not_an_export_raises_value_error():
    with pytest.raises(ValueError, match=r"the given bytes is not a jax.export serialization"):
        hk_export.load(b"definitely not flatbuffers")


def test_loaded_call_with_wrong_input_shape_raises():
    loaded = hk_export.load(hk_export.export(_MODEL.apply, _PARAMS, _X).serialize())
    with pytest.raises(ValueError, match=r"shape"):
        loaded(jnp.zeros((5, 9)))


# The fresh process reads only the exported file and the inputs; it asserts that neither
# this test module (the model's code) nor any hk_core layer was ever imported.
_FRESH = textwrap.dedent("""
    import sys
    import numpy as np
    import jax
    blob, inputs, out_path = sys.argv[1:4]
    with open(blob, "rb") as f:
        exported = jax.export.deserialize(bytearray(f.read()))
    arrays = np.load(inputs, allow_pickle=False)
    if "w0" in arrays.files:  # unbound: params are passed in
        params = {"mlp/~/linear_0": {"b": arrays["b0"], "w": arrays["w0"]},
                  "mlp/~/linear_1": {"b": arrays["b1"], "w": arrays["w1"]}}
        out = exported.call(params, arrays["x"])
    else:
        out = exported.call(arrays["x"])
    np.save(out_path, np.asarray(out), allow_pickle=False)
    loaded = [m for m in sys.modules if m.startswith(("hk_core", "export_test"))]
    assert not loaded, loaded
""")


@pytest.mark.parametrize("bind_params", [True, False], ids=["bound", "unbound"])
def test_export_runs_in_fresh_process_without_the_model_code(tmp_path, bind_params):
    blob = tmp_path / "model.jaxexport"
    hk_export.export(_MODEL.apply, _PARAMS, _X, bind_params=bind_params).save(blob)
    inputs = {"x": np.asarray(_X)}
    if not bind_params:
        for i in (0, 1):
            inputs[f"w{i}"] = np.asarray(_PARAMS[f"mlp/~/linear_{i}"]["w"])
            inputs[f"b{i}"] = np.asarray(_PARAMS[f"mlp/~/linear_{i}"]["b"])
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", _FRESH, str(blob), str(tmp_path / "inputs.npz"),
         str(tmp_path / "out.npy")],
        cwd=tmp_path, env={**env, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True,
        timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), _MODEL.apply(_PARAMS, _X),
                               rtol=1e-6, atol=1e-6)


def test_hk_core_export_load_in_fresh_process_never_imports_the_model_module(tmp_path):
    blob = tmp_path / "model.jaxexport"
    hk_export.export(_MODEL.apply, _PARAMS, _X).save(blob)
    np.save(tmp_path / "x.npy", np.asarray(_X))
    code = textwrap.dedent(f"""
        import sys, numpy as np
        import hk_core.export
        f = hk_core.export.load({str(blob)!r})
        np.save({str(tmp_path / 'out.npy')!r}, np.asarray(f(np.load({str(tmp_path / 'x.npy')!r}))))
        assert not [m for m in sys.modules if "export_test" in m or m.startswith("hk_core_tests")]
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(_REPO), "JAX_PLATFORMS": "cpu"},
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), _MODEL.apply(_PARAMS, _X),
                               rtol=1e-6, atol=1e-6)


_WITH_RNG = hk.transform(_forward)  # apply(params, rng, x): rng=None is exported as None


def test_loaded_export_takes_exactly_the_args_given_after_params():
    exported = hk_export.export(_WITH_RNG.apply, _PARAMS, None, _X)
    loaded = hk_export.load(exported.serialize())
    chex.assert_trees_all_close(loaded(None, _X), _reference(_PARAMS, _X), rtol=1e-5, atol=1e-5)


def test_loaded_call_missing_an_exported_none_names_both_signatures():
    loaded = hk_export.load(hk_export.export(_WITH_RNG.apply, _PARAMS, None, _X).serialize())
    with pytest.raises(TypeError, match=r"takes \(None, f32\[5,8\]\); got \(f32\[5,8\]\)"):
        loaded(_X)


def test_exported_call_with_extra_argument_names_both_signatures():
    exported = hk_export.export(_MODEL.apply, _PARAMS, _X)
    with pytest.raises(TypeError, match=r"takes \(f32\[5,8\]\); got \(f32\[5,8\], f32\[5,8\]\)"):
        exported(_X, _X)


def test_loaded_repr_shows_the_call_signature_and_output():
    loaded = hk_export.load(hk_export.export(_MODEL.apply, _PARAMS, _X).serialize())
    assert repr(loaded) == "Loaded((f32[5,8]) -> f32[5,3])"
