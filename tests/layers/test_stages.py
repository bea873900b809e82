import keras
import numpy as np
import pytest

from keras_unet_seg import AttentionDecoderStage, ConvBlock, DecoderStage, EncoderStage
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
    stage.build([(None, 4, 4, 8), (None, 8, 8, 4)])  # its layers are made at build
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
    with pytest.raises(ValueError, match=r"times pool_size=2.*skip.shape=\(1, 15, 16, 4\)"):
        stage([np.zeros((1, 8, 8, 8), "float32"), np.zeros((1, 15, 16, 4), "float32")])


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (EncoderStage, {"filters": 4, "pooling": "min"}, "Received: pooling='min'"),
        (DecoderStage, {"filters": 4, "upsampling": "cubic"}, "Received: upsampling='cubic'"),
        (EncoderStage, {"filters": 4, "pool_size": 0}, "Received: pool_size=0"),
        (DecoderStage, {"filters": 4, "pool_size": (2, 2.5)}, r"Received: pool_size=\(2, 2.5\)"),
    ],
)
def test_invalid_options(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


# --- Volumes: the same stages, 3D by the rank of their input ---


@pytest.mark.parametrize("pooling", ["max", "avg", "conv"])
def test_encoder_stage_on_an_odd_volume(pooling):
    stage = EncoderStage(4, pooling=pooling)
    x = np.random.default_rng(0).random((1, 37, 50, 23, 1), dtype="float32")
    down, skip = stage(x)
    assert tuple(skip.shape) == (1, 37, 50, 23, 4)
    # "valid" pooling rounds down, a "same" strided convolution up
    expected = (1, 19, 25, 12, 4) if pooling == "conv" else (1, 18, 25, 11, 4)
    assert tuple(down.shape) == expected
    assert stage.compute_output_shape((1, 37, 50, 23, 1)) == (expected, (1, 37, 50, 23, 4))


def test_encoder_stage_standard_checks_on_a_volume_pooled_in_plane():
    check_layer(
        EncoderStage,
        {"filters": 4, "pool_size": (1, 2, 2)},
        (2, 3, 8, 6, 2),
        ((2, 3, 4, 3, 4), (2, 3, 8, 6, 4)),
        run_training=False,  # ConvBlock's and DecoderStage's volume checks train
        run_mixed_precision=False,
    )


@pytest.mark.parametrize("upsampling", ["transpose", "nearest"])
def test_decoder_stage_standard_checks_on_a_volume(upsampling):
    check_layer(
        DecoderStage,
        {"filters": 4, "upsampling": upsampling, "pool_size": (1, 2, 2)},
        [(2, 5, 3, 4, 8), (2, 5, 6, 8, 4)],
        (2, 5, 6, 8, 4),
        run_mixed_precision=False,
    )


def test_a_volume_stage_refuses_bilinear_upsampling_and_a_pool_size_of_another_rank():
    x, skip = np.zeros((1, 2, 2, 2, 8), "float32"), np.zeros((1, 4, 4, 4, 4), "float32")
    with pytest.raises(ValueError, match="'transpose' or 'nearest' for volumes"):
        DecoderStage(4, upsampling="bilinear")([x, skip])
    with pytest.raises(ValueError, match=r"one value a spatial axis of the 3D input"):
        EncoderStage(4, pool_size=(2, 2))(skip)


def _weight_order(layer, shape):
    layer.build(shape)
    return list(dict.fromkeys(w.path.split("/")[1] for w in layer.weights))


def test_subclass_layers_made_in_init_keep_their_place_in_the_weight_order():
    # The blocks make their layers at build (the rank is the input's), but a subclass's
    # layers made in its `__init__` (the guide's squeeze-and-excitation block) still
    # come after them, as in the versions that made them in `__init__`: the order of
    # `get_weights()` and of the optimizer's slots in a saved 2D `.keras` file.
    class Extra(ConvBlock):
        def __init__(self, filters, **kwargs):
            super().__init__(filters, **kwargs)
            self.extra = keras.layers.Dense(2, name="extra")

        def build(self, input_shape):
            super().build(input_shape)
            self.extra.build((None, self.filters))

    block = Extra(4, residual=True)
    assert _weight_order(block, (1, 8, 8, 3)) == [
        "conv_0", "conv_1", "norm_0", "norm_1", "extra", "shortcut", "shortcut_norm"
    ]  # fmt: skip

    class ExtraEncoderStage(EncoderStage):
        def __init__(self, filters, **kwargs):
            super().__init__(filters, pooling="conv", **kwargs)
            self.extra = keras.layers.Dense(2, name="extra")

        def build(self, input_shape):
            super().build(input_shape)
            self.extra.build((None, self.filters))

    order = _weight_order(ExtraEncoderStage(4), (1, 8, 8, 3))
    assert order == ["block", "downsample", "extra"]

    class ExtraDecoderStage(AttentionDecoderStage):
        def __init__(self, filters, **kwargs):
            super().__init__(filters, **kwargs)
            self.extra = keras.layers.Dense(2, name="extra")

        def build(self, input_shape):
            self.extra.build((None, self.filters))
            super().build(input_shape)

    order = _weight_order(ExtraDecoderStage(4), [(1, 4, 4, 8), (1, 8, 8, 4)])
    assert order == ["upsample", "block", "gate_theta", "gate_phi", "gate_psi", "extra"]
