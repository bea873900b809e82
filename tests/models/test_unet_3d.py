"""`UNet` and `UNetPlusPlus` on volumes: the same classes, 3D by the rank of the input."""

import keras
import numpy as np
import pytest
from _unet_test_blocks import CicekBlock, CicekDecoderStage

from keras_unet_seg import AttentionDecoderStage, UNet, UNetPlusPlus
from keras_unet_seg.encoders import ApplicationEncoder
from keras_unet_seg.layers import plan_pool_sizes

TINY = {"base_filters": 4, "depth": 2}
ODD = (1, 37, 50, 23, 1)  # a volume whose sizes are no multiple of 2**depth


def _volume(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype="float32")


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (UNet, {}),
        (UNet, {"residual": True, "decoder_stage": AttentionDecoderStage}),
        (UNet, {"pooling": "conv", "upsampling": "nearest", "normalization": "instance"}),
        (UNetPlusPlus, {"decoder_stage": AttentionDecoderStage, "residual": True}),
    ],
)
def test_an_odd_volume_gives_a_mask_of_its_size(cls, kwargs):
    model = cls(**TINY, **kwargs)
    outputs = model(_volume(ODD))
    assert tuple(outputs.shape) == ODD
    assert np.isfinite(keras.ops.convert_to_numpy(outputs)).all()
    assert model.head.kernel.shape == (1, 1, 1, 4, 1)


def test_unet_plus_plus_with_deep_supervision_gives_one_volume_a_depth():
    model = UNetPlusPlus(**TINY, deep_supervision=True)
    assert [tuple(y.shape) for y in model(_volume(ODD))] == [ODD, ODD]


def test_a_thin_volume_is_pooled_in_plane_only():
    # 5 slices: too few to pool (nnU-Net's rule keeps an axis of fewer than 8 voxels).
    pool_sizes = plan_pool_sizes((5, 30, 17), depth=2)
    assert pool_sizes == [(1, 2, 2), (1, 2, 2)]
    model = UNet(**TINY, pool_sizes=pool_sizes)
    assert tuple(model(_volume((1, 5, 30, 17, 1))).shape) == (1, 5, 30, 17, 1)
    # Padded to (5, 32, 20): the depth is neither pooled nor padded.
    features = model.encoder.compute_output_shape((1, 5, 32, 20, 1))
    assert features == [(1, 5, 32, 20, 4), (1, 5, 16, 10, 8), (1, 5, 8, 5, 16)]


@pytest.mark.one_backend
def test_pool_sizes_of_the_wrong_length_or_with_an_encoder_are_refused():
    with pytest.raises(ValueError, match=r"a list of 2 pool sizes .*Received: pool_sizes=\[2\]"):
        UNet(**TINY, pool_sizes=[2])
    with pytest.raises(ValueError, match="None with an `encoder`"):
        UNet(encoder="resnet50", pool_sizes=[2, 2, 2, 2, 2])


@pytest.mark.one_backend
def test_a_pretrained_2d_encoder_refuses_a_volume():
    encoder = ApplicationEncoder("resnet50")
    with pytest.raises(ValueError, match=r"images \(batch, height, width, channels\) for the 2D"):
        encoder.compute_output_shape((1, 8, 32, 32, 3))


def test_a_3d_unet_saves_and_loads_with_identical_outputs(tmp_path):
    model = UNet(**TINY, num_classes=2, residual=True, pool_sizes=[(1, 2, 2), 2])
    model.build((None, None, None, None, 1))
    # Every weight away from its initial value (the variances positive), as after
    # training, without the seconds a 3D training step takes to trace.
    rng = np.random.default_rng(1)
    for weight in model.weights:
        weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
    volumes = _volume((2, 6, 12, 10, 1))
    expected = model.predict(volumes, verbose=0)
    model.save(tmp_path / "volume.keras")
    loaded = keras.models.load_model(tmp_path / "volume.keras", safe_mode=True)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.predict(volumes, verbose=0), expected, atol=1e-6)


def test_config_round_trip_keeps_the_pool_sizes_and_a_2d_config_has_none():
    model = UNetPlusPlus(**TINY, pool_sizes=[(1, 2, 2), (2, 2, 2)])
    config = model.get_config()
    assert config["pool_sizes"] == [(1, 2, 2), (2, 2, 2)]
    assert UNetPlusPlus.from_config(config).get_config() == config
    # Only when given: a 2D config is the one earlier versions wrote and read.
    assert "pool_sizes" not in UNet(**TINY).get_config()


@pytest.mark.one_backend
def test_a_default_2d_unet_keeps_its_parameter_count():
    model = UNet()
    model.build((None, None, None, 3))
    assert model.count_params() == 31_049_409  # measured on main at 3afc9ea, before volumes


@pytest.mark.one_backend
def test_the_3d_unet_of_cicek_et_al():
    """The paper counts 19,069,955 parameters; the blocks give 19,077,859 (+7,904).

    Paper: 3 channels in, 3 labels; per level two 3x3x3 convolutions with batch
    normalization before each ReLU, 32/64 -> 64/128 -> 128/256 -> 256/512 and back
    through 2x2x2 transposed convolutions that keep the channels. The paper's number
    is every kernel (19,067,616), a bias for each block convolution's channel (2,336)
    and the head's 3 biases, without the 896 biases of the three transposed
    convolutions: our model with `normalization=None` has 19,070,851 = paper + 896.
    With batch normalization a convolution carries no bias (-2,336) and each of the
    2,336 normalized channels keeps gamma, beta, moving mean and variance (+9,344):
    19,069,955 + 896 - 2,336 + 9,344 = 19,077,859.
    """
    arguments = {
        "num_classes": 3,
        "filters": [64, 128, 256, 512],  # the channels of each level's second conv
        "conv_block": CicekBlock,  # the first conv gives half of them: 32, 64, 128, 256
        "decoder_stage": CicekDecoderStage,  # 2x2x2 up-convolutions keep the channels
        "output_activation": "softmax",
    }
    model = UNet(**arguments)  # batch normalization, ReLU, max pooling, as the paper
    model.build((None, None, None, None, 3))
    assert model.count_params() == 19_077_859
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 19_069_955 + 896 - 2_336 + 2 * 2_336
    without_normalization = UNet(**arguments, normalization=None)
    without_normalization.build((None, None, None, None, 3))
    assert without_normalization.count_params() == 19_069_955 + 896
