"""keras-unet-seg: composable U-Net semantic segmentation for Keras 3."""

__version__ = "0.1.0.dev0"
