"""Models assembled from the building blocks."""

from keras_unet_seg.models.unet import UNet

__all__ = ["UNet"]
