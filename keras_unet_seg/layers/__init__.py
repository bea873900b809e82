"""Building blocks of the U-Net."""

from keras_unet_seg.layers.attention import AttentionDecoderStage
from keras_unet_seg.layers.conv_block import ConvBlock
from keras_unet_seg.layers.stages import DecoderStage, EncoderStage

__all__ = ["AttentionDecoderStage", "ConvBlock", "DecoderStage", "EncoderStage"]
