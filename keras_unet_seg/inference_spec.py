"""`InferenceSpec`, kept importable from here: it lives in `keras_unet_seg.inference`."""

from keras_unet_seg.inference import InferenceSpec

__all__ = ["InferenceSpec"]
