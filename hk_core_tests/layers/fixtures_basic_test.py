"""Haiku 0.0.17 fixtures for conv, pooling, flatten and embed (with BatchNorm and LayerNorm):
same trees in the same order, same initial values from the same seed, same outputs."""

import chex
import numpy as np
import pytest

from hk_core_tests import fixture_cases

CASES = ["conv_bn_train", "conv_bn_eval", "embed_norm"]

# The recorded programs call hk.max_pool with int window/strides, which Haiku deprecates too.
pytestmark = pytest.mark.filterwarnings("ignore:Passing an int as window_shape:DeprecationWarning")


@pytest.mark.parametrize("name", CASES)
def test_fixture_params_and_state_trees_match_haiku_in_order(name):
    case, _, params, state, _, _ = fixture_cases.run_case(name)
    assert fixture_cases.tree_spec(params) == case["params"]
    assert fixture_cases.ordered_keys(params) == [(m, list(b)) for m, b in case["params"].items()]
    assert fixture_cases.tree_spec(state) == case["state"]
    assert fixture_cases.ordered_keys(state) == [(m, list(b)) for m, b in case["state"].items()]


@pytest.mark.parametrize("name", CASES)
def test_fixture_initial_values_match_haiku_from_same_seed(name):
    _, arrays, params, state, _, _ = fixture_cases.run_case(name)
    chex.assert_trees_all_close(params, fixture_cases.stored(arrays, "params"), rtol=1e-5,
                                atol=1e-5)
    chex.assert_trees_all_close(state, fixture_cases.stored(arrays, "state"), rtol=1e-5,
                                atol=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_fixture_outputs_and_new_state_match_haiku(name):
    case, arrays, _, _, out, new_state = fixture_cases.run_case(name)
    assert list(np.shape(out)) == case["output"][0]
    chex.assert_trees_all_close(np.asarray(out), arrays["output"], rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_close(new_state, fixture_cases.stored(arrays, "new_state"),
                                rtol=1e-5, atol=1e-5)
