"""Fixtures of the command tests: a tiny dataset and a run trained once per session."""

import json

import pytest

from keras_unet_seg.cli import main
from keras_unet_seg.data import make_synthetic_dataset


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """8 training and 3 validation pairs of 32x32 synthetic images."""
    root = tmp_path_factory.mktemp("data")
    return make_synthetic_dataset(root, num_train=8, num_val=3, image_size=(32, 32), seed=0)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, data_dir):
    """A finished 2-epoch run, configured by a config file and the command line."""
    base = tmp_path_factory.mktemp("run")
    config = base / "options.json"
    config.write_text(
        json.dumps(
            {
                "base_filters": 4,
                "depth": 2,
                "image_size": [32, 32],
                "epochs": 1,
                "steps_per_epoch": 0,
            }
        )
    )
    run = base / "run"
    code = main(
        [
            *("train", "--data", data_dir, "--out", str(run), "--config", str(config)),
            *("--epochs", "2", "--batch-size", "4", "--no-augment"),
        ]
    )
    assert code == 0
    return run
