"""Every value-recording case of the Haiku 0.0.17 fixtures: same trees in the same order,
same initial values from the same seed, same outputs and new state (rtol/atol 1e-5; RNG keys
exactly). ``nets/fixtures_nets_test.py`` covers the tree-only ResNet18 case."""

import chex
import numpy as np
import pytest

from hk_core_tests import fixture_cases

CASES = ["naming", "naming_control_flow", "rng_keys", "mlp", "mlp_dropout", "initializers",
         "dropout_mlp", "conv_bn_train", "conv_bn_eval", "embed_norm", "attention",
         "lstm_unroll", "layer_stack"]

# conv_bn calls hk.max_pool with int window/strides, which Haiku deprecates too.
pytestmark = pytest.mark.filterwarnings("ignore:Passing an int as window_shape:DeprecationWarning")


def test_every_recorded_value_case_is_covered():
    recorded = {name for name, case in fixture_cases.manifest()["cases"].items()
                if case["values_stored"]}
    assert recorded == set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_params_and_state_trees_match_haiku_in_order(name):
    case, _, params, state, _, _ = fixture_cases.run_case(name)
    assert fixture_cases.tree_spec(params) == case["params"]
    assert fixture_cases.ordered_keys(params) == [(m, list(b)) for m, b in case["params"].items()]
    assert fixture_cases.tree_spec(state) == case["state"]
    assert fixture_cases.ordered_keys(state) == [(m, list(b)) for m, b in case["state"].items()]


@pytest.mark.parametrize("name", CASES)
def test_initial_values_match_haiku_from_same_seed(name):
    _, arrays, params, state, _, _ = fixture_cases.run_case(name)
    chex.assert_trees_all_close(params, fixture_cases.stored(arrays, "params"), rtol=1e-5,
                                atol=1e-5)
    chex.assert_trees_all_close(state, fixture_cases.stored(arrays, "state"), rtol=1e-5,
                                atol=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_outputs_and_new_state_match_haiku(name):
    case, arrays, _, _, out, new_state = fixture_cases.run_case(name)
    assert list(np.shape(out)) == case["output"][0]
    if name == "rng_keys":
        np.testing.assert_array_equal(np.asarray(out), arrays["output"])
    else:
        chex.assert_trees_all_close(np.asarray(out), arrays["output"], rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_close(new_state, fixture_cases.stored(arrays, "new_state"),
                                rtol=1e-5, atol=1e-5)
