"""`train_run`: the run folder the `train` command writes, from Python."""

import csv
import json

import keras
import numpy as np
import pytest

from keras_unet_seg.cli import main
from keras_unet_seg.data import make_synthetic_dataset
from keras_unet_seg.training import TrainingConfig, TrainingError, train_run

OPTIONS = {"base_filters": 4, "depth": 2, "image_size": 32, "epochs": 2, "augment": "none"}
OPTIONS |= {"steps_per_epoch": 0}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_synthetic_dataset(root, num_train=4, num_val=2, image_size=(32, 32), seed=0)


def _rows(run):
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def _said(out, run):
    """What a run printed, but its progress bars (their timings vary)."""
    return [line for line in out.replace(str(run), "RUN").splitlines() if "━" not in line]


@pytest.mark.slow
def test_the_command_and_the_function_write_the_same_run(data, tmp_path, capsys):
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in OPTIONS.items()]
    assert main(["train", "--data", data, "--out", str(tmp_path / "command"), *flags]) == 0
    command_out = capsys.readouterr().out
    result = train_run(TrainingConfig(data=data, **OPTIONS), str(tmp_path / "python"))
    python_out = capsys.readouterr().out

    command, python = tmp_path / "command", tmp_path / "python"
    assert sorted(p.name for p in command.iterdir()) == sorted(p.name for p in python.iterdir())
    assert json.loads((command / "config.json").read_text()) == json.loads(
        (python / "config.json").read_text()
    )
    assert _rows(command) == _rows(python)
    for name in ("model.keras", "best.keras"):
        saved = [keras.saving.load_model(run / name).get_weights() for run in (command, python)]
        for a, b in zip(*saved, strict=True):
            np.testing.assert_array_equal(a, b)
    assert _said(command_out, command) == _said(python_out, python)
    assert result.written["best_model"] == str(python / "best.keras")
    assert result.facts["training_images"] == 4 and result.best_epoch in (0, 1)
    assert int(result.model.optimizer.iterations) == 2  # 2 epochs of one batch of 4

    # Resumed from Python, longer; the model's fields cannot change.
    longer = TrainingConfig(data=data, **{**OPTIONS, "epochs": 3})
    assert int(train_run(longer, str(python), resume=True).model.optimizer.iterations) == 3
    with pytest.raises(ValueError, match=r"cannot change the model when resuming \(`depth`"):
        train_run(longer.replace(depth=3, epochs=4), str(python), resume=True)


def test_errors_name_the_python_arguments(data, tmp_path):
    config = TrainingConfig(data=data, **OPTIONS)
    with pytest.raises(ValueError, match="`resume=True` continues the run in `out`"):
        train_run(config, str(tmp_path), resume=True, overwrite=True)
    with pytest.raises(TypeError, match="Expected a TrainingConfig"):
        train_run(OPTIONS, str(tmp_path))
    with pytest.raises(TrainingError, match=r"'.*' holds no config.json: it is not a training run"):
        train_run(config, str(tmp_path), resume=True)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError, match=r"choose another `out`, or pass `overwrite=True`"):
        train_run(config, str(tmp_path))
    with pytest.raises(TrainingError, match=r"data folder '.*missing' does not exist"):
        train_run(config.replace(data=str(tmp_path / "missing")), str(tmp_path / "run"))
