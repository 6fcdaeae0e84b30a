"""Export of a model's ``apply`` with ``jax.export`` (public names live in ``hk_core.export``)."""
