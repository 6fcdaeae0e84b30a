"""Test helpers (Haiku's ``hk.testing``)."""

from hk_core._src.core.testing import transform_and_run as transform_and_run

__all__ = ["transform_and_run"]
