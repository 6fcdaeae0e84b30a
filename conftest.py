"""Root pytest configuration: names every doctest in ``hk_core`` can use without importing."""

import pytest


@pytest.fixture(autouse=True)
def _add_doctest_namespace(doctest_namespace: dict) -> None:
    # Imported here, not at the top, so hk_core_tests/conftest.py can set XLA_FLAGS before
    # jax is first imported.
    import jax
    import jax.numpy as jnp
    import numpy as np

    import hk_core

    doctest_namespace.update(hk=hk_core, jax=jax, jnp=jnp, np=np)
