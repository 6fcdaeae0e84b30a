"""Tests for hk_core/_src/mixed_precision/policy.py (``hk.mixed_precision.Policy``)."""

import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

Policy = hk.mixed_precision.Policy


@pytest.mark.parametrize("spec,expected", [
    ("params=float32,compute=bfloat16,output=float16", ("float32", "bfloat16", "float16")),
    ("p=f32,c=bf16,o=f16", ("float32", "bfloat16", "float16")),
    ("compute=half", ("float32", "float16", "float32")),
    (" p = full , c = bf16 ", ("float32", "bfloat16", "float32")),
    ("bfloat16", ("bfloat16", "bfloat16", "bfloat16")),
])
def test_from_string_parses_fields_and_defaults_to_float32(spec, expected):
    policy = Policy.from_string(spec)
    assert (policy.param_dtype.name, policy.compute_dtype.name,
            policy.output_dtype.name) == expected


@pytest.mark.parametrize("spec,match", [
    ("params=float32,gradient=bfloat16", r"Cannot parse 'gradient=bfloat16'"),
    ("params", r"Unknown floating-point dtype 'params'"),
    ("p=int32", r"Unknown floating-point dtype 'int32'"),
    ("c=floaty", r"Unknown floating-point dtype 'floaty'"),
])
def test_from_string_rejects_bad_specs_naming_the_part(spec, match):
    with pytest.raises(ValueError, match=match):
        Policy.from_string(spec)


def test_str_round_trips_through_from_string():
    policy = Policy(jnp.float32, jnp.bfloat16, jnp.float16)
    assert str(policy) == "params=float32,compute=bfloat16,output=float16"
    assert Policy.from_string(str(policy)) == policy


def test_constructor_canonicalizes_dtypes():
    policy = Policy("float32", jnp.bfloat16, np.float16)
    assert policy.param_dtype == np.dtype("float32")
    assert policy.compute_dtype == jnp.dtype(jnp.bfloat16)
    assert policy.output_dtype == np.dtype("float16")


def test_cast_to_compute_casts_only_floating_arrays():
    policy = Policy.from_string("c=bf16")
    tree = {"f": jnp.ones([2]), "np": np.ones([2], np.float32), "i": jnp.arange(2),
            "py": 1.5, "none": None}
    out = policy.cast_to_compute(tree)
    assert out["f"].dtype == jnp.bfloat16
    assert out["np"].dtype == jnp.bfloat16
    assert out["i"].dtype == jnp.int32
    assert out["py"] == 1.5 and out["none"] is None


@pytest.mark.parametrize("method,dtype", [("cast_to_param", jnp.float16),
                                          ("cast_to_compute", jnp.bfloat16),
                                          ("cast_to_output", jnp.float32)])
def test_each_cast_uses_its_dtype(method, dtype):
    policy = Policy(jnp.float16, jnp.bfloat16, jnp.float32)
    assert getattr(policy, method)(jnp.ones([1], jnp.float32)).dtype == dtype


def test_with_output_dtype_returns_changed_copy():
    policy = Policy.from_string("p=f32,c=bf16,o=f32")
    changed = policy.with_output_dtype(jnp.bfloat16)
    assert changed.output_dtype == jnp.dtype(jnp.bfloat16)
    assert policy.output_dtype == np.dtype("float32")


def test_policy_is_hashable_and_immutable():
    policy = Policy.from_string("bf16")
    assert hash(policy) == hash(Policy.from_string("bf16"))
    with pytest.raises(AttributeError, match=r"cannot assign to field 'param_dtype'"):
        policy.param_dtype = jnp.float32
