import warnings

import keras
import numpy as np
import pytest

from keras_unet_seg import ConvBlock
from keras_unet_seg.testing import check_layer


@pytest.mark.parametrize(
    "kwargs",
    [
        {"filters": 8},
        {"filters": 8, "normalization": None, "activation": "gelu"},
        {"filters": 8, "normalization": "group", "residual": True},
        {"filters": 3, "normalization": "instance", "residual": True},
        {"filters": 8, "normalization": {"type": "layer", "epsilon": 1e-5}, "dropout": 0.2},
        {"filters": 8, "num_convs": 3, "kernel_size": 5, "kernel_initializer": "glorot_uniform"},
    ],
)
def test_standard_checks(kwargs):
    check_layer(ConvBlock, kwargs, (2, 16, 16, 3), (2, 16, 16, kwargs["filters"]))


@pytest.mark.parametrize(
    ("normalization", "expected"),
    [
        # conv 3->16 and 16->16, 3x3, with bias: 3*9*16+16 + 16*9*16+16
        (None, 448 + 2320),
        # no conv bias; BatchNormalization keeps 4 values a channel
        ("batch", 432 + 2304 + 2 * 4 * 16),
        # GroupNormalization keeps gamma and beta
        ("group", 432 + 2304 + 2 * 2 * 16),
    ],
)
def test_parameter_count(normalization, expected):
    block = ConvBlock(16, normalization=normalization)
    block.build((None, 8, 8, 3))
    assert block.count_params() == expected


def test_residual_projection_only_when_channels_differ():
    same, different = ConvBlock(3, residual=True), ConvBlock(8, residual=True)
    same.build((None, 8, 8, 3))
    different.build((None, 8, 8, 3))
    assert same.shortcut is None
    assert different.shortcut is not None
    assert different.shortcut.kernel.shape == (1, 1, 3, 8)


def test_residual_adds_input_before_last_activation():
    # With zero kernels and no normalization the convolutions output zeros,
    # so the block is relu(0 + x).
    block = ConvBlock(3, residual=True, normalization=None, kernel_initializer="zeros")
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(x)), np.maximum(x, 0), atol=1e-6)


def _built(block, input_shape=(None, 8, 8, 3)):
    """The block built: its layers are made at build, 2D or 3D by the input."""
    block.build(input_shape)
    return block


def test_batch_normalization_momentum_defaults_to_point_nine_and_is_configurable():
    default = _built(ConvBlock(4))
    custom = _built(ConvBlock(4, normalization={"type": "batch", "momentum": 0.99}))
    assert {n.momentum for n in default.norms} == {0.9}
    assert {n.momentum for n in custom.norms} == {0.99}


def test_group_count_falls_back_to_a_divisor_of_the_channels():
    block = _built(ConvBlock(12, normalization="group"))
    assert block.norms[0].groups == 4


def test_no_dropout_layer_when_rate_is_zero():
    assert _built(ConvBlock(4)).dropout_layer is None
    assert _built(ConvBlock(4, dropout=0.5)).dropout_layer.rate == 0.5


# --- Volumes: the same block, 3D by the rank of its input ---


def test_standard_checks_on_a_volume():
    check_layer(
        ConvBlock,
        {"filters": 4, "normalization": "group", "residual": True},
        (2, 5, 6, 7, 3),
        (2, 5, 6, 7, 4),
    )


def test_a_volume_of_odd_size_keeps_its_size_with_3d_kernels():
    block = ConvBlock(4, residual=True)
    x = np.random.default_rng(0).random((1, 37, 50, 23, 1), dtype="float32")
    assert tuple(block(x).shape) == (1, 37, 50, 23, 4)
    assert [tuple(c.kernel.shape) for c in block.convs] == [(3, 3, 3, 1, 4), (3, 3, 3, 4, 4)]
    assert tuple(block.shortcut.kernel.shape) == (1, 1, 1, 1, 4)


def test_the_parameter_count_of_a_3d_block():
    block = _built(ConvBlock(16), (None, 8, 8, 8, 3))
    # no conv bias; 3x3x3 kernels 3->16 and 16->16; batch norm keeps 4 values a channel
    assert block.count_params() == 27 * 3 * 16 + 27 * 16 * 16 + 2 * 4 * 16


def test_an_input_of_another_rank_is_refused():
    with pytest.raises(ValueError, match=r"or volumes .*Received: input_shape=\(1, 8, 3\)"):
        ConvBlock(4)(np.zeros((1, 8, 3), "float32"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"filters": 0},
            "Invalid value for argument `filters`. Expected a positive integer. "
            "Received: filters=0",
        ),
        ({"filters": 4, "num_convs": 1.5}, "argument `num_convs`"),
        ({"filters": 4, "normalization": "batchnorm"}, "Received: normalization='batchnorm'"),
        ({"filters": 4, "normalization": {"type": "batch", "groups": 2}}, "options of 'batch'"),
        ({"filters": 4, "activation": "nope"}, "Received: activation='nope'"),
        ({"filters": 4, "dropout": 1.0}, r"Expected a float in \[0, 1\). Received: dropout=1.0"),
        ({"filters": 4, "residual": "yes"}, "Received: residual='yes'"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvBlock(**kwargs)


def test_activations_is_a_deprecated_alias_of_activation_layers():
    block = _built(ConvBlock(4, num_convs=3))
    assert [layer.name for layer in block.activation_layers] == ["act_0", "act_1", "act_2"]
    with pytest.warns(DeprecationWarning, match="activation_layers"):
        assert block.activations is block.activation_layers
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = block.no_such_thing


def test_saving_and_loading_do_not_read_the_deprecated_alias(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 3)), ConvBlock(4)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.save(tmp_path / "m.keras")
        keras.models.load_model(tmp_path / "m.keras")
    assert not [w for w in caught if "ConvBlock.activations" in str(w.message)]
