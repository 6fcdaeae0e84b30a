"""Test configuration shared by all of hk_core_tests: 8 host CPU devices for multi-device tests."""

import os

# Both must be set before jax is first imported (jax reads them when it starts a backend).
_XLA_FLAGS = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _XLA_FLAGS:
    os.environ["XLA_FLAGS"] = f"{_XLA_FLAGS} --xla_force_host_platform_device_count=8".strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
