"""`UNetEncoder`: the U-Net's own stages and bottleneck as one encoder."""

import pytest

from keras_unet_seg.encoders import UNetEncoder
from keras_unet_seg.testing import check_layer


def test_standard_checks():
    check_layer(
        UNetEncoder,
        {"filters": [4, 6, 8], "pooling": "conv", "block_kwargs": {"residual": True}},
        (2, 16, 16, 3),
        [(2, 16, 16, 4), (2, 8, 8, 6), (2, 4, 4, 8)],
    )


def test_per_level_block_arguments_reach_each_level():
    encoder = UNetEncoder(filters=[4, 6, 8], block_kwargs=[{"num_convs": n} for n in (1, 2, 3)])
    assert [stage.block.num_convs for stage in encoder.stages] == [1, 2]
    assert encoder.bottleneck.num_convs == 3
    assert encoder.feature_strides == [1, 2, 4]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filters": [4]}, r"at least 2 positive integers.*Received: filters=\[4\]"),
        ({"filters": [4, 8], "pooling": "min"}, "Received: pooling='min'"),
        ({"filters": [4, 8], "block_kwargs": [{}]}, "a dict or a list of 2 dicts"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNetEncoder(**kwargs)
