"""Tests for `keras_unet_seg.export.folding`: batch-normalization folding.

Folding is checked on every normalization / residual / decoder combination the
library builds. Models: base filters 4, depth 2 or 3, with random batch
statistics so that folding matters.
"""

import itertools

import keras
import numpy as np
import pytest
from _export_test_models import randomize_statistics as _randomize_statistics
from _export_test_models import small_unet as _unet

from keras_unet_seg import AttentionDecoderStage, ConvBlock, DecoderStage, UNet
from keras_unet_seg._sublayers import sublayers
from keras_unet_seg.export import fold_batch_normalization


@keras.saving.register_keras_serializable(package="keras_unet_seg_export_tests")
class GatedBlock(ConvBlock):
    """A user's block built on ConvBlock: its output times a learned channel gate."""

    def build(self, input_shape):
        super().build(input_shape)
        self.gate = self.add_weight(shape=(self.filters,), initializer="ones", name="gate")

    def call(self, inputs, training=None):
        return super().call(inputs, training=training) * self.gate


@keras.saving.register_keras_serializable(package="keras_unet_seg_export_tests")
class NormAfterActivation(keras.layers.Layer):
    """A block whose batch normalization follows an activation: not foldable."""

    def __init__(self, normalization="batch", **kwargs):
        super().__init__(**kwargs)
        self.normalization = normalization
        self.conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")
        self.norm = keras.layers.BatchNormalization(name="norm") if normalization else None

    def build(self, input_shape):
        self.conv.build(input_shape)
        if self.norm is not None:
            self.norm.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = self.conv(inputs)
        return self.norm(x, training=training) if self.norm is not None else x

    def get_config(self):
        return {**super().get_config(), "normalization": self.normalization}


@keras.saving.register_keras_serializable(package="keras_unet_seg_export_tests")
class NormAfterShift(keras.layers.Layer):
    """A block that builds `conv -> norm` but calls the norm on the convolution's output
    plus one: its config turns the norm off, and folding would change the outputs."""

    def __init__(self, normalization="batch", **kwargs):
        super().__init__(**kwargs)
        self.normalization = normalization
        self.conv = keras.layers.Conv2D(
            4, 3, padding="same", use_bias=not normalization, name="conv"
        )
        self.norm = keras.layers.BatchNormalization(name="norm") if normalization else None

    def build(self, input_shape):
        self.conv.build(input_shape)
        if self.norm is not None:
            self.norm.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = self.conv(inputs) + 1.0
        return self.norm(x, training=training) if self.norm is not None else x

    def get_config(self):
        return {**super().get_config(), "normalization": self.normalization}


def _layers_of(model, cls):
    return [layer for layer in sublayers(model) if isinstance(layer, cls)]


# --------------------------------------------------------------------------- folding

_NORMALIZATIONS = ["batch", "group", "instance", "layer", None]


@pytest.mark.parametrize(
    ("normalization", "residual", "decoder_stage"),
    itertools.product(_NORMALIZATIONS, [False, True], [DecoderStage, AttentionDecoderStage]),
)
def test_folded_model_equals_original(normalization, residual, decoder_stage):
    model = _unet(
        num_classes=3, normalization=normalization, residual=residual, decoder_stage=decoder_stage
    )
    folded = fold_batch_normalization(model)
    x = np.random.default_rng(1).random((2, 18, 13, 3), dtype="float32")
    expected = np.asarray(model(x, training=False))
    received = np.asarray(folded(x))
    np.testing.assert_allclose(received, expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(received.argmax(-1), expected.argmax(-1))
    assert not _layers_of(folded, keras.layers.BatchNormalization)
    if normalization in ("group", "instance", "layer"):  # kept, with their weights
        assert len(folded.weights) == len(model.weights)
    if normalization == "batch":
        assert folded.normalization is None
        assert all(conv.use_bias for conv in _layers_of(folded, keras.layers.Conv2D))


def test_fold_injected_block_strided_pooling_and_mixed_precision():
    model = _unet(
        conv_block=GatedBlock, pooling="conv", normalization={"type": "batch", "momentum": 0.99}
    )
    for variable in model.weights:
        if variable.path.endswith("gate"):
            variable.assign(np.linspace(0.5, 1.5, variable.shape[0]))
    folded = fold_batch_normalization(model)
    assert isinstance(folded.encoders[0].block, GatedBlock)
    x = np.random.default_rng(2).random((1, 36, 20, 3), dtype="float32")
    np.testing.assert_allclose(folded(x), model(x, training=False), atol=1e-5, rtol=0)

    bf16 = UNet.from_config({**model.get_config(), "dtype": "mixed_bfloat16"})
    bf16.build((None, None, None, 3))
    bf16.set_weights(model.get_weights())
    folded_bf16 = fold_batch_normalization(bf16)
    assert folded_bf16.dtype_policy.name == "mixed_bfloat16"
    # bfloat16 keeps 8 bits of mantissa: the two roundings differ by a few 1e-3.
    np.testing.assert_allclose(folded_bf16(x), model(x, training=False), atol=5e-2, rtol=0)


def test_folded_model_saves_and_loads_in_safe_mode(tmp_path):
    model = _unet(residual=True, decoder_stage=AttentionDecoderStage)
    folded = fold_batch_normalization(model)
    path = tmp_path / "folded.keras"
    folded.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(3).random((1, 32, 32, 3), dtype="float32")
    np.testing.assert_array_equal(loaded(x), folded(x))
    assert not _layers_of(loaded, keras.layers.BatchNormalization)


def test_fold_keeps_batch_normalization_that_no_config_turns_off():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    outputs = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, outputs)
    _randomize_statistics(model)
    folded = fold_batch_normalization(model)
    assert len(_layers_of(folded, keras.layers.BatchNormalization)) == 1
    x = np.random.default_rng(4).random((1, 8, 8, 3), dtype="float32")
    np.testing.assert_allclose(folded(x), model(x), atol=1e-6, rtol=0)


def test_fold_refuses_batch_normalization_after_an_activation():
    model = keras.Sequential([keras.Input((8, 8, 3)), NormAfterActivation()])
    with pytest.raises(ValueError, match=r"Expected every batch normalization .*/norm/beta"):
        fold_batch_normalization(model)


def test_fold_refuses_a_normalization_called_on_something_else():
    model = keras.Sequential([keras.Input((8, 8, 3)), NormAfterShift()])
    _randomize_statistics(model)
    with pytest.raises(ValueError, match=r"whose folded copy differs from it by"):
        fold_batch_normalization(model)


def test_fold_refuses_an_unbuilt_model():
    with pytest.raises(ValueError, match="Expected a built model"):
        fold_batch_normalization(UNet(base_filters=4, depth=2))


def test_folded_3d_model_equals_original():
    keras.utils.set_random_seed(0)
    model = UNet(base_filters=4, depth=2, residual=True, decoder_stage=AttentionDecoderStage)
    model.build((None, None, None, None, 1))
    _randomize_statistics(model)
    folded = fold_batch_normalization(model)
    norms = [x for x in sublayers(folded) if isinstance(x, keras.layers.BatchNormalization)]
    assert not norms
    x = np.random.default_rng(1).random((1, 9, 12, 10, 1), dtype="float32")
    np.testing.assert_allclose(folded(x), model(x, training=False), atol=1e-5)
