"""A user's custom block, in a module of its own so a fresh process can import it."""

import keras

from keras_unet_seg import ConvBlock, DecoderStage, EncoderStage


@keras.saving.register_keras_serializable(package="keras_unet_seg_tests")
class SqueezeExciteBlock(ConvBlock):
    """ConvBlock followed by squeeze-and-excitation of its channels."""

    def __init__(self, filters, ratio=4, **kwargs):
        super().__init__(filters, **kwargs)
        self.ratio = ratio
        self.squeeze = keras.layers.Dense(
            max(1, filters // ratio), activation="relu", name="squeeze", dtype=self.dtype_policy
        )
        self.excite = keras.layers.Dense(
            filters, activation="sigmoid", name="excite", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        super().build(input_shape)
        self.squeeze.build((input_shape[0], self.filters))
        self.excite.build((input_shape[0], self.squeeze.units))

    def call(self, inputs, training=None):
        x = super().call(inputs, training=training)
        weights = self.excite(self.squeeze(keras.ops.mean(x, axis=(1, 2))))
        return x * weights[:, None, None, :]

    def get_config(self):
        return {**super().get_config(), "ratio": self.ratio}


# The 3D U-Net of Cicek et al. (2016) from the blocks: an encoder block whose first
# convolution has half the channels of the second (32 -> 64 at the first level), and
# decoder stages whose transposed convolution keeps the deeper features' channels
# (512 -> 512 before the convolutions to 256), with plain blocks.


@keras.saving.register_keras_serializable(package="keras_unet_seg_tests")
class CicekBlock(ConvBlock):
    """A `ConvBlock` whose first convolution gives half the block's channels."""

    def conv_filters(self, index):
        return self.filters // 2 if index == 0 else self.filters


@keras.saving.register_keras_serializable(package="keras_unet_seg_tests")
class CicekDecoderStage(DecoderStage):
    """A `DecoderStage` that upsamples to the deeper features' channels, then two convs."""

    def __init__(self, filters, **kwargs):
        super().__init__(filters, **{**kwargs, "conv_block": ConvBlock})

    def upsample_filters(self, channels):
        return channels


# Stages written to the contract of earlier versions: called with `filters`, `pooling`
# (or `upsampling`), `conv_block`, `block_kwargs`, `name` and `dtype`, knowing nothing
# of `pool_size`.


@keras.saving.register_keras_serializable(package="keras_unet_seg_tests")
def plain_encoder_stage(filters, pooling, conv_block, block_kwargs, name=None, dtype=None):
    """An `EncoderStage` made by a function that takes the arguments of earlier versions."""
    return EncoderStage(filters, pooling, conv_block, block_kwargs, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="keras_unet_seg_tests")
def plain_decoder_stage(filters, upsampling, conv_block, block_kwargs, name=None, dtype=None):
    """A `DecoderStage` made by a function that takes the arguments of earlier versions."""
    return DecoderStage(filters, upsampling, conv_block, block_kwargs, name=name, dtype=dtype)
