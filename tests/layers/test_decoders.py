"""`UNetDecoder`, `NestedDecoder`, and decoder stages without a skip."""

import keras
import numpy as np
import pytest

from keras_unet_seg import AttentionDecoderStage, DecoderStage, NestedDecoder, UNetDecoder
from keras_unet_seg.testing import check_layer

# Three feature maps at strides 2, 4 and 8 of a 32x32 image: no stride-1 skip.
FEATURES = [(2, 16, 16, 6), (2, 8, 8, 10), (2, 4, 4, 12)]


@pytest.mark.parametrize("stage", [DecoderStage, AttentionDecoderStage])
def test_stage_without_a_skip_upsamples_and_runs_its_block(stage):
    layer = stage(8)
    x = np.random.default_rng(0).random((2, 5, 7, 16)).astype("float32")
    assert tuple(layer([x]).shape) == (2, 10, 14, 8)
    assert layer.compute_output_shape([(None, None, 7, 16)]) == (None, None, 14, 8)
    assert tuple(stage(8)(x).shape) == (2, 10, 14, 8)


def test_stage_refuses_three_inputs():
    x = keras.ops.zeros((1, 4, 4, 8))
    with pytest.raises(ValueError, match=r"expects a list `\[x, skip\]` of two tensors, or"):
        DecoderStage(4)([x, x, x])


def test_unet_decoder_standard_checks():
    check_layer(UNetDecoder, {"filters": [4, 6, 8]}, FEATURES, (2, 32, 32, 4))


@pytest.mark.one_backend
def test_unet_decoder_gives_skipless_stages_to_the_missing_strides():
    decoder = UNetDecoder(filters=[4, 6, 8, 10])  # 4 levels: the deepest at stride 16
    features = [keras.ops.zeros((1, 8, 8, 3)), keras.ops.zeros((1, 4, 4, 5))]
    assert tuple(decoder(features).shape) == (1, 64, 64, 4)
    # Stage 3 (stride 8) fuses the stride-8 map; stages 0 to 2 have no skip, so their
    # blocks see only the upsampled maps.
    assert decoder.stages[3].block.convs[0].kernel.shape[2] == 10 + 3
    assert [decoder.stages[i].block.convs[0].kernel.shape[2] for i in range(3)] == [4, 6, 8]


def test_unet_decoder_refuses_more_features_than_levels():
    with pytest.raises(ValueError, match="takes at most 3 feature maps"):
        UNetDecoder(filters=[4, 8])([keras.ops.zeros((1, 8, 8, 2))] * 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filters": []}, r"Received: filters=\[\]"),
        ({"filters": [4, 0]}, r"Received: filters=\[4, 0\]"),
        ({"filters": [4], "block_kwargs": [{}, {}]}, "a dict or a list of 1 dicts"),
    ],
)
def test_unet_decoder_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNetDecoder(**kwargs)


@pytest.mark.parametrize("deep_supervision", [False, True])
def test_nested_decoder_standard_checks(deep_supervision):
    outputs = [(2, 32, 32, 4)] * (3 if deep_supervision else 1)
    check_layer(
        NestedDecoder,
        {"filters": [4, 6, 8], "deep_supervision": deep_supervision},
        FEATURES,
        outputs if deep_supervision else outputs[0],
        run_mixed_precision=False,
    )


@pytest.mark.one_backend
def test_nested_decoder_has_the_nodes_of_the_paper():
    # Full pyramid (strides 1 to 8): nodes X[i, j] with j >= 1 and i + j <= 3.
    decoder = NestedDecoder(filters=[4, 6, 8], deep_supervision=True)
    features = [keras.ops.zeros((1, 16 // 2**i, 16 // 2**i, 2 + i)) for i in range(4)]
    outputs = decoder(features)
    assert len(outputs) == 3
    names = sorted(s.name for s in decoder.stages)
    assert names == ["node_0_1", "node_0_2", "node_0_3", "node_1_1", "node_1_2", "node_2_1"]
    # X[0, 3] fuses X[0, 0], X[0, 1], X[0, 2] (2 + 4 + 4 channels) with the upsampled X[1, 2].
    node = decoder.stages[[s.name for s in decoder.stages].index("node_0_3")]
    assert node.block.convs[0].kernel.shape[2] == 4 + 2 + 4 + 4


@pytest.mark.one_backend
def test_nested_decoder_leaves_out_the_nodes_of_missing_levels():
    decoder = NestedDecoder(filters=[4, 6, 8], deep_supervision=True)
    outputs = decoder([keras.ops.zeros((1, 8, 8, 3)), keras.ops.zeros((1, 4, 4, 5))])
    assert [tuple(y.shape) for y in outputs] == [(1, 32, 32, 4), (1, 32, 32, 4)]
    built = sorted(s.name for s in decoder.stages if s.built)
    assert built == ["node_0_2", "node_0_3", "node_1_1", "node_1_2", "node_2_1"]


# Volume features of a depth-2 encoder pooled (1, 2, 2), then (2, 2, 2): 6x16x16 padded.
VOLUME_FEATURES = [(2, 6, 16, 16, 4), (2, 6, 8, 8, 6), (2, 3, 4, 4, 8)]


@pytest.mark.parametrize("decoder", [UNetDecoder, NestedDecoder])
def test_decoders_on_volume_features_with_pool_sizes(decoder):
    check_layer(
        decoder,
        {"filters": [4, 6], "pool_sizes": [(1, 2, 2), (2, 2, 2)]},
        VOLUME_FEATURES,
        (2, 6, 16, 16, 4),
        run_training=False,  # DecoderStage's volume checks train a 3D stage
        run_mixed_precision=False,
        run_saving=False,
    )


def test_a_volume_decoder_without_the_finest_features_scales_by_the_pool_sizes():
    decoder = UNetDecoder(filters=[4, 6], pool_sizes=[(1, 2, 2), 2])
    assert decoder.compute_output_shape([(1, 3, 4, 4, 8)]) == (1, 6, 16, 16, 4)
    assert tuple(decoder([keras.ops.zeros((1, 3, 4, 4, 8))]).shape) == (1, 6, 16, 16, 4)


def test_a_decoder_refuses_pool_sizes_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"a list of 2 pool sizes .*Received: pool_sizes=\[2\]"):
        UNetDecoder(filters=[4, 6], pool_sizes=[2])
