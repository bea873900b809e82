import keras
import numpy as np
import pytest

from keras_unet_seg import ConvBlock, DecoderStage, EncoderStage
from keras_unet_seg.testing import check_layer


@pytest.mark.parametrize("pooling", ["max", "avg", "conv"])
def test_encoder_stage_standard_checks(pooling):
    check_layer(
        EncoderStage,
        {"filters": 8, "pooling": pooling, "block_kwargs": {"normalization": "group"}},
        (2, 16, 16, 3),
        ((2, 8, 8, 8), (2, 16, 16, 8)),
    )


@pytest.mark.parametrize("upsampling", ["transpose", "bilinear", "nearest"])
def test_decoder_stage_standard_checks(upsampling):
    check_layer(
        DecoderStage,
        {"filters": 4, "upsampling": upsampling},
        [(2, 8, 8, 8), (2, 16, 16, 4)],
        (2, 16, 16, 4),
    )


def test_encoder_stage_skip_is_the_block_output_and_down_is_its_max_pool():
    stage = EncoderStage(4)
    x = np.random.default_rng(0).standard_normal((1, 8, 8, 3)).astype("float32")
    down, skip = (keras.ops.convert_to_numpy(t) for t in stage(x))
    np.testing.assert_allclose(skip, keras.ops.convert_to_numpy(stage.block(x)), atol=1e-6)
    expected = skip.reshape(1, 4, 2, 4, 2, 4).max(axis=(2, 4))
    np.testing.assert_allclose(down, expected, atol=1e-6)


def test_stage_config_stores_the_block_by_registered_name():
    config = EncoderStage(4, block_kwargs={"dropout": 0.1}).get_config()
    assert config["conv_block"] == "keras_unet_seg>ConvBlock"
    assert config["block_kwargs"] == {"dropout": 0.1}
    assert isinstance(EncoderStage.from_config(config).block, ConvBlock)


def test_stage_passes_block_kwargs_to_the_block():
    stage = DecoderStage(4, block_kwargs={"num_convs": 3, "normalization": None})
    assert stage.block.num_convs == 3
    assert stage.block.normalization is None


def test_unregistered_block_is_refused_with_a_hint():
    class Unregistered(ConvBlock):
        pass

    with pytest.raises(ValueError, match="register_keras_serializable"):
        EncoderStage(4, conv_block=Unregistered)


def test_unknown_registered_name_is_refused():
    with pytest.raises(ValueError, match="Received: conv_block='nobody>Nothing'"):
        EncoderStage(4, conv_block="nobody>Nothing")


def test_decoder_stage_rejects_mismatched_skip():
    stage = DecoderStage(4)
    with pytest.raises(
        ValueError, match=r"twice the height and width.*skip.shape=\(1, 15, 16, 4\)"
    ):
        stage([np.zeros((1, 8, 8, 8), "float32"), np.zeros((1, 15, 16, 4), "float32")])


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (EncoderStage, {"filters": 4, "pooling": "min"}, "Received: pooling='min'"),
        (DecoderStage, {"filters": 4, "upsampling": "cubic"}, "Received: upsampling='cubic'"),
    ],
)
def test_invalid_options(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)
