"""The `keras-unet-seg` command: user mistakes, train/resume, predict, evaluate, demo.

Commands run in-process through `main(argv)` (the entry point once, in a subprocess).
Data: a tiny synthetic dataset of 32x32 images; models: base_filters 4, depth 2.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet_seg import _atomic
from keras_unet_seg.cli import main
from keras_unet_seg.commands import _run_state, train
from keras_unet_seg.data import make_synthetic_dataset

SMALL_MODEL = ["--base-filters", "4", "--depth", "2", "--image-size", "32", "--batch-size", "4"]


# --------------------------------------------------------------------------- #
# Fixtures
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_synthetic_dataset(root, num_train=8, num_val=3, image_size=(32, 32), seed=0)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_dir):
    """A finished 2-epoch run, configured by a config file and the command line."""
    base = tmp_path_factory.mktemp("run")
    config = base / "options.json"
    config.write_text(
        json.dumps({"base_filters": 4, "depth": 2, "image_size": [32, 32], "epochs": 1})
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


def _error_line(capsys):
    """The single line the command printed on stderr for a user mistake."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("keras-unet-seg: error: "), lines[0]
    return lines[0]


def _temporary_files(folder):
    return [
        os.path.join(dirpath, name)
        for dirpath, _, names in os.walk(folder)
        for name in names
        if ".tmp" in name or name.startswith(".")
    ]


# --------------------------------------------------------------------------- #
# train
# --------------------------------------------------------------------------- #


@pytest.mark.slow
def test_train_writes_the_run_and_the_command_line_overrides_the_config(trained_run):
    names = set(os.listdir(trained_run))
    assert {"config.json", "model.keras", "best.keras", "log.csv", "curves.png"} <= names
    config = json.loads((trained_run / "config.json").read_text())
    assert config["epochs"] == 2  # command line over config file
    assert config["base_filters"] == 4 and config["depth"] == 2  # from the config file
    assert config["augment"] is False and config["image_size"] == [32, 32]
    assert "out" not in config and "config" not in config and "resume" not in config
    with open(trained_run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert "val_dice_coefficient" in rows[0]
    model = keras.saving.load_model(trained_run / "model.keras")
    assert model.base_filters == 4 and model.depth == 2
    assert _temporary_files(trained_run) == []


def test_saved_config_is_reusable_as_a_config_file(trained_run, data_dir, tmp_path):
    # Every key of config.json is an option, so it parses without "unknown option".
    config = str(trained_run / "config.json")
    args = train.resolve_options(_train_namespace(["--config", config, "--out", str(tmp_path)]))
    assert args.base_filters == 4 and args.epochs == 2 and args.data == data_dir


def _train_namespace(argv):
    from keras_unet_seg.cli import build_parser

    args = build_parser().parse_args(["train", *argv])
    args._argv = argv
    return args


class _InterruptAtEpoch(_run_state.RunState):
    """Simulates Ctrl-C at the start of epoch 3 (after the backup of epoch 2)."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt
        super().on_epoch_begin(epoch, logs)


@pytest.mark.slow
def test_resume_continues_from_the_saved_epoch_and_optimizer_state(
    data_dir, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "run"
    argv = ["train", "--data", data_dir, "--out", str(run), *SMALL_MODEL, "--epochs", "4"]
    argv += ["--no-augment"]  # the backup holds the optimizer whatever the pipeline
    steps_per_epoch = 2  # 8 training images, batches of 4

    monkeypatch.setattr(_run_state, "RunState", _InterruptAtEpoch)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"continue it with `keras-unet-seg train --out {run} --resume`" in err
    assert not (run / "model.keras").exists()
    assert [epoch for epoch, _ in _run_state.backups(run / "backup")] == [2, 1]

    monkeypatch.undo()
    assert main(["train", "--out", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    # The resumed run starts at epoch 3 of 4, with the optimizer's 2 epochs of steps.
    newest = run / "backup" / "epoch-0002"
    assert (
        f"Resuming from the backup '{newest}' (2 epochs done): epoch 3/4, optimizer step "
        f"{2 * steps_per_epoch}." in out
    )
    assert "Epoch 1/4" not in out and "Epoch 3/4" in out
    with open(run / "log.csv", newline="") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2, 3]
    # The optimizer counted every step of the 4 epochs: it was restored, not restarted.
    model = keras.saving.load_model(run / "model.keras")
    assert int(model.optimizer.iterations) == 4 * steps_per_epoch

    # A finished run can be trained longer; the same number of epochs is refused.
    assert main(["train", "--out", str(run), "--resume"]) == 1
    assert "already trained 4 epochs" in _error_line(capsys)
    assert main(["train", "--out", str(run), "--resume", "--epochs", "5"]) == 0
    assert "epoch 5/5, optimizer step 8" in capsys.readouterr().out
    model = keras.saving.load_model(run / "model.keras")
    assert int(model.optimizer.iterations) == 5 * steps_per_epoch
    assert _temporary_files(run) == []


def test_resume_refuses_a_model_change(trained_run, capsys):
    assert main(["train", "--out", str(trained_run), "--resume", "--depth", "3"]) == 2
    line = _error_line(capsys)
    assert "cannot change the model when resuming (--depth" in line


def test_resume_refuses_a_switch_to_float16_loss_scaling(trained_run, capsys):
    argv = ["train", "--out", str(trained_run), "--resume", "--precision", "mixed_float16"]
    assert main(argv) == 2
    assert _error_line(capsys).endswith(
        "cannot resume in mixed_float16: the run trained in float32, and mixed_float16's "
        "loss scaling changes the optimizer state that resuming restores; keep --precision "
        "as it was."
    )


# --------------------------------------------------------------------------- #
# predict
# --------------------------------------------------------------------------- #


@pytest.mark.slow
def test_predict_files_and_folders_of_any_size(trained_run, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    (inputs / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (45, 70, 3), dtype=np.uint8)).save(inputs / "a.png")
    Image.fromarray(rng.integers(0, 255, (20, 24), dtype=np.uint8)).save(inputs / "sub/b.jpg")
    single = tmp_path / "single.png"
    Image.fromarray(rng.integers(0, 255, (33, 31, 3), dtype=np.uint8)).save(single)
    out = tmp_path / "out"

    code = main(
        [
            *("predict", "--model", str(trained_run / "model.keras"), str(inputs), str(single)),
            *("--out", str(out), "--tile-size", "32", "--overlap", "0.5"),
        ]
    )
    assert code == 0
    assert "Wrote 3 masks" in capsys.readouterr().out
    for name, size in (("a", (45, 70)), ("sub/b", (20, 24)), ("single", (33, 31))):
        mask = np.asarray(Image.open(out / "masks" / f"{name}.png"))
        assert mask.shape == size and set(np.unique(mask)) <= {0, 255}
        overlay = np.asarray(Image.open(out / "overlays" / f"{name}.png"))
        assert overlay.shape == (*size, 3)
    assert _temporary_files(out) == []


# --------------------------------------------------------------------------- #
# Speed and devices: --precision, --jit-compile, --strategy
# --------------------------------------------------------------------------- #


@pytest.mark.slow
def test_train_and_predict_take_precision_and_xla(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(
        [
            *("train", "--data", data_dir, "--out", str(run), *SMALL_MODEL, "--epochs", "1"),
            *("--no-augment", "--precision", "mixed_bfloat16", "--jit-compile", "on"),
        ]
    )
    assert code == 0
    assert "Training in mixed_bfloat16, XLA on, 1 device (batches of 4)." in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert (config["precision"], config["jit_compile"], config["strategy"]) == (
        "mixed_bfloat16",
        True,
        None,
    )
    model = keras.saving.load_model(run / "model.keras")
    assert model.dtype_policy.name == "mixed_bfloat16"
    # The saved options come back through --config as they were given.
    args = train.resolve_options(
        _train_namespace(["--config", str(run / "config.json"), "--out", str(tmp_path / "b")])
    )
    assert (args.precision, args.jit_compile, args.strategy) == ("mixed_bfloat16", True, None)

    code = main(
        [
            *("evaluate", "--model", str(run / "model.keras"), "--data", data_dir),
            *("--tile-size", "32", "--precision", "float32"),
        ]
    )
    assert code == 0
    assert "Predicting in float32, XLA off, 1 device." in capsys.readouterr().out

    image = tmp_path / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 36, 3), np.uint8)).save(image)
    masks = {}
    for precision in ("float32", "mixed_bfloat16"):
        out = tmp_path / precision
        code = main(
            [
                *("predict", "--model", str(run / "model.keras"), str(image), "--out", str(out)),
                *("--tile-size", "32", "--precision", precision, "--jit-compile", "off"),
            ]
        )
        assert code == 0
        assert f"Predicting in {precision}, XLA off, 1 device." in capsys.readouterr().out
        masks[precision] = np.asarray(Image.open(out / "masks" / "image.png"))
    # The same weights in both precisions: bfloat16 rounding flips few pixels.
    assert np.mean(masks["float32"] != masks["mixed_bfloat16"]) < 0.05

    # A model that is not a UNet keeps its own precision under auto, and refuses another.
    inputs = keras.Input((None, None, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    other_path = tmp_path / "other.keras"
    other.save(other_path)
    predict = ["predict", "--model", str(other_path), str(image), "--out", str(tmp_path / "o")]
    assert main(predict) == 0
    assert "Predicting in float32, XLA off, 1 device." in capsys.readouterr().out
    assert main([*predict, "--precision", "mixed_bfloat16"]) == 1
    assert _error_line(capsys).endswith(
        "--precision mixed_bfloat16 applies to UNet models; this model is a Functional and "
        "computes in float32: use --precision auto."
    )


_TWO_CPU_DEVICES = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_unet_seg.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy, backend, env",
    [
        ("mirrored", "tensorflow", {}),
        ("data_parallel", "jax", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}),
    ],
)
def test_train_strategy_on_two_cpu_devices(strategy, backend, env, tmp_path):
    """9 training and 5 validation images in global batches of 2 x 2: the odd last 1 is left out."""
    if backend == "jax":
        pytest.importorskip("jax")
    data = make_synthetic_dataset(
        tmp_path / "data", num_train=9, num_val=5, image_size=(32, 32), seed=0
    )
    run = tmp_path / "run"
    argv = [
        *("train", "--data", str(data), "--out", str(run), *SMALL_MODEL[:-2]),
        *("--batch-size", "2", "--epochs", "2", "--no-augment", "--strategy", strategy),
    ]
    result = subprocess.run(
        [sys.executable, "-c", _TWO_CPU_DEVICES, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "2 devices (batches of 4)." in result.stdout
    for role, count in (("training", 9), ("validation", 5)):
        assert (
            f"Each epoch leaves out the last 1 of the {count} {role} images: batches of 4 "
            "must split evenly among 2 devices." in result.stdout
        )
    assert "2/2" in result.stdout  # two steps an epoch, counted before the epoch ends
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert all(np.isfinite(float(r["val_loss"])) for r in rows)
    model = keras.saving.load_model(run / "model.keras")
    assert model.base_filters == 4


def test_strategy_refuses_too_few_images_to_split(tmp_path, monkeypatch, capsys):
    """Two replicas (a stand-in Distribution) and 3 training images: nothing to train on."""
    from keras_unet_seg import performance

    monkeypatch.setattr(
        performance, "distribution", lambda strategy: performance.Distribution(strategy, None, 2)
    )
    data = make_synthetic_dataset(
        tmp_path / "data", num_train=3, num_val=2, image_size=(32, 32), seed=0
    )
    run = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(run), *SMALL_MODEL, "--strategy", "mirrored"]
    assert main(argv) == 1
    assert _error_line(capsys).endswith(
        "the 3 training images do not split evenly among 2 devices; give at least 8 "
        "(a global batch) or a multiple of 2."
    )
    assert not run.exists()


# --------------------------------------------------------------------------- #
# evaluate
# --------------------------------------------------------------------------- #


@pytest.mark.slow
def test_evaluate_writes_per_image_and_pooled_scores(trained_run, data_dir, tmp_path, capsys):
    scores = tmp_path / "scores" / "val.json"
    model = str(trained_run / "best.keras")
    argv = ["--model", model, "--tile-size", "32"]
    assert main(["evaluate", *argv, "--data", data_dir, "--json", str(scores)]) == 0
    table = capsys.readouterr().out
    assert "overall (pooled)" in table and "00002.png" in table

    report = json.loads(scores.read_text())
    assert report["subset"] == "val" and report["num_images"] == 3
    assert len(report["per_image"]) == 3
    metrics = ("dice", "iou", "precision", "recall")
    for row in report["per_image"]:
        assert os.path.exists(row["image"]) and os.path.exists(row["mask"])
        assert all(0 <= row[m] <= 1 for m in metrics)

    # The overall scores come from pooled counts: recompute them from predict's masks.
    images = os.path.join(data_dir, "val", "images")
    masks_out = tmp_path / "pred"
    assert main(["predict", *argv, images, "--out", str(masks_out)]) == 0
    tp = fp = fn = 0
    for row in report["per_image"]:
        name = os.path.basename(row["image"])
        truth = np.asarray(Image.open(row["mask"])) > 0
        predicted = np.asarray(Image.open(masks_out / "masks" / name)) > 0
        tp += np.sum(truth & predicted)
        fp += np.sum(~truth & predicted)
        fn += np.sum(truth & ~predicted)
    overall = report["overall"]
    np.testing.assert_allclose(overall["dice"], 2 * tp / (2 * tp + fp + fn), atol=1e-5)
    np.testing.assert_allclose(overall["iou"], tp / (tp + fp + fn), atol=1e-5)
    np.testing.assert_allclose(overall["precision"], tp / (tp + fp), atol=1e-5)
    np.testing.assert_allclose(overall["recall"], tp / (tp + fn), atol=1e-5)
    assert _temporary_files(scores.parent) == []


@pytest.mark.slow
def test_multi_class_grayscale_train_predict_evaluate(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for split, count in (("train", 4), ("val", 2)):
        (data / split / "images").mkdir(parents=True)
        (data / split / "masks").mkdir(parents=True)
        for i in range(count):
            mask = np.zeros((24, 40), np.uint8)
            mask[2:12, 3:15], mask[14:22, 20:36] = 1, 2
            image = (rng.random(mask.shape) * 60 + mask * 90).astype(np.uint8)
            Image.fromarray(image).save(data / split / "images" / f"{i}.png")
            Image.fromarray(mask).save(data / split / "masks" / f"{i}.png")
    run, pred, scores = tmp_path / "run", tmp_path / "pred", tmp_path / "scores.json"
    options = ["--num-classes", "3", "--color-mode", "grayscale", "--image-size", "24x40"]
    options += ["--epochs", "1", "--base-filters", "4", "--depth", "2", "--loss", "dice"]
    options += ["--no-augment"]
    assert main(["train", "--data", str(data), "--out", str(run), *options]) == 0
    model = str(run / "model.keras")
    # The model's one input channel makes predict and evaluate read grayscale.
    assert (
        main(["predict", "--model", model, str(data / "val" / "images"), "--out", str(pred)]) == 0
    )
    mask = np.asarray(Image.open(pred / "masks" / "0.png"))
    assert mask.shape == (24, 40) and set(np.unique(mask)) <= {0, 1, 2}
    assert main(["evaluate", "--model", model, "--data", str(data), "--json", str(scores)]) == 0
    report = json.loads(scores.read_text())
    assert report["num_images"] == 2 and 0 <= report["overall"]["dice"] <= 1


# --------------------------------------------------------------------------- #
# demo
# --------------------------------------------------------------------------- #


@pytest.mark.slow
def test_demo_writes_model_metrics_overlays_and_curves(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--epochs", "1", "--image-size", "32"]
    assert main([*argv, "--num-train", "8", "--num-val", "2", "--base-filters", "4"]) == 0
    printed = capsys.readouterr().out
    assert "Demo finished" in printed and str(out / "metrics.json") in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["validation"]) == {"dice", "iou", "precision", "recall"}
    assert len(metrics["per_image"]) == 2
    assert sorted(os.listdir(out / "overlays")) == ["00000.png", "00001.png"]
    for name in ("model.keras", "best.keras", "curves.png", "predictions.png", "log.csv"):
        assert (out / name).is_file(), name
    keras.saving.load_model(out / "model.keras")
    assert _temporary_files(out) == []


# --------------------------------------------------------------------------- #
# User mistakes: one line, exit status 2 (usage) or 1 (files, models, images)
# --------------------------------------------------------------------------- #


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


@pytest.mark.parametrize(
    "options",
    [
        {"base_filters": 8, "depth": 2},
        {"base_filters": 16, "depth": 4, "channels": 1, "num_classes": 3},
        {"base_filters": 8, "depth": 3, "upsampling": "bilinear"},
    ],
)
def test_parameter_estimate_is_within_3_percent_of_the_model(options):
    from keras_unet_seg import UNet
    from keras_unet_seg.commands._model_size import estimate_parameters

    channels, num_classes = options.pop("channels", 3), options.pop("num_classes", 1)
    model = UNet(num_classes=num_classes, **options)
    model.build((None, None, None, channels))
    estimate = estimate_parameters(
        channels,
        options["base_filters"],
        options["depth"],
        num_classes,
        options.get("upsampling", "transpose"),
    )
    assert estimate == pytest.approx(model.count_params(), rel=0.03)


def test_train_refuses_to_overwrite_a_run(trained_run, data_dir, capsys):
    before = (trained_run / "model.keras").stat().st_mtime_ns
    assert main(["train", "--data", data_dir, "--out", str(trained_run)]) == 1
    assert "already holds a training run (config.json); pass --resume to continue it, " in (
        _error_line(capsys)
    )
    assert (trained_run / "model.keras").stat().st_mtime_ns == before


def test_predict_names_the_unreadable_file_among_good_ones(trained_run, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "good.png")
    (folder / "bad.jpg").write_bytes(b"")
    out = tmp_path / "out"
    argv = ["predict", "--model", str(trained_run / "model.keras"), str(folder)]
    assert main([*argv, "--out", str(out)]) == 1
    assert f"File '{folder / 'bad.jpg'}' is empty (0 bytes)." in _error_line(capsys)
    assert not out.exists()  # every input is checked before anything is written


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


# --------------------------------------------------------------------------- #
# Atomic writes
# --------------------------------------------------------------------------- #


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "metrics.json"
    _atomic.write_json(path, {"dice": 0.5})

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        _atomic.write_json(path, {"dice": Unserialisable()})  # fails half-way through
    assert json.loads(path.read_text()) == {"dice": 0.5}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_atomic_model_save_leaves_no_temporary_file(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    _atomic.save_model(model, tmp_path / "m.keras")
    assert os.listdir(tmp_path) == ["m.keras"]
    assert (os.stat(tmp_path / "m.keras").st_mode & 0o777) == (
        0o666 & ~_umask()
    )  # the usual permissions, not mkstemp's 0600


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
