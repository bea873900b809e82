import keras
import numpy as np
import pytest

from keras_unet_seg import AttentionDecoderStage
from keras_unet_seg.testing import check_layer


def test_standard_checks():
    check_layer(
        AttentionDecoderStage,
        {"filters": 4, "inter_filters": 2},
        [(2, 8, 8, 8), (2, 16, 16, 4)],
        (2, 16, 16, 4),
    )


def test_gate_scales_the_skip():
    # psi with a zero kernel and bias b gates every pixel by sigmoid(b).
    stage = AttentionDecoderStage(4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 4, 8)).astype("float32")
    skip = rng.standard_normal((1, 8, 8, 4)).astype("float32")
    stage([x, skip])
    stage.psi.kernel.assign(np.zeros(stage.psi.kernel.shape, "float32"))
    stage.psi.bias.assign(np.full((1,), 2.0, "float32"))
    gated = skip / (1 + np.exp(-2.0))
    expected = stage.block(keras.ops.concatenate([stage.upsample(x), gated], axis=-1))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(stage([x, skip])),
        keras.ops.convert_to_numpy(expected),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.one_backend
def test_default_inter_filters_is_half_the_filters():
    stage = AttentionDecoderStage(8)
    stage.build([(None, 4, 4, 16), (None, 8, 8, 8)])
    assert stage.theta.kernel.shape == (1, 1, 8, 4)


def test_the_gate_of_a_volume_stage_has_1x1x1_convolutions():
    stage = AttentionDecoderStage(8)
    x = np.random.default_rng(0).random((1, 3, 4, 5, 16), dtype="float32")
    skip = np.random.default_rng(1).random((1, 6, 8, 10, 8), dtype="float32")
    assert tuple(stage([x, skip]).shape) == (1, 6, 8, 10, 8)
    assert stage.theta.kernel.shape == (1, 1, 1, 8, 4)
    assert stage.psi.kernel.shape == (1, 1, 1, 4, 1)
