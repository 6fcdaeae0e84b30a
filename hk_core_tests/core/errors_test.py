"""Bad-input messages name what to fix (issue 13 item 7).

Each message keeps the text Haiku 0.0.17 raises (checked by running the same program under
Haiku) and adds where the problem is: module path, parameter, state entries, scope.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hk_core as hk
from hk_core._src.core import errors

X = jnp.ones([1, 3])
IMAGE = jnp.ones([1, 4, 4, 3])
_NO_RNG = r"You must pass a non-None PRNGKey to init and/or apply if you make use of random " \
          r"numbers\. "


class Dropper(hk.Module):
    def __call__(self, x):
        return hk.dropout(hk.next_rng_key(), 0.5, x)


def test_missing_rng_at_init_names_module_and_parameter():
    f = hk.transform(lambda x: hk.Linear(2)(x))
    with pytest.raises(errors.MissingRNGError,
                       match=_NO_RNG + r"Creating parameter 'w' .* in module 'linear' during init"):
        f.init(None, X)


def test_missing_rng_at_init_names_module_and_call():
    f = hk.transform(lambda x: Dropper()(x))
    with pytest.raises(errors.MissingRNGError,
                       match=_NO_RNG + r"`hk\.next_rng_key` ran in module 'dropper' during init"):
        f.init(None, X)


def test_missing_rng_at_apply_names_module_and_call():
    f = hk.transform(lambda x: Dropper()(x))
    with pytest.raises(errors.MissingRNGError,
                       match=_NO_RNG + r"`hk\.next_rng_key` ran in module 'dropper' during apply.*"
                             r"`apply\(params, jax\.random\.PRNGKey\(0\), \.\.\.\)`"):
        f.apply({}, None, X)


def test_missing_rng_at_top_level_says_so():
    with pytest.raises(errors.MissingRNGError,
                       match=_NO_RNG + r"`hk\.next_rng_keys` ran at the top level during init"):
        hk.transform(lambda: hk.next_rng_keys(2)).init(None)


def test_missing_rng_for_state_initializer_names_module_and_state():
    class Noisy(hk.Module):
        def __call__(self):
            return hk.get_state("noise", [2], init=hk.initializers.RandomNormal())

    with pytest.raises(errors.MissingRNGError,
                       match=_NO_RNG + r"Creating state 'noise' .* in module 'noisy' during init"):
        hk.transform_with_state(lambda: Noisy()()).init(None)


def test_missing_parameter_is_not_chained_from_missing_rng():
    f = hk.transform(lambda x: hk.Linear(2)(x))
    with pytest.raises(errors.MissingParameterError,
                       match=r"Unable to retrieve parameter 'w' for module 'linear'") as e:
        f.apply({"foo": {"w": jnp.ones([1])}}, None, X)
    assert e.value.__cause__ is None
    assert e.value.__suppress_context__ is True


class Counter(hk.Module):
    def __call__(self):
        hk.set_state("count", 1)
        hk.set_state("seen", 2)


@pytest.mark.parametrize("run", [
    lambda f: f.init(None),
    lambda f: f.apply({}, None),
], ids=["init", "apply"])
def test_non_empty_state_error_names_state_entries(run):
    f = hk.transform(lambda: Counter()())
    with pytest.raises(errors.NonEmptyStateError,
                       match=r"then use `hk\.transform_with_state`\. State entries found: "
                             r"'counter/count', 'counter/seen'\."):
        run(f)


def test_reusing_name_scope_names_the_scope():
    class Net(hk.Module):
        def __call__(self):
            scope = hk.name_scope("block")
            with scope:
                pass
            with scope:
                pass

    with pytest.raises(ValueError, match=r"name_scope is not reusable: the scope 'net/block' was "
                                         r"already entered and exited"):
        hk.transform(lambda: Net()()).init(None)


def test_reentering_name_scope_names_the_scope():
    def f():
        scope = hk.name_scope("outer")
        with scope:
            with scope:
                pass

    with pytest.raises(ValueError, match=r"name_scope is not reentrant: the scope 'outer' is "
                                         r"already active"):
        hk.transform(f).init(None)


def _conv_params_as(dtype):
    params = hk.transform(lambda x: hk.Conv2D(2, 3)(x)).init(jax.random.PRNGKey(0), IMAGE)
    return jax.tree.map(lambda a: a.astype(dtype), params)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_parameter_dtype_failing_inside_jax_names_module_and_parameter(jit):
    apply = hk.transform(lambda x: hk.Conv2D(2, 3)(x)).apply
    apply = jax.jit(apply) if jit else apply
    with pytest.raises(TypeError, match=(
            r"lax\.conv_general_dilated requires arguments to have the same dtypes, got "
            r"float32, int32\.\n\nIn module 'conv2_d' \(Conv2D\.__call__\): parameters "
            r"'conv2_d/b' \(int32\), 'conv2_d/w' \(int32\), inputs float32\.")):
        apply(_conv_params_as(jnp.int32), None, IMAGE)


def test_dtype_error_is_explained_once_by_the_innermost_module_with_params():
    class Wrapper(hk.Module):
        def __call__(self, x):
            return hk.Conv2D(2, 3)(x)

    f = hk.transform(lambda x: Wrapper()(x))
    params = {"wrapper/conv2_d": _conv_params_as(np.int32)["conv2_d"]}
    with pytest.raises(TypeError, match=r"Parameters whose dtype differs from the inputs'") as e:
        f.apply(params, None, IMAGE)
    assert str(e.value).count("In module") == 1
    assert "In module 'wrapper/conv2_d' (Conv2D.__call__)" in str(e.value)


def test_type_errors_without_dtypes_pass_unchanged():
    class Picky(hk.Module):
        def __call__(self, x):
            hk.get_parameter("w", [1], init=jnp.zeros)
            raise TypeError("picky")

    with pytest.raises(TypeError, match=r"^picky$"):
        hk.transform(lambda x: Picky()(x)).init(None, X)
