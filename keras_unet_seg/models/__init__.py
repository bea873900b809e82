"""Models assembled from the building blocks."""

from keras_unet_seg.models.unet import UNet
from keras_unet_seg.models.unet_plus_plus import UNetPlusPlus

__all__ = ["UNet", "UNetPlusPlus"]
