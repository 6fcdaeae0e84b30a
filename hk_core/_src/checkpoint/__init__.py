"""Checkpoints on Orbax and portable params files (public names live in ``hk_core.checkpoint``)."""
