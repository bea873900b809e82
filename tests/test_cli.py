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
    """The single line the command printed on stderr for a user mistake (with the
    lines of a list in it: bad files, one a line)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("keras-unet-seg: error: "), lines[0]
    if len(lines) > 1:  # a list, then its closing sentence
        assert all(line.startswith("  ") for line in lines[1:-1]), err
        assert lines[-1] == "Fix them, or pass --on-error skip to leave them out.", err
    return "\n".join(lines)


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
        "train: --strategy: Invalid value for argument `strategy`. Expected a strategy of "
        "this backend: 'data_parallel' (keras.distribution.DataParallel) needs the JAX backend",
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
        [
            "train",
            "--data",
            "{empty}",
            "--out",
            "{run}",
            "--base-filters",
            "100000",
            "--depth",
            "4",
        ],
        2,
        "train: --base-filters 100000 with --depth 4 makes a model of 7.57e+13 "
        "parameters, and a training step on batches of 4 128x128 images needs about 1.21 PB, "
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
    "abstract Keras loss": (
        ["train", "--data", "{empty}", "--out", "{run}", "--loss", "Loss"],
        2,
        "train: --loss: Could not use the loss identifier 'Loss': `Loss` is an abstract base "
        "class to subclass (it leaves `call` to subclasses), not a loss. Use one of bce_dice, "
        "dice, focal_tversky, jaccard, tversky, or the name of a Keras loss such as "
        "binary_crossentropy.",
    ),
    "abstract Keras metric": (
        ["train", "--data", "{empty}", "--out", "{run}", "--metrics", "dice,Metric"],
        2,
        "train: --metrics: Could not use the metric identifier 'Metric': `Metric` is an "
        "abstract base class to subclass (it leaves `update_state` and `result` to "
        "subclasses), not a metric. Use one of dice, iou, precision, recall",
    ),
    "Keras metric with required arguments": (
        ["train", "--data", "{empty}", "--out", "{run}", "--metrics", "MeanMetricWrapper"],
        2,
        "train: --metrics: Could not build the metric 'MeanMetricWrapper' from its name: "
        "`MeanMetricWrapper` has required arguments. Build it in Python or give its config "
        "dict. Use one of dice, iou, precision, recall, or the name of a Keras metric such "
        "as binary_accuracy.",
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
    "file name not UTF-8": (  # the image and the mask: two bad files, one a line
        ["train", "--data", "{odd_data}", "--out", "{run}", *SMALL_MODEL],
        1,
        "cannot read the training data (--data {odd_data}, --train-subset train): 2 of 2 "
        "samples found in '{odd_data}/train/images' and '{odd_data}/train/masks' cannot be "
        "used:\n  File '{odd_data}/train/images/\\udcffbad.png' has a name that is not valid "
        "UTF-8 (shown with \\udcXX escapes), which the tf.data pipeline cannot read; rename "
        "it.\n  File '{odd_data}/train/masks/\\udcffbad.png' has a name",
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


def _bug(*args, **kwargs):
    raise ValueError("a bug")


@pytest.mark.parametrize(
    ("patched", "argv"),
    [
        ("keras_unet_seg.training.train_run", ["train", "--data", "{empty}", "--out", "{run}"]),
        (
            "keras_unet_seg.commands.predict.list_inputs",
            ["predict", "--model", "{zip_model}", "{corrupt}", "--out", "{run}"],
        ),
        (
            "keras_unet_seg._outputs.check_outside_inputs",
            ["evaluate", "--model", "{zip_model}", "--data", "{empty}", "--json", "{run}"],
        ),
    ],
)
def test_a_plain_value_error_keeps_its_traceback(patched, argv, bad_files, monkeypatch):
    """Only the library's own errors for a user's mistake become one line."""
    monkeypatch.setattr(patched, _bug)
    with pytest.raises(ValueError, match="a bug"):
        main([arg.format(**bad_files) for arg in argv])


def test_help_and_version_exit_zero(capsys):
    assert main(["--version"]) == 0
    assert main(["train", "--help"]) == 0
    assert "--base-filters" in capsys.readouterr().out


def test_help_shows_no_default_for_flags(capsys):
    """`--no-fold` (store_false) said "(default: True)", meaning the flag is absent."""
    assert main(["predict", "--help"]) == 0
    help = " ".join(capsys.readouterr().out.split())
    assert "the same masks in float32)" in help  # the end of --no-fold's help
    assert "(default: False)" not in help
    # Only --tta's, a --tta/--no-tta pair, shows its default.
    assert help.count("(default: True)") == 1 and "--no-tta: one) (default: True)" in help
    assert "fraction shared by neighbour tiles (default: 0.25)" in help


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


@pytest.mark.one_backend
def test_importing_the_library_changes_nothing():
    """Even in a process named like the command: the quiet start is the entry point's."""
    code = (
        "import os, sys\n"
        "import keras\n"  # which sets variables of its own (TF_FORCE_GPU_ALLOW_GROWTH, ...)
        "sys.argv = [os.path.join(os.path.dirname(sys.executable), 'keras-unet-seg'), 'train']\n"
        "environ, argv = dict(os.environ), list(sys.argv)\n"
        "import keras_unet_seg\n"
        "assert dict(os.environ) == environ, set(os.environ.items()) ^ set(environ.items())\n"
        "assert sys.argv == argv, sys.argv\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "KERAS_BACKEND": "jax"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_a_size_option_beyond_the_pixel_limit_is_refused(command, tmp_path, capsys):
    """--image-size 30000 asked for 900 million pixels an image (3.6 GB as float32 gray)."""
    option = "--tile-size" if command == "predict" else "--image-size"
    argv = {
        "train": ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")],
        "evaluate": ["evaluate", "--model", "m.keras", "--data", str(tmp_path)],
        "predict": ["predict", "a.png", "--model", "m.keras", "--out", str(tmp_path / "out")],
    }[command]
    assert main([*argv, option, "30000"]) == 2
    assert _error_line(capsys) == (
        f"keras-unet-seg: error: {command}: argument {option}: expected a size of at most "
        f"89,478,485 pixels (PIL.Image.MAX_IMAGE_PIXELS), got '30000' (see `keras-unet-seg "
        f"{command} --help`)"
    )
    assert os.listdir(tmp_path) == []
