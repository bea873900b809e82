"""Tests for `keras_unet_seg.performance.flops`: FLOPs compared with hand-computed counts."""

import keras
import pytest

from keras_unet_seg import UNet
from keras_unet_seg.performance import estimate_flops


def test_estimate_flops_counts_every_convolution():
    model = UNet(base_filters=2, depth=1, num_convs=1, kernel_size=3)
    # 8x8 input: encoder conv 3->2 at 8x8, bottleneck conv 2->4 at 4x4,
    # transposed 2x2 conv 4->2 from 4x4, decoder conv (2+2)->2 at 8x8, head 2->1 at 8x8.
    expected = 2 * (
        9 * 3 * 2 * 64 + 9 * 2 * 4 * 16 + 4 * 4 * 2 * 16 + 9 * 4 * 2 * 64 + 1 * 2 * 1 * 64
    )
    assert estimate_flops(model, (None, 8, 8, 3)) == expected
    assert estimate_flops(model, (4, 8, 8, 3)) == 4 * expected
    assert estimate_flops(model, (1, 8, 8, 3), training=True) == 3 * expected
    # Sizes off the grid are padded inside the model, and counted padded.
    assert estimate_flops(model, (1, 7, 7, 3)) == expected


def test_estimate_flops_of_the_reference_unet():
    flops = estimate_flops(UNet(base_filters=64), (1, 256, 256, 3))
    assert round(flops / 1e9, 1) == 96.3
    with pytest.raises(ValueError, match="Expected known height and width"):
        estimate_flops(UNet(base_filters=4, depth=2), (1, None, None, 3))


def _strided_encoder(extra_layers):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    for layer in extra_layers:
        x = layer(x)
    y = keras.layers.Conv2D(8, 3, strides=2, padding="same")(x)
    return keras.Model(inputs, [x, y])


def test_estimate_flops_counts_depthwise_and_pointwise_dense_layers_inside_encoders():
    # An encoder built for any size learns its layers' shapes from a symbolic pass.
    extra = [keras.layers.DepthwiseConv2D(3, padding="same"), keras.layers.Dense(4)]
    with_extra = UNet(encoder=_strided_encoder(extra), decoder_filters=[2, 2])
    plain = UNet(encoder=_strided_encoder([]), decoder_filters=[2, 2])
    difference = estimate_flops(with_extra, (1, 16, 16, 3)) - estimate_flops(plain, (1, 16, 16, 3))
    # At 8x8: depthwise 3x3 on 4 channels, then Dense 4 -> 4 on every pixel.
    assert difference == 2 * 9 * 4 * 64 + 2 * 4 * 4 * 64


def test_estimate_flops_counts_the_convolutions_of_a_volume():
    model = UNet(base_filters=2, depth=1, num_convs=1, kernel_size=3)
    # 8x8x8 input: encoder conv 3->2 at 8**3, bottleneck conv 2->4 at 4**3, transposed
    # 2x2x2 conv 4->2 from 4**3, decoder conv (2+2)->2 at 8**3, head 2->1 at 8**3.
    expected = 2 * (
        27 * 3 * 2 * 512 + 27 * 2 * 4 * 64 + 8 * 4 * 2 * 64 + 27 * 4 * 2 * 512 + 2 * 1 * 512
    )
    assert estimate_flops(model, (None, 8, 8, 8, 3)) == expected
    assert estimate_flops(model, (1, 7, 8, 7, 3)) == expected  # padded to 8x8x8
