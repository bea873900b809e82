"""Tests for `keras_unet_seg.export.quantizing`: int8 exports, calibrated and checked.

Models: base filters 4, depth 2 (random batch statistics), and a MobileNetV3Small
encoder; calibrated and checked on synthetic 64x64 pairs, run at 64x64 and 100x75.
The command's refusal runs in tests/commands/test_export_int8.py, `predict --model
model.onnx` against the docs' ONNX Runtime program in tests/test_one_answer.py.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from _export_test_models import small_unet

from keras_unet_seg import UNet
from keras_unet_seg.data import make_synthetic_dataset
from keras_unet_seg.export import export_model, load_exported

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """Split folders of 6 training and 3 validation pairs of 64x64, binary and 3 classes."""
    root = tmp_path_factory.mktemp("quantize")
    return {
        classes: make_synthetic_dataset(
            root / f"classes_{classes}", num_train=6, num_val=3, num_classes=classes
        )
        for classes in (1, 3)
    }


def _round_trip(model, path, format, data, num_classes):
    quantize = {"calibration": data, "max_dice_drop": 1.0}
    written = export_model(model, path, format, quantize=quantize, verbose=False)
    quantization = written["quantization"]
    assert written["precision"] == "int8"
    assert quantization["calibration_images"] == [f"{i:05d}.png" for i in range(6)]
    assert quantization["quality"]["validation_images"] == [f"{i:05d}.png" for i in range(3)]
    assert 0 <= quantization["quality"]["mask_pixels_differing_fraction"] <= 1
    assert json.loads(Path(path + ".json").read_text()) == json.loads(json.dumps(written))
    run = load_exported(path, format)
    assert run.input_shape == (None, None, None, 3) and run.num_classes == num_classes
    for height, width in [(64, 64), (100, 75)]:  # 100x75: not a multiple of 2**depth
        x = np.random.default_rng(height).random((2, height, width, 3), dtype="float32")
        expected = np.asarray(model(x, training=False))
        received = run(x)
        assert received.shape == expected.shape and received.dtype == np.float32
        # Quantized, not exact: the probabilities follow float32's.
        assert np.mean(np.abs(received - expected)) < 0.05
    return written


@pytest.mark.parametrize("num_classes", [1, 3])
def test_int8_onnx_round_trip(tmp_path, shapes, num_classes):
    model = small_unet(num_classes=num_classes)
    path = str(tmp_path / "model.onnx")
    written = _round_trip(model, path, "onnx", shapes[num_classes], num_classes)
    assert "QDQ, int8 weights per output channel" in written["quantization"]["how"]
    # Every convolution reads int8 weights, unless kept in float32.
    assert _float_convolutions(path) == 0


def test_int8_onnx_keeps_the_first_convolution_and_the_head_in_float(tmp_path, shapes):
    path = str(tmp_path / "model.onnx")
    keep_float = ("first_convolution", "head")
    quantize = {"calibration": shapes[1], "max_dice_drop": 1.0, "keep_float": keep_float}
    written = export_model(small_unet(), path, quantize=quantize, verbose=False)
    assert written["quantization"]["kept_in_float32"] == ["first_convolution", "head"]
    assert _float_convolutions(path) == 2


def _float_convolutions(path):
    """The convolutions of an ONNX file whose weights no DequantizeLinear gives."""
    import onnx

    graph = onnx.load(path).graph
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    convolutions = [node for node in graph.node if node.op_type in ("Conv", "ConvTranspose")]
    return sum(node.input[1] not in dequantized for node in convolutions)


def test_int8_litert_round_trip(tmp_path, shapes):
    pytest.importorskip("ai_edge_litert")
    path = str(tmp_path / "model.tflite")
    written = _round_trip(small_unet(), path, "litert", shapes[1], 1)
    assert "full-integer" in written["quantization"]["how"]


def test_int8_encoder_model(tmp_path, shapes):
    model = UNet(encoder="mobilenetv3small", decoder_filters=[4, 4, 8, 8, 8])
    model.build((None, None, None, 3))
    _round_trip(model, str(tmp_path / "model.onnx"), "onnx", shapes[1], 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "saved_model"}, "Expected one of ('onnx', 'litert') with quantize='int8'"),
        ({"method": "int4"}, "Invalid value for argument `quantize`"),
        ({"calibration": None}, "Invalid value for argument `calibration`"),
        ({"keep_float": ("tail",)}, "Invalid value for argument `keep_float`"),
        ({"format": "litert", "keep_float": ("head",)}, "keep_float is for 'onnx'"),
        ({"max_dice_drop": 2}, "Invalid value for argument `max_dice_drop`"),
        ({"num_calibration": 0}, "Invalid value for argument `num_calibration`"),
        ({"precision": "float16", "format": "litert"}, "Expected 'float32' with `quantize`"),
    ],
)
def test_int8_refuses_bad_arguments(tmp_path, shapes, kwargs, message):
    exporting = {k: kwargs.pop(k) for k in ("format", "precision") if k in kwargs}
    quantize = {"calibration": shapes[1], **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        export_model(small_unet(), str(tmp_path / "m.onnx"), quantize=quantize, **exporting)
    assert os.listdir(tmp_path) == []


def test_int8_needs_masks_to_check_on(tmp_path, shapes):
    images = os.path.join(shapes[1], "train", "images")
    with pytest.raises(ValueError, match="Expected a folder of images and masks to check"):
        export_model(small_unet(), str(tmp_path / "m.onnx"), quantize={"calibration": images})
