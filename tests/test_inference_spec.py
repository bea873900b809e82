"""`InferenceSpec`: checked, JSON round trips, derived from a run's config.json in one
place; `predict_tiled(scale=)` resizes as `tf.image.resize` does; `predict_directory`
takes a spec or the separate arguments, never both."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_unet_seg import InferenceSpec, predict_tiled
from keras_unet_seg.inference import predict_directory
from keras_unet_seg.inference._resize import resize_bilinear


def test_a_spec_is_checked_and_round_trips_through_json():
    spec = InferenceSpec(channels=4, intensity="percentile", scale=(0.5, 2), tta=True)
    assert spec.color_mode == "rgba" and spec.scale == (0.5, 2.0)
    assert spec.intensity["mode"] == "percentile" and spec.intensity["high"] == 99.8
    assert spec.tta == ("horizontal", "vertical", "both")
    config = json.loads(json.dumps(spec.get_config()))
    assert config["tile_size"] == [256, 256]
    assert InferenceSpec.from_config(config) == spec
    assert InferenceSpec(channels=2).color_mode == "native"
    assert set(spec.tiled_arguments()) == {
        *("tile_size", "overlap", "blend", "sigma_scale", "tta", "scale"),
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.5}, "argument `threshold`"),
        ({"scale": 0}, "argument `scale`"),
        ({"tile_size": 0}, "argument `tile_size`"),
        ({"precision": "int8"}, "argument `precision`"),
        ({"color_mode": "cmyk"}, "argument `color_mode`"),
        ({"intensity": "loud"}, "argument `intensity`"),
    ],
)
def test_a_spec_refuses_invalid_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InferenceSpec(**kwargs)


def test_a_runs_spec_comes_from_its_config(tmp_path):
    config = {
        "color_mode": "grayscale",
        "input_channels": 1,
        "intensity": {"mode": "minmax"},
        "training_scale": [0.5, 0.25],
        "epochs": 3,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    spec = InferenceSpec.from_run(tmp_path / "best.keras")
    assert spec == InferenceSpec.from_run(tmp_path)
    assert (spec.color_mode, spec.channels, spec.scale) == ("grayscale", 1, (0.5, 0.25))
    assert spec.intensity["mode"] == "minmax" and spec.threshold == 0.5
    # A run from before the intensity options trained with "scale"; no config: defaults.
    assert InferenceSpec.from_run_config({"epochs": 1}).intensity["mode"] == "scale"
    assert InferenceSpec.from_run_config({}, channels=1) == InferenceSpec(channels=1)
    # A run on volumes tiles with its training patch, as predict tiles it; images do not.
    volume_run = {"image_size": [8, 16, 16], "input_channels": 1, "intensity": "auto"}
    assert InferenceSpec.from_run_config(volume_run).tile_size == (8, 16, 16)
    image_run = {"image_size": [64, 64], "input_channels": 3}
    assert InferenceSpec.from_run_config(image_run).tile_size == InferenceSpec().tile_size
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        InferenceSpec.from_run(tmp_path / "empty")


@pytest.mark.parametrize("size", [(35, 70), (9, 5), (64, 48)])
def test_resize_is_tf_image_resize_bilinear(size):
    images = np.random.default_rng(0).random((2, 24, 17, 3), dtype=np.float32)
    expected = tf.image.resize(images, size, method="bilinear").numpy()
    np.testing.assert_allclose(resize_bilinear(images, size), expected, atol=2e-6, rtol=0)


def _pixelwise_model():
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs)
    return keras.Model(inputs, outputs)


def test_predict_tiled_with_a_scale_predicts_the_resized_image_and_resizes_back():
    model = _pixelwise_model()
    image = np.random.default_rng(1).random((60, 45, 3), dtype=np.float32)
    received = predict_tiled(model, image, 32, scale=0.5)
    small = resize_bilinear(image, (30, 22))
    expected = resize_bilinear(predict_tiled(model, small, 32), (60, 45))
    assert received.shape == (60, 45, 1)
    np.testing.assert_array_equal(received, expected)
    np.testing.assert_array_equal(
        predict_tiled(model, image, 32, scale=1), predict_tiled(model, image, 32)
    )


def test_predict_directory_takes_a_spec_or_the_arguments_not_both(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    model = _pixelwise_model()
    spec = InferenceSpec(scale=0.5, threshold=0.2)
    [written] = predict_directory(model, tmp_path / "a.png", tmp_path / "out", spec=spec, verbose=0)
    mask = np.asarray(Image.open(written["mask"]))
    assert mask.shape == (20, 30)
    with pytest.raises(ValueError, match=r"a spec or the arguments \['tile_size'\], not both"):
        predict_directory(model, tmp_path / "a.png", tmp_path / "o", spec=spec, tile_size=64)
