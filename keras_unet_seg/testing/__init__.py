"""Test helpers for users' own blocks: `check_layer` runs the standard checks."""

from keras_unet_seg.testing.layer_checks import check_layer

__all__ = ["check_layer"]
