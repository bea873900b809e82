"""The command on microscopy files: 2- and 5-channel 16-bit TIFFs, train then predict,
and the intensity normalization a run was trained with, found again by predict."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet_seg.cli import main

from ._helpers import SMALL_MODEL

tifffile = pytest.importorskip("tifffile")


def _write_fluorescence(root, channels, num_train=8, num_val=2):
    rng = np.random.default_rng(channels)
    for subset, count in (("train", num_train), ("val", num_val)):
        for folder in ("images", "masks"):
            os.makedirs(os.path.join(root, subset, folder), exist_ok=True)
        for index in range(count):
            image = rng.integers(100, 400, (32, 32, channels)).astype(np.uint16)
            top, left = rng.integers(0, 16, 2)
            image[top : top + 12, left : left + 12, 0] += 3000
            mask = np.zeros((32, 32), np.uint8)
            mask[top : top + 12, left : left + 12] = 255
            name = f"cell{index:02d}"
            tifffile.imwrite(
                os.path.join(root, subset, "images", name + ".tif"),
                image if channels > 1 else image[..., 0],
                photometric="minisblack",
                planarconfig="contig" if channels > 1 else None,
            )
            Image.fromarray(mask).save(os.path.join(root, subset, "masks", name + ".png"))
    return str(root)


@pytest.mark.parametrize("channels", [2, 5])
def test_multichannel_tiffs_train_and_predict_with_native_channels(tmp_path, channels, capsys):
    data = _write_fluorescence(tmp_path / "data", channels)
    run = tmp_path / "run"
    args = ["train", "--data", data, "--out", str(run), *SMALL_MODEL, "--epochs", "1"]
    assert main([*args, "--color-mode", "native"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["color_mode"] == "native" and config["input_channels"] == channels
    assert config["intensity"]["mode"] == "auto"
    model = keras.saving.load_model(run / "best.keras")
    first_kernel = next(w for w in model.weights if len(w.shape) == 4)
    assert first_kernel.shape[2] == channels
    out = tmp_path / "predicted"
    images = os.path.join(data, "val", "images")
    assert main(["predict", images, "--model", str(run / "best.keras"), "--out", str(out)]) == 0
    assert sorted(os.listdir(out / "masks")) == ["cell00.png", "cell01.png"]
    assert Image.open(out / "masks" / "cell00.png").size == (32, 32)
    assert "Reading images as native, intensity 'auto' (1-99.8)" in capsys.readouterr().out
    # Without native channels the files are refused, naming the file and the remedy.
    assert main([*args[:4], str(tmp_path / "other"), *SMALL_MODEL, "--epochs", "1"]) == 1
    error = capsys.readouterr().err
    assert f"cell00.tif' has {channels} channels" in error and "native" in error


def test_predict_and_resume_use_the_runs_intensity(tmp_path, capsys):
    data = _write_fluorescence(tmp_path / "data", 1)
    run = tmp_path / "run"
    options = [*SMALL_MODEL, "--color-mode", "grayscale", "--epochs", "1", "--no-augment"]
    train = ["train", "--data", data, "--out", str(run), *options]
    assert main([*train, "--intensity", "minmax"]) == 0
    assert json.loads((run / "config.json").read_text())["intensity"]["mode"] == "minmax"
    images = os.path.join(data, "val", "images")
    predict = ["predict", images, "--model", str(run / "model.keras")]
    assert main([*predict, "--out", str(tmp_path / "p1")]) == 0
    assert "intensity 'minmax' (from the run's config.json)" in capsys.readouterr().out
    assert main([*predict, "--out", str(tmp_path / "p2"), "--intensity", "scale"]) == 0
    assert "intensity 'scale' (from --intensity)" in capsys.readouterr().out
    # Resuming cannot change what the weights were trained on.
    assert (
        main(["train", "--out", str(run), "--resume", "--epochs", "2", "--intensity", "auto"]) == 2
    )
    assert "--intensity differ from the run's config.json" in capsys.readouterr().err


def test_a_run_from_before_intensity_options_predicts_with_scale(tmp_path, capsys):
    data = _write_fluorescence(tmp_path / "data", 1)
    run = tmp_path / "run"
    options = [*SMALL_MODEL, "--color-mode", "grayscale", "--epochs", "1", "--no-augment"]
    assert main(["train", "--data", data, "--out", str(run), *options]) == 0
    config = json.loads((run / "config.json").read_text())
    del config["intensity"]  # as the first release wrote it
    (run / "config.json").write_text(json.dumps(config))
    images = os.path.join(data, "val", "images")
    out = str(tmp_path / "p")
    assert main(["predict", images, "--model", str(run / "model.keras"), "--out", out]) == 0
    assert "intensity 'scale' (from the run's config.json)" in capsys.readouterr().out


def test_the_command_starts_quiet(tmp_path):
    """No TensorFlow C++ log lines (oneDNN notes, CUDA probes) unless --verbose."""
    import subprocess
    import sys

    from keras_unet_seg import UNet

    model = UNet(base_filters=4, depth=2)
    model.build((None, None, None, 3))
    model.save(tmp_path / "m.keras")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    # The console script's target (pyproject.toml), run as a fresh installation runs it.
    command = [sys.executable, "-m", "_keras_unet_seg_command"]
    args = [*command, "predict", str(tmp_path / "a.png"), "--model", str(tmp_path / "m.keras")]
    result = subprocess.run(
        [*args, "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    for marker in ("I0000", "E0000", "W0000", "absl::InitializeLog", "oneDNN", "cuInit"):
        assert marker not in result.stderr, result.stderr
