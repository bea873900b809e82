"""`UNetPlusPlus`: the U-Net with the nested decoder of UNet++."""

import keras

from keras_unet_seg import _validation
from keras_unet_seg.layers.nested_decoder import NestedDecoder
from keras_unet_seg.models.unet import UNet


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class UNetPlusPlus(UNet):
    """UNet++: a U-Net whose skip connections are nested, dense decoders.

    The encoder (today's stages, or any `encoder` that `UNet` takes) is
    unchanged; the decoder is a `NestedDecoder`, whose nodes are the same
    decoder stages (`decoder_stage`, `conv_block`, `upsampling`) as the
    U-Net's. With `deep_supervision=True` each nested U-Net `X[0, j]` gets
    its own 1x1 head and the model returns the list of their outputs,
    shallowest first (train with one target a output: `fit(x, [y] * n)`;
    at inference their average, or the last, is the prediction).

    The paper's configuration, `UNetPlusPlus(base_filters=32,
    normalization=None)`, has 9,042,177 parameters (Table 1 of the paper:
    9.04M); `UNet(base_filters=32, normalization=None)` has 7,760,097 (7.76M).

    Args:
        deep_supervision: bool, one output a nested depth instead of one.
            Defaults to `False`.
        **kwargs: every argument of `UNet` but `decoder` (the nested decoder
            is built from the others).

    Volumes work as in `UNet`: the model is 3D when its input has three
    spatial axes, with the same `pool_sizes` for anisotropic pooling.

    Call arguments:
        inputs: tensor of shape `(batch, height, width, channels)`, or
            `(batch, depth, height, width, channels)` for volumes.
        training: bool, whether normalization and dropout run in training
            mode.

    Returns:
        A float32 tensor of the input's spatial shape and `num_classes`
        channels, or with `deep_supervision=True` a list of them.

    Example:

    >>> model = UNetPlusPlus(base_filters=4, depth=3, deep_supervision=True)
    >>> [tuple(y.shape) for y in model(keras.ops.zeros((1, 20, 30, 3)))]
    [(1, 20, 30, 1), (1, 20, 30, 1), (1, 20, 30, 1)]

    Reference:
        - [Zhou et al., 2018](https://arxiv.org/abs/1807.10165)
    """

    def __init__(self, deep_supervision=False, **kwargs):
        if kwargs.get("decoder") is not None:
            raise _validation.invalid_value(
                "decoder", "None (UNetPlusPlus builds its NestedDecoder)", kwargs["decoder"]
            )
        _validation.check_bool("deep_supervision", deep_supervision)
        super().__init__(**kwargs)
        self.deep_supervision = deep_supervision

    def _make_decoder(self, block_kwargs):
        # Every nested depth's map: the last is the prediction, all of them the deep
        # supervision's (computing X[0, L] computes the others anyway).
        return NestedDecoder(deep_supervision=True, **self._decoder_options(block_kwargs))

    def _head_inputs(self, decoded):
        return decoded if self.deep_supervision else decoded[-1]

    def get_config(self):
        config = super().get_config()
        config.pop("decoder")
        config["deep_supervision"] = self.deep_supervision
        return config
