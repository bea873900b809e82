import keras
import numpy as np
import pytest
from _unet_test_blocks import SqueezeExciteBlock, plain_decoder_stage, plain_encoder_stage

from keras_unet_seg import AttentionDecoderStage, ConvBlock, UNet, UNetDecoder
from keras_unet_seg.encoders import UNetEncoder
from keras_unet_seg.testing import check_layer

SMALL = {"base_filters": 8, "depth": 2}
# The standard checks' input. The tests that call a SMALL model take it too: JAX
# compiles each operation once for each shape, so the backend reruns reuse them.
CHECKED_SHAPE = (2, 32, 32, 3)


def _images(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype("float32")


@pytest.mark.one_backend
def test_paper_configuration_has_the_paper_parameter_count():
    model = UNet(
        num_classes=1, base_filters=64, depth=4, normalization=None, upsampling="transpose"
    )
    model.build((None, 256, 256, 3))
    assert model.count_params() == 31_031_745


def test_standard_checks():
    check_layer(UNet, {**SMALL, "dropout": [0.0, 0.1, 0.2]}, CHECKED_SHAPE, (2, 32, 32, 1))


# 100 x 75 runs on the main backend: UNet's docstring example, which every backend
# runs, is that size.
@pytest.mark.parametrize(
    "size", [pytest.param((100, 75), marks=pytest.mark.one_backend), (33, 64), (5, 7)]
)
def test_any_height_and_width_gives_a_mask_of_the_same_size(size):
    model = UNet(base_filters=4, depth=3)
    assert model(_images((2, *size, 3))).shape == (2, *size, 1)


def test_unknown_spatial_size():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, UNet(**SMALL)(inputs))
    assert model.output.shape == (None, None, None, 1)
    assert model.predict(_images((1, 37, 29, 3)), verbose=0).shape == (1, 37, 29, 1)


def test_padding_does_not_change_the_prediction_of_the_top_left():
    # The zero padding at the bottom and right only reaches nearby pixels.
    model = UNet(base_filters=4, depth=2, normalization=None)
    image = _images((1, 64, 64, 3))
    full = keras.ops.convert_to_numpy(model(image))
    cropped = keras.ops.convert_to_numpy(model(image[:, :61, :61]))
    np.testing.assert_allclose(cropped[:, :16, :16], full[:, :16, :16], atol=1e-5)


def test_binary_output_is_a_probability_and_multiclass_a_distribution():
    binary = keras.ops.convert_to_numpy(UNet(**SMALL)(_images(CHECKED_SHAPE)))
    assert ((binary >= 0) & (binary <= 1)).all()
    multi = keras.ops.convert_to_numpy(UNet(num_classes=3, **SMALL)(_images(CHECKED_SHAPE)))
    assert multi.shape == (*CHECKED_SHAPE[:3], 3)
    np.testing.assert_allclose(multi.sum(axis=-1), 1.0, atol=1e-5)


def test_no_output_activation_gives_logits():
    model = UNet(output_activation=None, normalization=None, **SMALL)
    logits = keras.ops.convert_to_numpy(model(10 * _images(CHECKED_SHAPE)))
    assert (logits < 0).any() or (logits > 1).any()


def test_explicit_filters_set_the_depth():
    model = UNet(filters=[4, 6, 10])
    assert model.depth == 2
    assert [e.filters for e in model.encoders] == [4, 6]
    assert model.bottleneck.filters == 10
    assert [d.filters for d in model.decoders] == [6, 4]


def test_per_level_arguments_are_checked_together():
    message = (
        r"Invalid value for per-level arguments `filters`, `dropout`. Expected a scalar or a "
        r"sequence of length depth \+ 1 = 3 \(one value per level, the bottleneck included\). "
        r"Received: depth=2, filters=\[4, 8\], num_convs=2, dropout=\[0.1\]"
    )
    with pytest.raises(ValueError, match=message):
        UNet(depth=2, filters=[4, 8], dropout=[0.1])


def test_per_level_values_reach_each_level():
    model = UNet(base_filters=4, depth=2, num_convs=[1, 2, 3], dropout=[0.0, 0.1, 0.2])
    model.build((None, None, None, 3))  # the decoder stages make their blocks at build
    assert [e.block.num_convs for e in model.encoders] == [1, 2]
    assert model.bottleneck.num_convs == 3
    assert [d.block.dropout for d in model.decoders] == [0.1, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 0}, "Received: num_classes=0"),
        ({"pooling": "min"}, "Received: pooling='min'"),
        ({"output_activation": "nope"}, "Received: output_activation='nope'"),
        ({"normalization": "weird"}, "Received: normalization='weird'"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNet(**kwargs)


def test_injected_block_is_used_everywhere_and_survives_saving(tmp_path):
    model = UNet(conv_block=SqueezeExciteBlock, block_kwargs={"ratio": 2}, **SMALL)
    images = _images(CHECKED_SHAPE)
    expected = keras.ops.convert_to_numpy(model(images))
    blocks = [e.block for e in model.encoders] + [model.bottleneck]
    blocks += [d.block for d in model.decoders]
    assert all(isinstance(b, SqueezeExciteBlock) and b.ratio == 2 for b in blocks)
    assert model.get_config()["conv_block"] == "keras_unet_seg_tests>SqueezeExciteBlock"

    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded.bottleneck, SqueezeExciteBlock)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(images)), expected, atol=1e-6)


def test_stages_of_the_earlier_contract_still_build_a_2d_unet():
    # `pool_size` reaches the stages only when `pool_sizes` is given: a stage written
    # for earlier versions knows nothing of it.
    model = UNet(**SMALL, encoder_stage=plain_encoder_stage, decoder_stage=plain_decoder_stage)
    assert tuple(model(_images((1, 20, 20, 3))).shape) == (1, 20, 20, 1)
    assert [stage.pool_size for stage in model.encoders + model.decoders] == [2, 2, 2, 2]


def test_unregistered_block_is_refused():
    class Unregistered(ConvBlock):
        pass

    with pytest.raises(ValueError, match=r"is not registered with Keras.*register_keras"):
        UNet(conv_block=Unregistered)


# The .keras format holds NumPy arrays whatever the backend, and `test_standard_checks`
# saves and loads a U-Net on every backend: these variants run on the main one.
@pytest.mark.one_backend
@pytest.mark.parametrize(
    "kwargs",
    [
        {"decoder_stage": AttentionDecoderStage},
        {"residual": True, "normalization": "group", "pooling": "conv", "upsampling": "bilinear"},
        {"num_classes": 3, "output_activation": None},
    ],
)
def test_trained_model_saves_and_loads_with_identical_outputs(tmp_path, kwargs):
    model = UNet(**SMALL, **kwargs)
    num_classes = model.num_classes
    images = _images((4, 24, 20, 3))
    masks = np.random.default_rng(1).integers(0, 2, (4, 24, 20, num_classes)).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    model.fit(images, masks, epochs=1, batch_size=2, verbose=0)
    expected = model.predict(images, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_float32_weights_and_output(policy):
    model = UNet(dtype=policy, **SMALL)
    outputs = model(_images(CHECKED_SHAPE))
    assert model.compute_dtype == policy.split("_")[1]
    assert {w.dtype for w in model.weights} == {"float32"}
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"


def test_global_mixed_policy_reaches_every_layer():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = UNet(**SMALL)
    model.build((None, 16, 16, 3))
    assert model.encoders[0].block.convs[0].compute_dtype == "bfloat16"
    assert model.output_layer.compute_dtype == "float32"


def test_summary_after_build_shows_the_layers_and_parameters():
    model = UNet(base_filters=8, depth=2)
    model.build((None, 256, 256, 3))
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    text = "\n".join(lines)
    for part in ("encoder (UNetEncoder)", "decoder (UNetDecoder)", "head (Conv2D)"):
        assert part in text
    assert f"{model.count_params():,}" in text


def test_one_body_whose_weights_keep_the_order_of_earlier_versions():
    model = UNet(**SMALL)
    model.build(CHECKED_SHAPE)
    assert isinstance(model.encoder, UNetEncoder) and isinstance(model.decoder, UNetDecoder)
    # The names of earlier versions are views of the parts.
    assert model.encoders == model.encoder.stages
    assert model.bottleneck is model.encoder.bottleneck
    assert model.decoders == model.decoder.stages[::-1]
    # Encoder stages, bottleneck, decoder stages deepest first, head: the lists of
    # `get_weights` and the optimizer's slots in files of earlier versions line up.
    parts = list(dict.fromkeys("/".join(w.path.split("/")[1:3]) for w in model.weights))
    assert parts == [
        "encoder/encoder_0",
        "encoder/encoder_1",
        "encoder/bottleneck",
        "decoder/stage_1",
        "decoder/stage_0",
        "head/kernel",
        "head/bias",
    ]


def test_depth_zero_is_refused():
    with pytest.raises(ValueError, match=r"Invalid value for argument `depth`.*Received: depth=0"):
        UNet(depth=0)


def test_filters_and_depth_that_disagree_are_refused():
    with pytest.raises(ValueError, match=r"depth=3, filters=\[4, 8, 16\]"):
        UNet(depth=3, filters=[4, 8, 16])


@pytest.mark.slow
def test_trains_on_a_toy_problem():
    # Bright squares on a dark noisy background: the mask is the square.
    rng = np.random.default_rng(0)
    images = rng.normal(0.2, 0.05, (16, 32, 32, 1)).astype("float32")
    masks = np.zeros((16, 32, 32, 1), "float32")
    for i in range(16):
        y, x = rng.integers(2, 18, 2)
        images[i, y : y + 12, x : x + 12] += 0.6
        masks[i, y : y + 12, x : x + 12] = 1
    keras.utils.set_random_seed(0)
    model = UNet(base_filters=8, depth=2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    history = model.fit(images, masks, batch_size=8, epochs=15, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    predicted = model.predict(images, verbose=0) >= 0.5
    dice = 2 * (predicted & (masks > 0)).sum() / (predicted.sum() + masks.sum())
    assert dice > 0.8
