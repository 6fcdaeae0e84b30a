"""Loops (``hk.scan``, ``hk.fori_loop``, ``hk.while_loop``, ``hk.map``) as Haiku 0.0.17 runs them.

Found by the generated-program sweep (``generated_programs_test.py``, seed 184); every
expected value below was observed running the same program under Haiku 0.0.17:
* a module built inside a traced loop body does not reserve its name outside the loop, so
  at apply a module built after the loop takes the body's name (and its params); at init
  the first iteration runs inline and does reserve it;
* ``hk.scan`` of length 1 does not trace the body a second time at init, so a module built
  inside the body is fine;
* at init no RNG top-up happens before the inline first step: keys reserved beyond
  ``rng_reserve_size`` survive it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk

# Haiku's apply output when the module after the loop reuses the body's `linear` params.
HAIKU_OUT = [2.7231224, 1.7896104, 0.17439258, 0.11300357]


def _fori(body):
    return lambda x: hk.fori_loop(1, 2, lambda i, v: body(v), x)


def _while(body):
    def run(x):
        if hk.running_init():
            return body(x)
        return hk.while_loop(lambda c: c[0] < 1, lambda c: (c[0] + 1, body(c[1])), (0, x))[1]
    return run


def _scan(body):
    return lambda x: hk.scan(lambda c, _: (body(c), None), x, None, length=1)[0]


@pytest.mark.parametrize("loop", [_fori, _while, _scan], ids=["fori_loop", "while_loop", "scan"])
def test_module_after_loop_takes_body_name_at_apply(loop):
    names = []

    def f(x):
        def body(v):
            module = hk.Linear(4)
            names.append(module.module_name)
            return module(v)
        x = loop(body)(x)
        after = hk.Linear(4)
        names.append(after.module_name)
        return after(x)

    t = hk.transform(f)
    x = jnp.ones([2, 4])
    params = t.init(jax.random.PRNGKey(0), x)
    assert names == ["linear", "linear_1"]
    assert list(params) == ["linear", "linear_1"]
    del names[:]
    out = t.apply(params, None, x)
    assert names == ["linear", "linear"]
    np.testing.assert_allclose(out[0], HAIKU_OUT, rtol=1e-5, atol=1e-5)


def _keys_program(kind: str, draw: bool):
    def f(x):
        hk.reserve_rng_keys(3)
        k0 = hk.next_rng_key()
        module = hk.Linear(4)

        def step(c):
            out = module(c)
            return out + jax.random.uniform(hk.next_rng_key(), []) if draw else out
        if kind == "scan0":
            x, _ = hk.scan(lambda c, _: (step(c), None), x, None, length=0)
        elif kind.startswith("fori"):
            x = hk.fori_loop(0, int(kind[4:]), lambda i, c: step(c), x)
        else:
            x = hk.map(step, x)
        hk.set_state("k", jnp.stack([k0, hk.next_rng_key(), hk.next_rng_key()]))
        return x
    return f


# First words of the three keys (k0, then two drawn after the loop) at init and at apply.
HAIKU_KEYS = {
    ("scan0", False): ([928981903, 2467461003, 1353695780], [1948878966, 2441914641, 2705940334]),
    ("scan0", True): ([928981903, 1353695780, 3531307783], [1948878966, 2441914641, 2705940334]),
    ("fori0", False): ([928981903, 2467461003, 1353695780], [1948878966, 2441914641, 2705940334]),
    ("fori0", True): ([928981903, 1353695780, 3531307783], [1948878966, 2441914641, 2705940334]),
    ("fori1", False): ([928981903, 2467461003, 1353695780], [1948878966, 2441914641, 2705940334]),
    ("fori1", True): ([928981903, 1353695780, 3531307783], [1948878966, 2705940334, 1643207187]),
    ("fori3", False): ([928981903, 2467461003, 1353695780], [1948878966, 2441914641, 2705940334]),
    ("fori3", True): ([928981903, 1539457558, 4274742258], [1948878966, 837736323, 2020190946]),
    ("map", False): ([928981903, 2467461003, 1353695780], [1948878966, 2441914641, 2705940334]),
    ("map", True): ([928981903, 3531307783, 1539457558], [1948878966, 1643207187, 837736323]),
}


@pytest.mark.parametrize("kind, draw", list(HAIKU_KEYS))
def test_reserved_keys_survive_inline_first_step_at_init(kind, draw):
    t = hk.transform_with_state(_keys_program(kind, draw))
    x = jnp.ones([2, 4])
    params, state = t.init(jax.random.PRNGKey(0), x)
    init_keys, apply_keys = HAIKU_KEYS[kind, draw]
    assert np.asarray(state["~"]["k"])[:, 0].tolist() == init_keys
    _, new_state = t.apply(params, state, jax.random.PRNGKey(1), x)
    assert np.asarray(new_state["~"]["k"])[:, 0].tolist() == apply_keys
