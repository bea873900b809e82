"""Tests for `export_model` on a model built on volumes: a 3D UNet to ONNX and SavedModel,
checked by sliding-window inference as `predict` runs volumes; LiteRT and int8 refused.

The command on a volume run (export, then predict and evaluate with the export) runs in
tests/commands/test_volumes.py.
"""

import json
import os
import re

import keras
import numpy as np
import pytest
from _export_test_models import randomize_statistics

from keras_unet_seg import InferenceSpec, UNet
from keras_unet_seg.export import export_model, load_exported

_FILES = {"onnx": "model.onnx", "saved_model": "saved_model"}


def _volume_unet(num_classes=2):
    keras.utils.set_random_seed(0)
    model = UNet(base_filters=4, depth=2, num_classes=num_classes)
    model.build((None, None, None, None, 1))
    randomize_statistics(model)
    return model


@pytest.mark.parametrize(("format", "num_classes"), [("onnx", 2), ("saved_model", 1)])
def test_volume_export_round_trip(tmp_path, format, num_classes):
    model = _volume_unet(num_classes)
    path = str(tmp_path / _FILES[format])
    metadata = export_model(model, path, format, spec=InferenceSpec(tile_size=16), verbose=False)

    # Checked on random volumes of two sizes, one not a multiple of 2**depth, tiled.
    assert metadata["parity"]["image_sizes"] == [[16, 24, 20], [13, 30, 17]]
    assert metadata["parity"]["max_abs_difference"] < 1e-5
    assert metadata["parity"]["mask_pixels_differing"] == 0
    assert json.loads((tmp_path / f"{_FILES[format]}.json").read_text()) == json.loads(
        json.dumps(metadata)
    )
    assert metadata["input"]["layout"].startswith("NDHWC: (batch, depth, height, width")
    assert metadata["input"]["shape"] == [None, None, None, None, 1]
    assert metadata["output"]["shape"] == [None, None, None, None, num_classes]
    assert metadata["inference"]["tile_size"] == [16, 16, 16]  # an int: a cube

    run = load_exported(path, format)
    assert run.input_shape == (None, None, None, None, 1) and run.num_classes == num_classes
    x = np.random.default_rng(1).random((1, 13, 20, 17, 1), dtype="float32")  # odd sides
    expected = np.asarray(model(x, training=False))
    received = run(x)
    assert received.shape == (1, 13, 20, 17, num_classes)
    np.testing.assert_allclose(received, expected, atol=1e-5, rtol=0)
    if num_classes == 1:
        np.testing.assert_array_equal(received >= 0.5, expected >= 0.5)
    else:
        np.testing.assert_array_equal(received.argmax(-1), expected.argmax(-1))


def test_volume_export_of_a_fixed_size_writes_volume_steps(tmp_path):
    model = _volume_unet()
    path = str(tmp_path / "model.onnx")
    metadata = export_model(
        model, path, image_size=(8, 12, 12), spec=InferenceSpec(tta=False), verbose=False
    )
    assert metadata["input"]["shape"] == [None, 8, 12, 12, 1]
    assert metadata["input"]["size"] == "fixed"
    assert metadata["inference"]["tile_size"] == [8, 12, 12]
    assert metadata["parity"]["image_sizes"] == [[8, 12, 12]]
    assert metadata["parity"]["mask_pixels_differing"] == 0
    run = load_exported(path, "onnx")
    assert run.input_shape == (None, 8, 12, 12, 1)
    from keras_unet_seg.commands._exported import fitted_tiles

    assert fitted_tiles(run, InferenceSpec()).tile_size == (8, 12, 12)  # predict's tiles
    steps = " ".join(metadata["steps"])
    assert "transposed to (z, y, x" in steps and "no resizing" in steps
    assert "along the three axes" in steps and "flipped" not in steps
    assert "with the input's header" in metadata["steps"][-1]
    assert "each whole volume" in metadata["intensity"]["applied_to"]
    # A check volume of another size is tiled to the fixed size, as predict tiles it.
    other = np.random.default_rng(2).random((1, 9, 14, 11, 1), dtype="float32")
    tiled = export_model(
        model, str(tmp_path / "b.onnx"), image_size=(8, 12, 12), check_images=other, verbose=False
    )
    assert tiled["parity"]["image_sizes"] == [[9, 14, 11]]
    assert tiled["parity"]["mask_pixels_differing"] == 0
    message = "Expected float arrays (n, depth, height, width, 1)"
    with pytest.raises(ValueError, match=re.escape(message)):
        export_model(model, str(tmp_path / "c.onnx"), check_images=np.zeros((1, 8, 8, 8, 2)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "litert"}, "FlexMaxPool3D, that the LiteRT interpreter cannot run"),
        ({"quantize": {"calibration": "x"}}, "Expected None for a model built on volumes"),
        ({"image_size": (16, 16)}, "Invalid value for argument `image_size`"),
        ({"spec": InferenceSpec(tile_size=(16, 32))}, "a tile_size of the model's 3 spatial"),
    ],
)
def test_volume_export_refuses_before_writing(tmp_path, kwargs, message):
    model = _volume_unet()
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        export_model(model, str(tmp_path / "model.tflite"), **{"format": "onnx", **kwargs})
    if "format" in kwargs:  # which formats do work
        assert "('onnx', 'saved_model', 'openvino')" in str(raised.value)
    assert os.listdir(tmp_path) == []
