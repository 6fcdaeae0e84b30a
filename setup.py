"""Installs hk_core; all metadata lives in setup.cfg."""

import setuptools

setuptools.setup()
