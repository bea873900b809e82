"""`AttentionDecoderStage`: a decoder level that gates its skip connection."""

import keras

from keras_unet_seg import _validation
from keras_unet_seg.layers import _options
from keras_unet_seg.layers.stages import DecoderStage


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class AttentionDecoderStage(DecoderStage):
    """A `DecoderStage` whose skip connection passes an additive attention gate.

    The gate computes a per-pixel weight in `[0, 1]` from the skip and the
    upsampled deeper features,
    `sigmoid(psi(relu(theta(skip) + phi(upsampled))))`, and multiplies the
    skip by it before concatenation, so the decoder can ignore irrelevant
    regions of the encoder features. `theta`, `phi` and `psi` are 1x1
    convolutions (1x1x1 on volumes). Unlike the paper, the gating signal is taken after
    upsampling, so skip and gate share one resolution.

    Without a skip (called on `[x]`) the stage has nothing to gate and
    works as a `DecoderStage`.

    It is the shipped example of a variant made by overriding `fuse`: pass
    `UNet(decoder_stage=AttentionDecoderStage)` for an Attention U-Net.

    Args:
        filters: int, output channels of the upsampling and of the block.
        inter_filters: int, channels of the gate's intermediate features.
            Defaults to `None`, meaning `max(1, filters // 2)`.
        upsampling: see `DecoderStage`. Defaults to `"transpose"`.
        conv_block: see `DecoderStage`. Defaults to `ConvBlock`.
        block_kwargs: see `DecoderStage`. Defaults to `None`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: list `[x, skip]`, as for `DecoderStage`.
        training: bool, whether the block runs in training mode.

    Output shape:
        `(batch, 2 * h, 2 * w, filters)`: the spatial axes times `pool_size`.

    Example:

    >>> stage = AttentionDecoderStage(8)
    >>> x, skip = keras.ops.zeros((1, 8, 8, 16)), keras.ops.zeros((1, 16, 16, 8))
    >>> tuple(stage([x, skip]).shape)
    (1, 16, 16, 8)

    Reference:
        - [Oktay et al., 2018](https://arxiv.org/abs/1804.03999)
    """

    def __init__(self, filters, inter_filters=None, **kwargs):
        super().__init__(filters, **kwargs)
        if inter_filters is not None:
            _validation.check_positive_int("inter_filters", inter_filters)
        self.inter_filters = inter_filters
        # The gate's convolutions are made at build, 2D or 3D by the input.
        self.theta = None
        self.phi = None
        self.psi = None

    def _make_layers(self, rank, channels):
        super()._make_layers(rank, channels)
        inter = self.inter_filters or max(1, self.filters // 2)

        def conv(channels, name):
            return _options.make_conv(rank, channels, 1, name=name, dtype=self.dtype_policy)

        self.theta = conv(inter, "gate_theta")
        self.phi = conv(inter, "gate_phi")
        self.psi = conv(1, "gate_psi")
        gate = [self.upsample, self.concat, self.block, self.theta, self.phi, self.psi]
        _options.track_first(self, gate)

    def build(self, input_shape):
        super().build(input_shape)
        x_shape, skip_shape = self._check_input_shape(input_shape)
        if skip_shape is None:
            return  # without a skip there is nothing to gate
        up_shape = self.upsample.compute_output_shape(x_shape)
        self.theta.build(skip_shape)
        self.phi.build(up_shape)
        self.psi.build(self.theta.compute_output_shape(skip_shape))

    def fuse(self, upsampled, skip):
        gate = keras.ops.relu(self.theta(skip) + self.phi(upsampled))
        gate = keras.ops.sigmoid(self.psi(gate))
        return super().fuse(upsampled, skip * gate)

    def get_config(self):
        config = super().get_config()
        config["inter_filters"] = self.inter_filters
        return config
