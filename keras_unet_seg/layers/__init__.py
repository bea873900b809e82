"""Building blocks of the U-Net."""

from keras_unet_seg.layers.attention import AttentionDecoderStage
from keras_unet_seg.layers.conv_block import ConvBlock
from keras_unet_seg.layers.nested_decoder import NestedDecoder
from keras_unet_seg.layers.pool_sizes import plan_pool_sizes
from keras_unet_seg.layers.stages import DecoderStage, EncoderStage
from keras_unet_seg.layers.unet_decoder import UNetDecoder

__all__ = [
    "AttentionDecoderStage",
    "ConvBlock",
    "DecoderStage",
    "EncoderStage",
    "NestedDecoder",
    "UNetDecoder",
    "plan_pool_sizes",
]
