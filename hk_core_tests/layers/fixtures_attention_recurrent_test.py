"""The Haiku 0.0.17 fixtures for attention, recurrent unrolls and layer_stack."""

import functools

import chex
import numpy as np
import pytest

from hk_core_tests import fixture_cases

CASES = ["attention", "lstm_unroll", "layer_stack"]


@functools.cache
def _run(name):
    # One init + apply per case, shared by the three checks below.
    return fixture_cases.run_case(name)


@pytest.mark.parametrize("name", CASES)
def test_fixture_params_and_state_trees_match_haiku_in_order(name):
    case, _, params, state, _, _ = _run(name)
    assert fixture_cases.tree_spec(params) == case["params"]
    assert fixture_cases.ordered_keys(params) == [(m, list(b)) for m, b in case["params"].items()]
    assert fixture_cases.tree_spec(state) == case["state"]
    assert fixture_cases.ordered_keys(state) == [(m, list(b)) for m, b in case["state"].items()]


@pytest.mark.parametrize("name", CASES)
def test_fixture_initial_values_match_haiku_from_same_seed(name):
    _, arrays, params, state, _, _ = _run(name)
    chex.assert_trees_all_close(params, fixture_cases.stored(arrays, "params"), rtol=1e-5,
                                atol=1e-5)
    chex.assert_trees_all_close(state, fixture_cases.stored(arrays, "state"), rtol=1e-5,
                                atol=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_fixture_outputs_match_haiku(name):
    case, arrays, _, _, out, new_state = _run(name)
    assert list(np.shape(out)) == case["output"][0]
    chex.assert_trees_all_close(np.asarray(out), arrays["output"], rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_close(new_state, fixture_cases.stored(arrays, "new_state"),
                                rtol=1e-5, atol=1e-5)
