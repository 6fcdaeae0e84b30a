"""The nets' share of the Haiku 0.0.17 fixtures: ResNet18's param/state trees, in order.

``resnet18_paths`` stores trees only (no values), so init runs abstractly: the recorded
program's ``init`` is traced with ``jax.eval_shape`` and the trees (paths, order, shapes,
dtypes) are read from inside the trace, where dict order is still that of creation.
"""

import functools

import jax
import numpy as np

import hk_core as hk
from hk_core_tests import fixture_cases


def _tree_spec(tree):
    # Leaves are tracers here: read shape and dtype (fixture_cases.tree_spec converts to
    # numpy, which a tracer refuses).
    return {m: {n: [list(v.shape), str(np.dtype(v.dtype))] for n, v in b.items()}
            for m, b in tree.items()}


@functools.cache
def _abstract_run(name):
    case, arrays, fn = fixture_cases.load_case(name)
    inputs = [arrays[f"input_{i}"] for i in range(sum(k.startswith("input_") for k in arrays))]
    f = hk.transform_with_state(fn)
    seen = {}

    def init_and_apply(*inputs):
        params, state = f.init(jax.random.PRNGKey(42), *inputs, is_training=True)
        seen["params"] = _tree_spec(params), fixture_cases.ordered_keys(params)
        seen["state"] = _tree_spec(state), fixture_cases.ordered_keys(state)
        out, _ = f.apply(params, state, None, *inputs, is_training=True)
        return out

    out = jax.eval_shape(init_and_apply, *inputs)
    return case, seen, out


def test_resnet18_param_tree_matches_haiku_in_order():
    case, seen, _ = _abstract_run("resnet18_paths")
    spec, order = seen["params"]
    assert spec == case["params"]
    assert order == [(m, list(b)) for m, b in case["params"].items()]


def test_resnet18_state_tree_matches_haiku_in_order():
    case, seen, _ = _abstract_run("resnet18_paths")
    spec, order = seen["state"]
    assert spec == case["state"]
    assert order == [(m, list(b)) for m, b in case["state"].items()]


def test_resnet18_output_shape_and_dtype_match_haiku():
    case, _, out = _abstract_run("resnet18_paths")
    assert [list(out.shape), str(np.dtype(out.dtype))] == case["output"]
