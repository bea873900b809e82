"""keras-unet-seg: composable U-Net semantic segmentation for Keras 3."""

from keras_unet_seg.layers import AttentionDecoderStage, ConvBlock, DecoderStage, EncoderStage
from keras_unet_seg.models import UNet

__version__ = "0.1.0.dev0"

__all__ = [
    "AttentionDecoderStage",
    "ConvBlock",
    "DecoderStage",
    "EncoderStage",
    "UNet",
]
