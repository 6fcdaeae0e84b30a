"""The default FLOP estimate, checked against counts written out by hand."""

import jax
import jax.numpy as jnp
import pytest

from hk_core._src.inspect import flops


def _first_eqn(fun, *args):
    return jax.make_jaxpr(fun)(*args).jaxpr.eqns[0]


def test_dot_general_counts_two_flops_per_multiply_add():
    eqn = _first_eqn(jnp.matmul, jnp.ones([5, 2, 3]), jnp.ones([5, 3, 7]))
    assert flops.estimate_flops(eqn) == 2 * (5 * 2 * 7) * 3


def test_conv_counts_kernel_window_times_input_features():
    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    eqn = _first_eqn(conv, jnp.ones([2, 6, 6, 4]), jnp.ones([3, 3, 4, 8]))
    assert flops.estimate_flops(eqn) == 2 * (2 * 4 * 4 * 8) * (3 * 3 * 4)


def test_grouped_conv_counts_features_per_group():
    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=4,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    eqn = _first_eqn(conv, jnp.ones([1, 5, 5, 4]), jnp.ones([3, 3, 1, 4]))
    assert flops.estimate_flops(eqn) == 2 * (5 * 5 * 4) * (3 * 3 * 1)


@pytest.mark.parametrize("fun, expected", [
    (jnp.sin, 6), (lambda x: x * 2.0, 6), (lambda x: x.reshape(6), 0),
    (lambda x: x.T, 0), (lambda x: x.sum(axis=1), 6), (lambda x: x.max(axis=1), 6),
])
def test_elementwise_reshape_and_reduction_costs(fun, expected):
    assert flops.estimate_flops(_first_eqn(fun, jnp.ones([2, 3]))) == expected
