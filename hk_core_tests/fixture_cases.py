"""Runs the programs recorded from Haiku 0.0.17 (``fixtures/haiku_0.0.17``) with hk_core.

Each case's ``source`` is executed with ``hk`` bound to ``hk_core``; its parameter and state
trees (paths, order, shapes, dtypes), initial values from ``PRNGKey(42)`` and outputs must
match what Haiku recorded.
"""

import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import hk_core as hk

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "haiku_0.0.17"


@functools.cache
def manifest() -> dict:
    return json.loads((FIXTURES / "cases.json").read_text())


def load_case(name: str):
    """Returns ``(case, arrays, fn)``: the manifest entry, its npz data and the program."""
    case = manifest()["cases"][name]
    arrays = dict(np.load(FIXTURES / f"{name}.npz", allow_pickle=False))
    namespace = {"hk": hk, "jax": jax, "jnp": jnp, "np": np}
    exec(case["source"], namespace)  # the recorded program, written against `hk`
    fn_name = case["source"].split("def ", 1)[1].split("(", 1)[0]
    return case, arrays, namespace[fn_name]


def tree_spec(tree) -> dict:
    return {m: {n: [list(np.shape(v)), str(np.asarray(v).dtype)] for n, v in b.items()}
            for m, b in tree.items()}


def ordered_keys(tree) -> list:
    return [(m, list(b)) for m, b in tree.items()]


@functools.cache
def run_case(name: str):
    """Runs the case like ``make_fixtures.py`` did (once per test session); returns
    ``(case, arrays, params, state, out, new_state)``."""
    case, arrays, fn = load_case(name)
    inputs = [arrays[f"input_{i}"] for i in range(sum(k.startswith("input_") for k in arrays))]
    call = case["call"]
    init_kwargs = eval(call.split("*inputs, **", 1)[1].split(")", 1)[0])  # a literal dict
    apply_kwargs = eval(call.rsplit("*inputs, **", 1)[1].rsplit(")", 1)[0])
    f = hk.transform_with_state(fn)
    params, state = f.init(jax.random.PRNGKey(42), *inputs, **init_kwargs)
    apply_key = jax.random.PRNGKey(43) if case["apply_key"] else None
    out, new_state = f.apply(params, state, apply_key, *inputs, **apply_kwargs)
    return case, arrays, params, state, out, new_state


def stored(arrays: dict, kind: str) -> dict:
    out: dict = {}
    prefix = kind + "/"
    for key, value in arrays.items():
        if key.startswith(prefix):
            module, name = key[len(prefix):].rsplit("/", 1)
            out.setdefault(module, {})[name] = value
    return out
