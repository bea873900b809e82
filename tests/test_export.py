"""Batch-normalization folding and export: ONNX, LiteRT, SavedModel (and OpenVINO).

Folding is checked on every normalization / residual / decoder combination the
library builds; exports are run in their own runtimes at 64x64 and 100x75 (not a
multiple of 2**depth), binary and multi-class; the ONNX Runtime program of
docs/guide/deploying.md is run in a subprocess without Keras. Models: base
filters 4, depth 2 or 3, with random batch statistics so that folding matters.
"""

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet_seg import AttentionDecoderStage, ConvBlock, DecoderStage, UNet
from keras_unet_seg.cli import main
from keras_unet_seg.data import read_image
from keras_unet_seg.export import export_model, fold_batch_normalization, load_exported

ROOT = Path(__file__).resolve().parents[1]


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


def _randomize_statistics(model, seed=0):
    """Moving statistics, scales and offsets far from their initial values."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        name = variable.path.rsplit("/", 1)[-1]
        if name in ("moving_mean", "beta"):
            variable.assign(rng.normal(0.0, 0.2, variable.shape))
        elif name in ("moving_variance", "gamma"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape))


def _unet(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    model = UNet(base_filters=4, **{"depth": 2, **kwargs})
    model.build((None, None, None, 3))
    _randomize_statistics(model, seed)
    return model


def _layers_of(model, cls):
    return [layer for layer in model._flatten_layers() if isinstance(layer, cls)]


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


def test_fold_refuses_an_unbuilt_model():
    with pytest.raises(ValueError, match="Expected a built model"):
        fold_batch_normalization(UNet(base_filters=4, depth=2))


# --------------------------------------------------------------------------- export

_FORMATS = {"onnx": "model.onnx", "litert": "model.tflite", "saved_model": "saved_model"}


@pytest.mark.parametrize(
    ("format", "num_classes"),
    # ONNX binary runs in the command's test, LiteRT multi-class in the fixed-size one.
    [("onnx", 3), ("litert", 1), ("saved_model", 1)],
)
def test_export_round_trip(tmp_path, format, num_classes):
    model = _unet(num_classes=num_classes, depth=3)
    path = str(tmp_path / _FORMATS[format])
    metadata = export_model(model, path, format, threshold=0.4, verbose=False)

    assert metadata["parity"]["image_sizes"] == [[64, 64], [100, 75]]
    assert metadata["parity"]["max_abs_difference"] < 1e-5
    assert metadata["parity"]["mask_pixels_differing"] == 0
    assert json.loads(Path(path + ".json").read_text()) == json.loads(json.dumps(metadata))
    assert metadata["input"]["shape"] == [None, None, None, 3]
    assert metadata["output"]["activation"] == ("sigmoid" if num_classes == 1 else "softmax")
    assert len(metadata["classes"]) == max(2, num_classes)

    run = load_exported(path, format)
    for height, width in [(64, 64), (100, 75)]:  # 100x75: not a multiple of 2**3
        x = np.random.default_rng(height).random((2, height, width, 3), dtype="float32")
        expected = np.asarray(model(x, training=False))
        received = run(x)
        assert received.shape == (2, height, width, num_classes)
        np.testing.assert_allclose(received, expected, atol=1e-5, rtol=0)
        if num_classes == 1:
            np.testing.assert_array_equal(received >= 0.4, expected >= 0.4)
        else:
            np.testing.assert_array_equal(received.argmax(-1), expected.argmax(-1))


def test_export_openvino(tmp_path):
    pytest.importorskip("openvino", reason="openvino is not in the test extra")
    model = _unet()
    path = str(tmp_path / "model.xml")
    metadata = export_model(model, path, "openvino", verbose=False)
    assert metadata["parity"]["max_abs_difference"] < 1e-5
    x = np.random.default_rng(5).random((1, 100, 75, 3), dtype="float32")
    np.testing.assert_allclose(load_exported(path, "openvino")(x), model(x), atol=1e-5, rtol=0)


def test_export_fixed_size_and_float16(tmp_path):
    model = _unet(num_classes=2)
    path = str(tmp_path / "model.tflite")
    metadata = export_model(
        model, path, "litert", image_size=(100, 75), precision="float16", verbose=False
    )
    assert metadata["input"]["shape"] == [None, 100, 75, 3]
    assert metadata["parity"]["image_sizes"] == [[100, 75]]
    assert 0 < metadata["parity"]["max_abs_difference"] < 1e-2
    with pytest.raises(ValueError, match=r"Expected float arrays \(n, 100, 75, 3\)"):
        export_model(
            model, path, "litert", image_size=(100, 75), check_images=np.zeros((1, 64, 64, 3))
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "tflite"}, "Invalid value for argument `format`. Expected one of"),
        ({"precision": "float16"}, "Expected 'float32' for format 'onnx'"),
        ({"precision": "int8"}, "Invalid value for argument `precision`"),
        ({"image_size": (0, 8)}, "Invalid value for argument `image_size`"),
    ],
)
def test_export_refuses_bad_arguments(tmp_path, kwargs, message):
    model = _unet()
    with pytest.raises(ValueError, match=re.escape(message)):
        export_model(model, str(tmp_path / "m.onnx"), **kwargs)


# --------------------------------------------------------------------------- command and docs


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory):
    """A saved model with a run config (percentile intensity), exported by the command."""
    root = tmp_path_factory.mktemp("export")
    model = _unet(num_classes=1, depth=3, seed=6)
    model.save(root / "best.keras")
    intensity = {"mode": "percentile", "low": 2.0, "high": 99.5, "per_channel": False}
    config = {"intensity": {**intensity, "epsilon": 1e-6}, "color_mode": "rgb"}
    (root / "config.json").write_text(json.dumps({**config, "input_channels": 3}))
    pixels = np.random.default_rng(7).integers(0, 256, (75, 100, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "photo.png")
    argv = ["export", "--model", str(root / "best.keras"), "--format", "onnx"]
    code = main([*argv, "--out", str(root / "model.onnx"), "--images", str(root / "photo.png")])
    assert code == 0
    return root


def test_export_command_writes_the_run_intensity(exported_run, capsys):
    metadata = json.loads((exported_run / "model.onnx.json").read_text())
    assert metadata["intensity"]["mode"] == "percentile"
    assert (metadata["intensity"]["low"], metadata["intensity"]["high"]) == (2.0, 99.5)
    assert "percentile" in metadata["intensity"]["formula"]
    assert metadata["parity"]["image_sizes"] == [[75, 100]]
    assert metadata["batch_normalization_folded"] is True
    code = main(
        [
            *("export", "--model", str(exported_run / "best.keras"), "--format", "onnx"),
            *("--out", str(exported_run / "x.onnx"), "--precision", "float16"),
        ]
    )
    assert code == 1
    assert "Expected 'float32' for format 'onnx'" in capsys.readouterr().err


def test_deploying_page_example_runs_without_keras(exported_run):
    page = (ROOT / "docs" / "guide" / "deploying.md").read_text(encoding="utf-8")
    (program,) = [
        block for block in re.findall(r"```python\n(.*?)```", page, re.S) if "onnxruntime" in block
    ]
    assert len(program.strip().splitlines()) <= 32
    check = (
        "\nimport sys\nassert not {'keras', 'tensorflow', 'keras_unet_seg'} & set(sys.modules)\n"
    )
    subprocess.run(
        [sys.executable, "-c", program + check], cwd=exported_run, check=True, timeout=120
    )
    mask = np.asarray(Image.open(exported_run / "mask.png"))

    model = keras.saving.load_model(exported_run / "best.keras")
    config = json.loads((exported_run / "config.json").read_text())
    image = read_image(exported_run / "photo.png", "rgb", config["intensity"])
    expected = np.asarray(model(image[None]))[0, ..., 0] >= 0.5
    assert mask.shape == (75, 100)
    np.testing.assert_array_equal(mask == 255, expected)
    assert 0 < expected.mean() < 1  # both values occur: the comparison means something


def test_predict_folds_by_default_and_no_fold_gives_the_same_masks(exported_run, capsys):
    masks = {}
    for flags in ([], ["--no-fold"]):
        out = exported_run / ("unfolded" if flags else "folded")
        argv = ["predict", str(exported_run / "photo.png"), "--model"]
        code = main([*argv, str(exported_run / "best.keras"), "--out", str(out), *flags])
        assert code == 0
        folded_line = "Batch normalization folded into the convolutions" in capsys.readouterr().out
        assert folded_line is not bool(flags)
        masks[bool(flags)] = np.asarray(Image.open(out / "masks" / "photo.png"))
    np.testing.assert_array_equal(masks[False], masks[True])
    assert 0 < np.mean(masks[False] == 255) < 1
