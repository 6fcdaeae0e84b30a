"""The transform family (API.md §2.1): init/apply contracts, rng checks, state handling."""

import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

import hk_core as hk
from hk_core._src.core import errors

X = jnp.ones([2, 3])


def _linear(x):
    return hk.Linear(4)(x)


def _stateful(x):
    count = hk.get_state("count", [], jnp.int32, init=jnp.zeros)
    hk.set_state("count", count + 1)
    return x * 2


class TransformApplyTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_apply_computes_affine_map_of_given_params(self):
        f = hk.transform(_linear)
        w = np.arange(12, dtype=np.float32).reshape(3, 4)
        b = np.ones(4, np.float32)
        out = self.variant(f.apply)({"linear": {"w": w, "b": b}}, None, X)
        chex.assert_trees_all_close(out, np.ones([2, 3], np.float32) @ w + b)

    @chex.variants(with_jit=True, without_jit=True)
    def test_stateful_apply_returns_updated_state(self):
        f = hk.transform_with_state(_stateful)
        params, state = f.init(None, X)
        out, state = self.variant(f.apply)(params, state, None, X)
        chex.assert_trees_all_close(out, 2 * X)
        assert int(state["~"]["count"]) == 1


def test_init_returns_plain_two_level_dicts():
    params = hk.transform(_linear).init(jax.random.PRNGKey(0), X)
    assert type(params) is dict and type(params["linear"]) is dict
    assert list(params["linear"]) == ["w", "b"]


@pytest.mark.parametrize("rng", [
    0, True, np.int32(3), jnp.array(3, jnp.int32), jax.random.PRNGKey(0),
    np.asarray(jax.random.PRNGKey(0)), jax.random.key(0), None])
def test_init_accepts_every_rng_form_haiku_accepts(rng):
    params = hk.transform(lambda: hk.get_parameter("w", [2], init=jnp.zeros)).init(rng)
    assert params["~"]["w"].shape == (2,)


@pytest.mark.parametrize("rng", [np.int64(3), np.uint32(3), jnp.zeros([2], jnp.int32), [0, 1],
                                 1.5])
def test_init_rejects_other_rngs(rng):
    with pytest.raises(ValueError, match="Init must be called with an RNG as the first argument"):
        hk.transform(lambda: None).init(rng)


def test_apply_rejects_bad_rng_naming_position():
    with pytest.raises(ValueError, match="second argument"):
        hk.transform(lambda: None).apply({}, 1.5)
    with pytest.raises(ValueError, match="third argument"):
        hk.transform_with_state(lambda: None).apply({}, {}, 1.5)


def test_int_seed_gives_same_params_as_prngkey():
    f = hk.transform(_linear)
    chex.assert_trees_all_equal(f.init(7, X), f.init(jax.random.PRNGKey(7), X))


def test_missing_rng_error_when_key_needed():
    with pytest.raises(errors.MissingRNGError, match="non-None PRNGKey"):
        hk.transform(_linear).init(None, X)


def test_missing_rng_error_is_value_error():
    assert issubclass(errors.MissingRNGError, ValueError)


def test_apply_with_missing_module_names_path_and_present_modules():
    f = hk.transform(_linear)
    with pytest.raises(ValueError, match=r"Unable to retrieve parameter 'w' for module 'linear'"
                                         r".*modules present: 'other'"):
        f.apply({"other": {"w": jnp.ones([3, 4])}}, None, X)


def test_apply_with_missing_parameter_names_module_and_existing_names():
    f = hk.transform(_linear)
    params = f.init(0, X)
    del params["linear"]["b"]
    with pytest.raises(ValueError, match=r"parameter 'b' for module 'linear'.*has: 'w'"):
        f.apply(params, None, X)


def test_apply_shape_mismatch_names_path_and_both_shapes():
    f = hk.transform(_linear)
    params = f.init(0, jnp.ones([2, 5]))
    with pytest.raises(errors.ParameterShapeError,
                       match=r"'linear/w' with retrieved shape \(5, 4\) does not match "
                             r"shape=\[3, 4\]"):
        f.apply(params, None, X)


def test_apply_runs_with_bf16_cast_params_of_f32_model():
    f = hk.transform(_linear)
    params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), f.init(0, X))
    out = f.apply(params, None, X)
    chex.assert_shape(out, (2, 4))


def test_parameter_created_during_apply_is_an_error_not_chained_from_missing_rng():
    def f(x):
        return hk.Linear(4)(x) + hk.get_parameter("late", [4], init=hk.initializers.RandomNormal())

    params = {"linear": hk.transform(_linear).init(0, X)["linear"]}
    with pytest.raises(ValueError, match="Unable to retrieve parameter 'late' for module '~'") as e:
        hk.transform(f).apply(params, None, X)
    # The missing parameter is the error; the key was wanted only to create it (issue 13).
    assert e.value.__cause__ is None and e.value.__suppress_context__


@pytest.mark.parametrize("params", [[1, 2], "params", 3])
def test_apply_with_non_mapping_params_is_type_error(params):
    with pytest.raises(TypeError, match="params argument does not appear valid"):
        hk.transform(_linear).apply(params, None, X)


def test_apply_accepts_none_params_and_immutable_mappings():
    f = hk.transform(_linear)
    params = hk.data_structures.to_immutable_dict(f.init(0, X))
    chex.assert_shape(f.apply(params, None, X), (2, 4))
    assert hk.transform(lambda: 1).apply(None, None) == 1


def test_extra_params_are_ignored_at_apply():
    f = hk.transform(_linear)
    params = dict(f.init(0, X), unused={"w": jnp.ones([1])})
    chex.assert_shape(f.apply(params, None, X), (2, 4))


def test_get_parameter_outside_transform_is_an_error():
    with pytest.raises(ValueError, match="`hk.get_parameter` must be used as part of an "
                                         "`hk.transform`"):
        hk.get_parameter("w", [1], init=jnp.ones)


def test_module_outside_transform_is_an_error():
    with pytest.raises(ValueError, match="must be initialized inside an `hk.transform`"):
        hk.Linear(2)


def test_transform_with_state_used_with_transform_raises_non_empty_state():
    f = hk.transform(_stateful)
    with pytest.raises(errors.NonEmptyStateError, match="transform_with_state"):
        f.init(None, X)


def test_state_keyword_to_apply_is_type_error():
    f = hk.transform(lambda state: state)
    with pytest.raises(TypeError, match="state"):
        f.apply({}, None, state=1)


def test_apply_rng_false_points_to_without_apply_rng():
    with pytest.raises(ValueError, match="without_apply_rng"):
        hk.transform(_linear, apply_rng=False)


def test_jitted_function_is_rejected():
    with pytest.raises(ValueError, match="jit"):
        hk.transform(jax.jit(lambda x: x))


def test_without_apply_rng_drops_rng_argument_for_every_kind():
    f = hk.without_apply_rng(hk.transform(_linear))
    params = f.init(0, X)
    chex.assert_shape(f.apply(params, X), (2, 4))
    g = hk.without_apply_rng(hk.transform_with_state(_stateful))
    params, state = g.init(None, X)
    assert g.apply(params, state, X)[1]["~"]["count"] == 1
    with pytest.raises(ValueError,
                       match=r"hk\.without_apply_rng expects the result of hk\.transform"):
        hk.without_apply_rng(lambda: None)


def test_with_empty_state_has_stateful_signature():
    f = hk.with_empty_state(hk.transform(_linear))
    params, state = f.init(0, X)
    out, new_state = f.apply(params, {"ignored": {}}, None, X)
    assert state == {} and new_state == {}
    chex.assert_shape(out, (2, 4))


def test_init_and_apply_signatures_add_haiku_arguments():
    def f(x, y=1):
        return x

    assert list(inspect.signature(hk.transform(f).init).parameters) == ["rng", "x", "y"]
    assert list(inspect.signature(hk.transform(f).apply).parameters) == ["params", "rng", "x",
                                                                         "y"]
    assert list(inspect.signature(hk.transform_with_state(f).apply).parameters) == [
        "params", "state", "rng", "x", "y"]


def test_initial_state_is_first_value_and_apply_returns_current():
    def f():
        hk.set_state("s", 1.0)
        hk.set_state("s", 2.0)
        return hk.get_state("s")

    g = hk.transform_with_state(f)
    params, state = g.init(None)
    assert state == {"~": {"s": 1.0}}
    out, new_state = g.apply(params, state, None)
    assert out == 2.0 and new_state == {"~": {"s": 2.0}}


def test_untouched_input_state_is_returned_unchanged():
    g = hk.transform_with_state(lambda: None)
    _, state = g.apply({}, {"a": {"x": 1}}, None)
    assert state == {"a": {"x": 1}}


def test_running_init_true_in_init_false_in_apply():
    f = hk.transform_with_state(lambda: hk.set_state("init", hk.running_init()))
    _, state = f.init(None)
    assert state["~"]["init"] is True
    assert f.apply({}, {}, None)[1]["~"]["init"] is False
    with pytest.raises(ValueError,
                       match=r"`hk\.running_init` must be used as part of an `hk\.transform`"):
        hk.running_init()


def _shared_modules():
    encoder = hk.Linear(2, name="encoder")
    decoder = hk.Linear(3, name="decoder")

    def template(x):
        return decoder(encoder(x))

    return template, (encoder, lambda z: decoder(z))


def test_multi_transform_shares_params_between_functions():
    f = hk.multi_transform(_shared_modules)
    params = f.init(0, X)
    assert list(params) == ["encoder", "decoder"]
    encode, decode = f.apply
    z = encode(params, None, X)
    chex.assert_trees_all_close(z, X @ params["encoder"]["w"] + params["encoder"]["b"])
    chex.assert_shape(decode(params, None, z), (2, 3))


def test_multi_transform_with_state_usage_error_names_with_state_variant():
    def f():
        return (lambda: hk.set_state("s", 1)), (lambda: 0,)

    with pytest.raises(ValueError, match="multi_transform_with_state"):
        hk.multi_transform(f).init(None)


def test_unexpected_tracer_error_gets_hint():
    leaked = []

    def f(x):
        jax.vmap(lambda v: leaked.append(v) or v)(x)
        return leaked[0] + 1

    with pytest.raises(jax.errors.UnexpectedTracerError, match="hk.vmap"):
        hk.transform(f).apply({}, None, X)


# --- Signatures and keys (issue 13 item 3). Expected strings are the `inspect.signature`
# Haiku 0.0.17 prints for the same function on jax 0.10.2.

# How typing prints jax.Array: "jax.jaxlib._jax.Array" on jax 0.10 (as recorded from Haiku),
# "jax.Array" on jax 0.12.
_ARRAY = f"{jax.Array.__module__}.{jax.Array.__qualname__}"
_P = f"collections.abc.Mapping[str, collections.abc.Mapping[str, {_ARRAY}]]"
_MP = f"collections.abc.MutableMapping[str, collections.abc.MutableMapping[str, {_ARRAY}]]"
_RNG = f"rng: Union[{_ARRAY}, int, NoneType]"
_F_ARGS = "x, y=1, *, z=2"


def _sig_fn(x, y=1, *, z=2):
    return x


def _multi():
    return lambda: None, (lambda x: x, lambda a, b=2: a)


@pytest.mark.parametrize("make, init_sig, apply_sig", [
    (lambda: hk.transform(_sig_fn),
     f"({_RNG}, {_F_ARGS}) -> {_P}",
     f"(params: Optional[{_P}], {_RNG}, {_F_ARGS}) -> Any"),
    (lambda: hk.transform_with_state(_sig_fn),
     f"({_RNG}, {_F_ARGS}) -> tuple[{_P}, {_P}]",
     f"(params: Optional[{_P}], state: Optional[{_P}], {_RNG}, {_F_ARGS}) "
     f"-> tuple[typing.Any, {_P}]"),
    (lambda: hk.without_apply_rng(hk.transform(_sig_fn)),
     f"({_RNG}, {_F_ARGS}) -> {_P}",
     f"(params: Optional[{_P}], {_F_ARGS}) -> Any"),
    (lambda: hk.without_apply_rng(hk.transform_with_state(_sig_fn)),
     f"({_RNG}, {_F_ARGS}) -> tuple[{_P}, {_P}]",
     f"(params: Optional[{_P}], state: Optional[{_P}], {_F_ARGS}) "
     f"-> tuple[typing.Any, {_P}]"),
    (lambda: hk.with_empty_state(hk.transform(_sig_fn)),
     f"({_RNG}, {_F_ARGS}) -> tuple[{_P}, {_P}]",
     f"(param: {_P}, state: {_P}, {_RNG}, {_F_ARGS}) -> tuple[typing.Any, {_P}]"),
    (lambda: hk.without_state(hk.transform_with_state(_sig_fn)),
     f"({_RNG}, {_F_ARGS}) -> {_P}",
     f"(params: Optional[{_P}], {_RNG}, {_F_ARGS}) -> Any"),
    (lambda: hk.multi_transform(_multi),
     f"(rng, *args, **kwargs) -> {_MP}",
     f"(params: {_P}, rng, *args, **kwargs)"),
    (lambda: hk.multi_transform_with_state(_multi),
     f"({_RNG}, *args, **kwargs) -> tuple[{_P}, {_P}]",
     f"(params: Optional[{_P}], state: Optional[{_P}], {_RNG}, *args, **kwargs) "
     f"-> tuple[typing.Any, {_P}]"),
    (lambda: hk.without_apply_rng(hk.multi_transform(_multi)),
     f"(rng, *args, **kwargs) -> {_MP}",
     "(params, *args, **kwargs)"),
    (lambda: hk.without_apply_rng(hk.multi_transform_with_state(_multi)),
     f"({_RNG}, *args, **kwargs) -> tuple[{_P}, {_P}]",
     "(params, state, *args, **kwargs)"),
], ids=["transform", "transform_with_state", "without_apply_rng", "without_apply_rng-state",
        "with_empty_state", "without_state", "multi_transform", "multi_transform_with_state",
        "without_apply_rng-multi", "without_apply_rng-multi-state"])
def test_signatures_match_haiku(make, init_sig, apply_sig):
    f = make()
    applies = jax.tree.leaves(f.apply) if not callable(f.apply) else [f.apply]
    assert str(inspect.signature(f.init)) == init_sig
    for apply in applies:
        assert str(inspect.signature(apply)) == apply_sig


def test_rng_annotation_equals_union_of_array_int_none():
    annotation = inspect.signature(hk.transform(_sig_fn).init).parameters["rng"].annotation
    assert annotation == (jax.Array | int | None)


def _key_and_linear(x):
    return hk.next_rng_key(), hk.Linear(2)(x)


def test_rbg_raw_key_accepted_by_init_and_apply():
    f = hk.transform(_key_and_linear)
    with jax.default_prng_impl("rbg"):
        key = jax.random.PRNGKey(0)
        assert (key.shape, key.dtype) == ((4,), jnp.uint32)
        params = f.init(key, X)
        drawn, out = f.apply(params, key, X)
    assert jax.tree.map(jnp.shape, params) == {"linear": {"b": (2,), "w": (3, 2)}}
    assert (drawn.shape, drawn.dtype) == ((4,), jnp.uint32)
    assert out.shape == (2, 2)


def test_rbg_next_rng_keys_stacks_rbg_keys():
    with jax.default_prng_impl("rbg"):
        keys = hk.transform(lambda: hk.next_rng_keys(3)).apply({}, jax.random.PRNGKey(0))
    assert keys.shape == (3, 4)


def test_rbg_rejects_threefry_shaped_key_at_init():
    with jax.default_prng_impl("rbg"), pytest.raises(
            ValueError, match=r"Init must be called with an RNG as the first argument"):
        hk.transform(_key_and_linear).init(np.zeros((2,), np.uint32), X)


def test_rbg_rejects_threefry_shaped_key_at_apply():
    with jax.default_prng_impl("rbg"), pytest.raises(
            ValueError, match=r"Apply must be called with an RNG as the second argument"):
        hk.transform(_key_and_linear).apply({}, np.zeros((2,), np.uint32), X)


@pytest.mark.parametrize("shape", [(4,), (3,), (2, 2)], ids=["rbg-shaped", "3", "2x2"])
def test_default_impl_rejects_key_of_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"Init must be called with an RNG as the first argument"):
        hk.transform(_key_and_linear).init(np.zeros(shape, np.uint32), X)


def test_default_impl_key_still_accepted_after_rbg_block():
    with jax.default_prng_impl("rbg"):
        hk.transform(_key_and_linear).init(jax.random.PRNGKey(0), X)
    params = hk.transform(_key_and_linear).init(jax.random.PRNGKey(0), X)
    assert params["linear"]["w"].shape == (3, 2)
