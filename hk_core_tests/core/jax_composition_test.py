"""init/apply are pure functions: they compose with jit, grad, vmap, pmap, shard_map, sharded
jit and threads (8 host CPU devices, from hk_core_tests/conftest.py)."""

import threading

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import hk_core as hk

W = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
B = np.array([1.0, -1.0, 0.5, 0.0], np.float32)
PARAMS = {"linear": {"w": W, "b": B}}
X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
KEY = jax.random.PRNGKey(0)


def _linear(x):
    return hk.Linear(4)(x)


LINEAR = hk.without_apply_rng(hk.transform(_linear))


def _counter(x):
    count = hk.get_state("count", [], jnp.int32, init=jnp.zeros)
    hk.set_state("count", count + 1)
    return hk.Linear(4)(x)


def _sum_out(params, x):
    return LINEAR.apply(params, x).sum()


def _grad_of_sum(x):
    """d/d(w, b) of sum(x @ w + b): every column of dw is x summed over the batch."""
    return {"linear": {"w": np.repeat(x.sum(0)[:, None], 4, axis=1),
                       "b": np.full(4, x.shape[0], np.float32)}}


class JitTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_init_gives_same_params_jitted_or_not(self):
        params = self.variant(LINEAR.init)(KEY, X)
        chex.assert_trees_all_close(params, LINEAR.init(KEY, X))
        assert jax.tree.map(jnp.shape, params) == {"linear": {"w": (3, 4), "b": (4,)}}

    @chex.variants(with_jit=True, without_jit=True)
    def test_apply_computes_affine_map(self):
        chex.assert_trees_all_close(self.variant(LINEAR.apply)(PARAMS, X), X @ W + B, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_stateful_apply_threads_state_through(self):
        f = hk.without_apply_rng(hk.transform_with_state(_counter))
        params, state = f.init(KEY, X)
        apply = self.variant(f.apply)
        _, state = apply(params, state, X)
        _, state = apply(params, state, X)
        assert int(state["~"]["count"]) == 2


class GradTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_grad_wrt_params_matches_formula(self):
        grads = self.variant(jax.grad(_sum_out))(PARAMS, X)
        chex.assert_trees_all_close(grads, _grad_of_sum(X), rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_grad_wrt_inputs_is_row_sums_of_w(self):
        grad_x = self.variant(jax.grad(_sum_out, argnums=1))(PARAMS, X)
        chex.assert_trees_all_close(grad_x, np.tile(W.sum(1), (8, 1)), rtol=1e-6)


class VmapTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_vmap_apply_over_examples_matches_batched_formula(self):
        out = self.variant(jax.vmap(LINEAR.apply, in_axes=(None, 0)))(PARAMS, X)
        chex.assert_trees_all_close(out, X @ W + B, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_vmap_init_over_keys_stacks_per_key_params(self):
        keys = jax.random.split(KEY, 3)
        stacked = self.variant(jax.vmap(LINEAR.init, in_axes=(0, None)))(keys, X)
        assert stacked["linear"]["w"].shape == (3, 3, 4)
        second = LINEAR.init(keys[1], X)
        chex.assert_trees_all_close(jax.tree.map(lambda a: a[1], stacked), second)

    @chex.variants(with_jit=True, without_jit=True)
    def test_vmap_apply_over_an_ensemble_of_params(self):
        ensemble = jax.tree.map(lambda a: np.stack([a, 2 * a]), PARAMS)
        out = self.variant(jax.vmap(LINEAR.apply, in_axes=(0, None)))(ensemble, X)
        chex.assert_trees_all_close(out, np.stack([X @ W + B, X @ (2 * W) + 2 * B]), rtol=1e-6)


def test_pmap_init_with_a_key_per_device_matches_init_per_key():
    keys = jax.random.split(KEY, 8)
    params = jax.pmap(LINEAR.init, in_axes=(0, None))(keys, X)
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[5], params), LINEAR.init(keys[5], X))


def test_pmap_apply_with_replicated_params_matches_formula():
    out = jax.pmap(LINEAR.apply, in_axes=(None, 0))(PARAMS, X.reshape(8, 1, 3))
    chex.assert_trees_all_close(out.reshape(8, 4), X @ W + B, rtol=1e-6)


def test_pmap_grad_with_pmean_equals_full_batch_grad():
    def grad_step(params, x):
        return jax.lax.psum(jax.grad(_sum_out)(params, x), "devices")

    grads = jax.pmap(grad_step, axis_name="devices", in_axes=(None, 0))(
        PARAMS, X.reshape(8, 1, 3))
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[0], grads), _grad_of_sum(X),
                                rtol=1e-5)


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def test_shard_map_apply_matches_formula(mesh):
    apply = jax.shard_map(LINEAR.apply, mesh=mesh, in_specs=(P(), P("data")),
                          out_specs=P("data"))
    chex.assert_trees_all_close(jax.jit(apply)(PARAMS, X), X @ W + B, rtol=1e-6)


def test_grad_through_shard_map_apply_equals_full_batch_grad(mesh):
    apply = jax.shard_map(LINEAR.apply, mesh=mesh, in_specs=(P(), P("data")),
                          out_specs=P("data"))
    grads = jax.jit(jax.grad(lambda p, x: apply(p, x).sum()))(PARAMS, X)
    chex.assert_trees_all_close(grads, _grad_of_sum(X), rtol=1e-5)


def test_shard_map_init_inside_gives_the_same_params_on_every_device(mesh):
    init = jax.shard_map(lambda x: LINEAR.init(KEY, x), mesh=mesh, in_specs=P("data"),
                         out_specs=P())
    chex.assert_trees_all_close(jax.jit(init)(X), LINEAR.init(KEY, X[:1]))


def test_jit_with_named_shardings_in_and_out(mesh):
    replicated, by_row = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    apply = jax.jit(LINEAR.apply, in_shardings=(replicated, by_row), out_shardings=by_row)
    out = apply(PARAMS, X)
    assert out.sharding == by_row
    assert {s.data.shape for s in out.addressable_shards} == {(1, 4)}
    chex.assert_trees_all_close(out, X @ W + B, rtol=1e-6)


def test_jit_init_with_sharded_out_shardings_equals_unsharded_init(mesh):
    by_column = {"linear": {"w": NamedSharding(mesh, P(None, "data")),
                            "b": NamedSharding(mesh, P())}}
    x = np.ones((2, 3), np.float32)
    wide = hk.transform(lambda x: hk.Linear(16)(x))
    params = jax.jit(wide.init, out_shardings=by_column)(KEY, x)
    assert {s.data.shape for s in params["linear"]["w"].addressable_shards} == {(3, 2)}
    chex.assert_trees_all_equal(jax.device_get(params), wide.init(KEY, x))


class _Rendezvous(hk.Module):
    """Waits for the other thread while both are inside a module of their own transform."""

    def __init__(self, barrier, width, name=None):
        super().__init__(name=name)
        self.barrier, self.width = barrier, width

    def __call__(self, x):
        h = hk.Linear(self.width)(x)
        self.barrier.wait(timeout=30)
        name = hk.current_name()
        return hk.Linear(2)(jax.nn.relu(h)) + hk.next_rng_key()[0].astype(jnp.float32), name


def _threaded_transforms(barrier):
    return {
        "a": hk.transform(lambda x: _Rendezvous(barrier, 3, name="a")(x)),
        "b": hk.transform(lambda x: _Rendezvous(barrier, 5, name="b")(x)),
    }


def _init_and_apply(f, seed):
    params = f.init(jax.random.PRNGKey(seed), X)
    out, name = f.apply(params, jax.random.PRNGKey(seed + 1), X)
    return jax.tree.map(jnp.shape, params), params, out, name


def test_two_threads_running_different_transforms_at_once_get_independent_results():
    class NoWait:
        def wait(self, timeout=None):
            del timeout

    expected = {k: _init_and_apply(f, seed)
                for seed, (k, f) in enumerate(sorted(_threaded_transforms(NoWait()).items()))}
    transforms = _threaded_transforms(threading.Barrier(2))
    results, errors = {}, []

    def run(key, seed):
        try:
            results[key] = _init_and_apply(transforms[key], seed)
        except Exception as e:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k, i)) for i, k in enumerate(sorted(transforms))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert results["a"][0] == {"a/linear": {"w": (3, 3), "b": (3,)},
                               "a/linear_1": {"w": (3, 2), "b": (2,)}}
    assert results["b"][0] == {"b/linear": {"w": (3, 5), "b": (5,)},
                               "b/linear_1": {"w": (5, 2), "b": (2,)}}
    assert (results["a"][3], results["b"][3]) == ("a", "b")
    chex.assert_trees_all_equal(results["a"][1:3], expected["a"][1:3])
    chex.assert_trees_all_equal(results["b"][1:3], expected["b"][1:3])
