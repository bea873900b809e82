"""`TrainingConfig`: checked once, normalised as the command line is, a JSON round trip."""

import dataclasses
import json

import pytest

from keras_unet_seg.training import TrainingConfig


def test_json_round_trip_keeps_every_field(tmp_path):
    config = TrainingConfig(
        data="cells",
        image_size="96x64",
        intensity={"mode": "percentile", "low": 2, "high": 99.5},
        loss={"name": "tversky", "alpha": 0.3, "beta": 0.7},
        metrics="dice,iou",
        encoder="mobilenetv2",
        freeze_encoder_epochs=2,
        class_names=["background", "cell"],
        jit_compile="off",
    )
    assert config.image_size == (96, 64) and config.metrics == ["dice", "iou"]
    assert config.jit_compile is False and config.intensity["mode"] == "percentile"
    path = tmp_path / "config.json"
    config.to_json(str(path))
    assert TrainingConfig.from_json(str(path)) == config
    saved = json.loads(path.read_text())
    assert saved["image_size"] == [96, 64]
    # A run's config.json also records what it found in the data: left out on reading.
    record = {**saved, "training_images": 8, "input_channels": 3, "training_scale": [1, 1]}
    assert TrainingConfig.from_dict(record) == config


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": 0}, "argument `epochs`. Expected a positive integer. Received: epochs=0"),
        ({"image_size": "64x"}, "argument `image_size`. Expected a size N or HxW"),
        ({"color_mode": "cmyk"}, "argument `color_mode`. Expected one of 'rgb', 'grayscale'"),
        ({"augment": "some"}, "argument `augment`. Expected one of 'geometric', 'all', 'none'"),
        ({"dropout": 1.0}, "argument `dropout`. Expected a number in [0, 1)"),
        ({"residual": "yes"}, "argument `residual`. Expected true or false"),
        ({"encoder_weights": "imagenet"}, "`encoder_weights` needs `encoder`"),
        ({"crop_to_aspect_ratio": True, "pad_to_aspect_ratio": True}, "give one of"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(values, message):
    with pytest.raises(ValueError) as error:
        TrainingConfig(data="cells", **values)
    assert message in str(error.value)


def test_unknown_fields_and_missing_data_are_refused():
    with pytest.raises(ValueError, match="Unknown training option 'colour'"):
        TrainingConfig.from_dict({"data": "cells", "colour": "red"})
    with pytest.raises(TypeError, match="data"):
        TrainingConfig()
    with pytest.raises(TypeError, match="no field 'colour'"):
        TrainingConfig(data="cells").replace(colour="red")
    with pytest.raises(dataclasses.FrozenInstanceError):  # a change goes through `replace`
        TrainingConfig(data="cells").epochs = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="`epochs`"):
        TrainingConfig(data="cells").replace(epochs=-1)


def test_model_changes_compare_normalised_values():
    config = TrainingConfig(data="cells", base_filters=8, image_size=64)
    saved = {**config.to_dict(), "intensity": "auto", "base_filters": 16, "epochs": 3}
    assert config.model_changes(saved) == ["base_filters"]  # epochs may change
    assert config.model_changes({"data": "cells"}) == []  # fields a run did not record
