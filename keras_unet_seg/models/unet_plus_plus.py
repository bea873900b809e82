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

    Call arguments:
        inputs: tensor of shape `(batch, height, width, channels)`.
        training: bool, whether normalization and dropout run in training
            mode.

    Returns:
        A float32 tensor `(batch, height, width, num_classes)`, or with
        `deep_supervision=True` a list of them.

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
        # Read by `_make_decoder`, which `UNet.__init__` calls.
        self.deep_supervision = deep_supervision
        super().__init__(**kwargs)

        # === Layers ===
        if deep_supervision:
            self.heads = [
                keras.layers.Conv2D(
                    self.num_classes, 1, name=f"head_{column}", dtype=self.dtype_policy
                )
                for column in range(1, self.depth + 1)
            ]

    def _make_decoder(self, block_kwargs):
        self.decoder = NestedDecoder(
            deep_supervision=self.deep_supervision, **self._decoder_options(block_kwargs)
        )

    def _build_heads(self, shape):
        if not self.deep_supervision:
            return super()._build_heads(shape)
        shapes = shape if isinstance(shape, list) else [shape]
        # Encoders without stride-1 features give fewer nested outputs: the last heads.
        self._used_heads = self.heads[len(self.heads) - len(shapes) :]
        for head, head_shape in zip(self._used_heads, shapes, strict=True):
            head.build(head_shape)
        self.output_layer.build(self._used_heads[0].compute_output_shape(shapes[0]))

    def _heads(self, x):
        if not self.deep_supervision:
            return super()._heads(x)
        return [self.output_layer(head(y)) for head, y in zip(self._used_heads, x, strict=True)]

    def compute_output_shape(self, input_shape):
        shape = super().compute_output_shape(input_shape)
        if not self.deep_supervision:
            return shape
        return [shape] * len(getattr(self, "_used_heads", self.heads))

    def get_config(self):
        config = super().get_config()
        config.pop("decoder")
        config["deep_supervision"] = self.deep_supervision
        return config
