"""The `keras-unet-seg` command line (`keras_unet_seg.cli`): user mistakes in one line
with exit status 2 (usage) or 1 (files, models, images), help, version, the entry point.

The commands themselves are tested in `tests/commands/`.
"""

import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from keras_unet_seg.cli import main
from keras_unet_seg.commands import train

SMALL_MODEL = ["--base-filters", "4", "--depth", "2", "--image-size", "32", "--batch-size", "4"]
SMALL_MODEL += ["--steps-per-epoch", "0"]


def _error_line(capsys):
    """The single line the command printed on stderr for a user mistake."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("keras-unet-seg: error: "), lines[0]
    return lines[0]


@pytest.fixture
def bad_files(tmp_path):
    text_model = tmp_path / "notes.keras"
    text_model.write_text("not a model")
    zip_model = tmp_path / "archive.keras"
    with zipfile.ZipFile(zip_model, "w") as z:
        z.writestr("hello.txt", "hi")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    empty = tmp_path / "empty"
    empty.mkdir()
    config = tmp_path / "config.json"
    config.write_text('{"base_filters": 4, "colour": "red"}')
    broken = tmp_path / "broken.json"
    broken.write_text("{base_filters: 4")
    bad_type = tmp_path / "bad_type.json"
    bad_type.write_text('{"epochs": "ten"}')
    null_precision = tmp_path / "null_precision.json"
    null_precision.write_text('{"precision": null}')
    upper_model = tmp_path / "model.KERAS"
    shutil.copy(zip_model, upper_model)
    os.mkfifo(tmp_path / "pipe.keras")
    os.mkfifo(tmp_path / "pipe.png")
    odd_data = tmp_path / "odd_data"
    for subset in ("train", "val"):
        for kind in ("images", "masks"):
            folder = odd_data / subset / kind
            folder.mkdir(parents=True)
            name = os.fsdecode(b"\xffbad.png") if subset == "train" else "ok.png"
            Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / name)
    pipe_data = tmp_path / "pipe_data"
    (pipe_data / "train" / "images").mkdir(parents=True)
    os.mkfifo(pipe_data / "train" / "images" / "a.png")
    (pipe_data / "train" / "masks").mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(pipe_data / "train" / "masks" / "a.png")
    return {
        "text_model": str(text_model),
        "zip_model": str(zip_model),
        "corrupt": str(corrupt),
        "text": str(text),
        "empty": str(empty),
        "config": str(config),
        "broken": str(broken),
        "bad_type": str(bad_type),
        "null_precision": str(null_precision),
        "missing": str(tmp_path / "missing"),
        "run": str(tmp_path / "run"),
        "upper_model": str(upper_model),
        "fifo_model": str(tmp_path / "pipe.keras"),
        "fifo_image": str(tmp_path / "pipe.png"),
        "odd_data": str(odd_data),
        "pipe_data": str(pipe_data),
    }


USER_MISTAKES = {
    # name: (argv, exit status, expected part of the message)
    "no command": ([], 2, "the following arguments are required: COMMAND"),
    "unknown command": (["fit"], 2, "invalid choice: 'fit'"),
    "unknown option": (["train", "--data", "{missing}", "--bogus"], 2, "unrecognized arguments"),
    "train without --data": (["train", "--out", "{run}"], 2, "required: --data"),
    "epochs zero": (
        ["train", "--data", "{empty}", "--out", "{run}", "--epochs", "0"],
        2,
        "argument --epochs: expected a positive integer, got '0'",
    ),
    "bad image size": (
        ["train", "--data", "{empty}", "--out", "{run}", "--image-size", "big"],
        2,
        "argument --image-size: expected a size N or HxW",
    ),
    "bad normalization": (
        ["train", "--data", "{empty}", "--out", "{run}", "--normalization", "batchnorm"],
        2,
        "argument --normalization: expected one of 'batch'",
    ),
    "unknown precision": (
        ["train", "--data", "{empty}", "--out", "{run}", "--precision", "float64"],
        2,
        "argument --precision: invalid choice: 'float64'",
    ),
    "bad jit-compile": (
        [
            "predict",
            "--model",
            "{zip_model}",
            "{corrupt}",
            "--out",
            "{run}",
            "--jit-compile",
            "yes",
        ],
        2,
        "argument --jit-compile: expected auto, on or off, got 'yes'",
    ),
    "unknown strategy": (
        ["train", "--data", "{empty}", "--out", "{run}", "--strategy", "mirror"],
        2,
        "argument --strategy: expected one of 'mirrored', 'data_parallel', 'none', got 'mirror'",
    ),
    "strategy of another backend": (
        ["train", "--data", "{empty}", "--out", "{run}", "--strategy", "data_parallel"],
        2,
        "train: --strategy: Invalid value for argument `strategy`: 'data_parallel' "
        "(keras.distribution.DataParallel) needs the JAX backend",
    ),
    "null precision in a config": (
        ["train", "--data", "{empty}", "--out", "{run}", "--config", "{null_precision}"],
        2,
        "option 'precision': expected a string, got None.",
    ),
    "XLA under mirrored": (
        [
            "train",
            "--data",
            "{empty}",
            "--out",
            "{run}",
            *("--strategy", "mirrored"),
            "--jit-compile",
            "on",
        ],
        2,
        "train: --jit-compile on cannot run under --strategy mirrored",
    ),
    "depth beyond the image size": (
        ["train", "--data", "{empty}", "--out", "{run}", "--depth", "40"],
        2,
        "train: --depth 40 halves the 128x128 training images 40 times, more than their "
        "128-pixel side allows: use --depth 7 or less (2**7 = 128), or a larger --image-size.",
    ),
    "model beyond memory": (
        ["train", "--data", "{empty}", "--out", "{run}", "--base-filters", "100000"],
        2,
        "train: --base-filters 100000 with --depth 4 makes a model of about 7.57e+13 "
        "parameters, and a training step on batches of 8 128x128 images needs about 1.21 PB, "
        "more than this machine's ",
    ),
    "missing data folder": (
        ["train", "--data", "{missing}", "--out", "{run}"],
        1,
        "data folder '{missing}' does not exist.",
    ),
    "unknown loss": (
        ["train", "--data", "{empty}", "--out", "{run}", "--loss", "dcie"],
        2,
        "--loss: unknown loss 'dcie'. Use one of",
    ),
    "unknown metric": (
        ["train", "--data", "{empty}", "--out", "{run}", "--metrics", "dice,iuo"],
        2,
        "--metrics: unknown metric 'iuo'",
    ),
    "unknown config key": (
        ["train", "--data", "{empty}", "--out", "{run}", "--config", "{config}"],
        2,
        "unknown option 'colour'",
    ),
    "config not JSON": (
        ["train", "--data", "{empty}", "--out", "{run}", "--config", "{broken}"],
        2,
        "is not valid JSON",
    ),
    "config bad value": (
        ["train", "--data", "{empty}", "--out", "{run}", "--config", "{bad_type}"],
        2,
        "option 'epochs': expected a positive integer, got 'ten'",
    ),
    "missing config": (
        ["train", "--data", "{empty}", "--out", "{run}", "--config", "{missing}"],
        1,
        "config file '{missing}' does not exist.",
    ),
    "empty data folder": (
        ["train", "--data", "{empty}", "--out", "{run}", *SMALL_MODEL],
        1,
        "cannot read the training data (--data {empty}, --train-subset train): Invalid value "
        "for argument `subset`. Expected the name of a subset of '{empty}'",
    ),
    "resume without a run": (
        ["train", "--out", "{missing}", "--resume"],
        1,
        "run folder '{missing}' does not exist: nothing to resume.",
    ),
    "missing model": (
        ["predict", "--model", "{missing}", "{corrupt}", "--out", "{run}"],
        1,
        "model file '{missing}' does not exist.",
    ),
    "text file as model": (
        ["evaluate", "--model", "{text_model}", "--data", "{empty}"],
        1,
        "model file '{text_model}' is not a Keras model",
    ),
    "zip file as model": (
        ["evaluate", "--model", "{zip_model}", "--data", "{empty}"],
        1,
        "model file '{zip_model}' cannot be loaded",
    ),
    "pipe as model": (
        ["predict", "--model", "{fifo_model}", "{corrupt}", "--out", "{run}"],
        1,
        "model file '{fifo_model}' is not a regular file (a pipe, socket or device): "
        "expected a .keras file.",
    ),
    "upper-case model extension": (
        ["evaluate", "--model", "{upper_model}", "--data", "{empty}"],
        1,
        "model file '{upper_model}' ends in '.KERAS': Keras reads only the lower-case "
        "extension, so rename it to",
    ),
    "pipe as image": (
        ["predict", "--model", "{zip_model}", "{fifo_image}", "--out", "{run}"],
        1,
        "input '{fifo_image}' is not a regular file (a pipe, socket or device).",
    ),
    "file name not UTF-8": (
        ["train", "--data", "{odd_data}", "--out", "{run}", *SMALL_MODEL],
        1,
        "cannot read the training data (--data {odd_data}, --train-subset train): File "
        "'{odd_data}/train/images/\\udcffbad.png' has a name that is not valid UTF-8 (shown "
        "with \\udcXX escapes), which the tf.data pipeline cannot read; rename it.",
    ),
    "pipe in a data folder": (
        ["train", "--data", "{pipe_data}", "--out", "{run}", *SMALL_MODEL],
        1,
        "cannot read the training data (--data {pipe_data}, --train-subset train): "
        "'{pipe_data}/train/images/a.png' is not a regular file (a pipe or a device?).",
    ),
    "missing input": (
        ["predict", "--model", "{zip_model}", "{missing}", "--out", "{run}"],
        1,
        "input '{missing}' does not exist.",
    ),
    "unreadable image": (
        ["predict", "--model", "{zip_model}", "{corrupt}", "--out", "{run}"],
        1,
        "File '{corrupt}' is not a readable image",
    ),
    "not an image": (
        ["predict", "--model", "{zip_model}", "{text}", "--out", "{run}"],
        1,
        "input '{text}' is not an image file",
    ),
    "empty input folder": (
        ["predict", "--model", "{zip_model}", "{empty}", "--out", "{run}"],
        1,
        "input folder '{empty}' holds no image files",
    ),
    "overlap out of range": (
        ["predict", "--model", "{zip_model}", "{corrupt}", "--out", "{run}", "--overlap", "1"],
        2,
        "argument --overlap: expected a number in [0, 1), got '1'",
    ),
    "evaluate missing data": (
        ["evaluate", "--model", "{text_model}", "--data", "{missing}"],
        1,
        "data folder '{missing}' does not exist.",
    ),
}


@pytest.mark.parametrize("case", sorted(USER_MISTAKES))
def test_user_mistakes_print_one_line_and_exit_non_zero(case, bad_files, capsys):
    argv, status, expected = USER_MISTAKES[case]
    argv = [arg.format(**bad_files) for arg in argv]
    assert main(argv) == status
    line = _error_line(capsys)
    assert expected.format(**bad_files) in line
    assert not os.path.exists(bad_files["run"])  # nothing written


def test_internal_errors_keep_their_traceback(monkeypatch):
    def broken(options, verbose=1):
        raise RuntimeError("a bug")

    monkeypatch.setattr(train, "train", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["train", "--data", "x", "--out", "y"])


def test_help_and_version_exit_zero(capsys):
    assert main(["--version"]) == 0
    assert main(["train", "--help"]) == 0
    assert "--base-filters" in capsys.readouterr().out


def test_entry_point_reports_a_user_mistake_without_traceback(tmp_path):
    executable = shutil.which("keras-unet-seg", path=os.path.dirname(sys.executable))
    assert executable, "the keras-unet-seg entry point is not installed"
    missing = tmp_path / "missing"
    result = subprocess.run(
        [executable, "evaluate", "--model", "m.keras", "--data", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("keras-unet-seg")]
    assert ours == [f"keras-unet-seg: error: data folder '{missing}' does not exist."]
