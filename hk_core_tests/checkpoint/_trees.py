"""A params tree shared by the params-file tests: two modules, bf16 and int32 leaves, '~'."""

import jax.numpy as jnp
import numpy as np

W = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)


def params() -> dict:
    return {
        "mlp/~/linear_0": {"w": jnp.asarray(W), "b": jnp.arange(32.0)},
        "mlp/~/linear_1": {"w": jnp.ones((32, 2), jnp.bfloat16)},
        "~": {"count": jnp.asarray(3, jnp.int32)},
    }
