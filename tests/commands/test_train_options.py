"""`train`'s options for real projects: losses and metrics with arguments, flat folders,
bad files skipped, aspect ratios, learning-rate schedules, early stopping."""

import csv
import json
import math
import os
import shutil
import warnings

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet_seg.cli import main
from keras_unet_seg.commands import train
from keras_unet_seg.data import make_synthetic_dataset

SMALL = ["--base-filters", "4", "--depth", "2", "--image-size", "32", "--batch-size", "4"]
SMALL += ["--steps-per-epoch", "0"]


@pytest.fixture(scope="module")
def split_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    return make_synthetic_dataset(root, num_train=8, num_val=4, image_size=(32, 32), seed=0)


@pytest.fixture(scope="module")
def flat_data(split_data, tmp_path_factory):
    """The same ten pairs as one flat folder: DIR/images and DIR/masks."""
    root = tmp_path_factory.mktemp("flat")
    for kind in ("images", "masks"):
        shutil.copytree(os.path.join(split_data, "train", kind), root / kind)
        for name in os.listdir(os.path.join(split_data, "val", kind)):
            shutil.copy(os.path.join(split_data, "val", kind, name), root / kind / f"v{name}")
    return str(root)


def _log(run):
    with open(os.path.join(run, "log.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_config_dict_loss_and_metrics_reach_the_objects(split_data, tmp_path, monkeypatch):
    config = tmp_path / "options.json"
    config.write_text(
        json.dumps(
            {
                "loss": {"name": "tversky", "alpha": 0.3, "beta": 0.7},
                "metrics": [{"name": "dice", "threshold": 0.4}, "iou"],
                "epochs": 1,
            }
        )
    )
    compiled = {}
    original = train.compile_model

    def spy(model, options, **kwargs):
        monitor = original(model, options, **kwargs)
        compiled["loss"] = model.loss
        compiled["metrics"] = model._compile_metrics._user_metrics
        return monitor

    monkeypatch.setattr(train, "compile_model", spy)
    run = tmp_path / "run"
    args = ["train", "--data", split_data, "--out", str(run), "--config", str(config)]
    assert main([*args, *SMALL, "--no-augment"]) == 0
    loss = compiled["loss"]
    assert type(loss).__name__ == "TverskyLoss" and (loss.alpha, loss.beta) == (0.3, 0.7)
    assert compiled["metrics"][0].threshold == 0.4
    saved = json.loads((run / "config.json").read_text())
    assert saved["loss"] == {"name": "tversky", "alpha": 0.3, "beta": 0.7}
    # The resumed run reads the same dicts back.
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2"]) == 0
    assert len(_log(run)) == 2


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        ({"name": "tversky", "alpha": -1}, "loss {'name': 'tversky', 'alpha': -1}: Invalid value"),
        ({"name": "tversky", "gamma": 2}, "unexpected keyword argument 'gamma'"),
        ({"name": "binary_crossentropy", "x": 1}, "with arguments: give a loss of this library"),
        ({"alpha": 1}, 'expected a name, or in a config file a dict such as {"name"'),
    ],
)
def test_config_dict_loss_errors(split_data, tmp_path, capsys, loss, message):
    config = tmp_path / "options.json"
    config.write_text(json.dumps({"loss": loss}))
    args = ["train", "--data", split_data, "--out", str(tmp_path / "r"), "--config", str(config)]
    assert main([*args, *SMALL]) == 2
    assert message in capsys.readouterr().err


def test_flat_folder_needs_and_takes_a_validation_split(flat_data, tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["train", "--data", flat_data, "--out", run, *SMALL, "--epochs", "1"]) == 1
    assert "is one flat folder (images/ and masks/): pass --validation-split 0.2" in (
        capsys.readouterr().err
    )
    args = ["train", "--data", flat_data, "--out", run, *SMALL, "--epochs", "1"]
    assert main([*args, "--validation-split", "0.25", "--seed", "3", "--no-augment"]) == 0
    output = capsys.readouterr().out
    assert "Using 9 pairs for training." in output and "Using 3 pairs for validation." in output
    saved = json.loads(open(os.path.join(run, "config.json")).read())
    assert saved["validation_split"] == 0.25 and saved["seed"] == 3
    # evaluate scores the same 3 validation pairs, not the whole folder.
    scores = str(tmp_path / "scores.json")
    model = os.path.join(run, "best.keras")
    assert main(["evaluate", "--model", model, "--data", flat_data, "--json", scores]) == 0
    assert "Scoring the run's validation pairs: --validation-split 0.25 --seed 3" in (
        capsys.readouterr().out
    )
    assert json.loads(open(scores).read())["num_images"] == 3


def test_on_error_skip_reports_and_trains(split_data, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(split_data, data)
    (data / "train" / "images" / "00001.png").write_bytes(b"not a png")
    args = ["train", "--data", str(data), "--out", str(tmp_path / "run"), *SMALL, "--epochs", "1"]
    (data / "train" / "images" / "00002.png").write_bytes(b"")
    assert main(args) == 1
    err = capsys.readouterr().err.splitlines()  # every bad file, one a line
    assert err[0] == (
        f"keras-unet-seg: error: cannot read the training data (--data {data}, --train-subset "
        f"train): 2 of 8 samples found in '{data / 'train' / 'images'}' and "
        f"'{data / 'train' / 'masks'}' cannot be used:"
    )
    assert err[1].startswith(
        f"  File '{data / 'train' / 'images' / '00001.png'}' is not a readable"
    )
    assert err[2] == f"  File '{data / 'train' / 'images' / '00002.png'}' is empty (0 bytes)."
    assert err[3] == "Fix them, or pass --on-error skip to leave them out."
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # printed as lines, not warned
        assert main([*args, "--on-error", "skip", "--no-augment"]) == 0
    out = capsys.readouterr().out.splitlines()
    first = out.index(
        f"Skipped 2 of 8 samples found in '{data / 'train' / 'images'}' and "
        f"'{data / 'train' / 'masks'}' (--on-error skip); kept 6:"
    )
    assert out[first + 1 : first + 3] == [err[1], err[2]]


def test_aspect_ratio_options(tmp_path, capsys):
    data = make_synthetic_dataset(tmp_path / "d", num_train=2, num_val=1, image_size=(32, 64))
    run = str(tmp_path / "run")
    args = ["train", "--data", data, *SMALL, "--epochs", "1", "--no-augment"]
    assert main([*args, "--out", run]) == 0
    assert "are 64x32 (width x height, median) and are resized to 32x32" in capsys.readouterr().out
    assert main([*args, "--out", run + "2", "--crop-to-aspect-ratio"]) == 0
    assert "distorts" not in capsys.readouterr().out
    both = [*args, "--out", run + "3", "--crop-to-aspect-ratio", "--pad-to-aspect-ratio"]
    assert main(both) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_cosine_schedule_with_warmup_and_early_stopping(split_data, tmp_path):
    run = str(tmp_path / "run")
    options = ["--lr-schedule", "cosine", "--warmup-epochs", "1", "--learning-rate", "0.01"]
    args = ["train", "--data", split_data, "--out", run, *SMALL, "--no-augment", *options]
    assert main([*args, "--epochs", "4"]) == 0
    rates = [float(row["learning_rate"]) for row in _log(run)]
    expected = [0.005, 0.01, 0.01 * 0.5 * (1 + math.cos(math.pi / 3))]
    expected.append(0.01 * 0.5 * (1 + math.cos(2 * math.pi / 3)))
    np.testing.assert_allclose(rates, expected, rtol=1e-5)
    # Early stopping: a metric that cannot improve after the first epoch stops at once.
    stop = str(tmp_path / "stop")
    config = tmp_path / "options.json"
    config.write_text(json.dumps({"metrics": [{"name": "dice", "threshold": 1.0}]}))
    args = ["train", "--data", split_data, "--out", stop, *SMALL, "--no-augment"]
    assert main([*args, "--config", str(config), "--epochs", "6", "--early-stopping", "1"]) == 0
    assert len(_log(stop)) < 6


def test_plateau_halves_the_rate(split_data, tmp_path):
    run = str(tmp_path / "run")
    config = tmp_path / "options.json"
    config.write_text(json.dumps({"metrics": [{"name": "dice", "threshold": 1.0}]}))
    args = ["train", "--data", split_data, "--out", run, *SMALL, "--no-augment"]
    assert main([*args, "--config", str(config), "--lr-schedule", "plateau", "--epochs", "5"]) == 0
    rates = [float(row["learning_rate"]) for row in _log(run)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(5e-4)
    assert keras.saving.load_model(os.path.join(run, "model.keras")) is not None
    Image.open(os.path.join(run, "curves.png")).verify()
