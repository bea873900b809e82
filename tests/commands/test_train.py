"""`keras-unet-seg train`: the run folder (what --overwrite removes, its lock), config
files, resuming, precision and devices.

Commands run in-process through `main(argv)`. Data: a tiny synthetic dataset of 32x32
images; models: base_filters 4, depth 2 (`conftest.py`).
"""

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from _xla_flags import with_devices
from PIL import Image

from keras_unet_seg import _types
from keras_unet_seg.cli import main
from keras_unet_seg.commands import train
from keras_unet_seg.data import make_synthetic_dataset
from keras_unet_seg.training import _backups, _run_folder, callbacks

from ._helpers import SMALL_MODEL, checksums, error_line, temporary_files, train_namespace

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_train_writes_the_run_and_the_command_line_overrides_the_config(trained_run):
    names = set(os.listdir(trained_run))
    assert {"config.json", "model.keras", "best.keras", "log.csv", "curves.png"} <= names
    config = json.loads((trained_run / "config.json").read_text())
    assert config["epochs"] == 2  # command line over config file
    assert config["base_filters"] == 4 and config["depth"] == 2  # from the config file
    assert config["augment"] == "none" and config["image_size"] == [32, 32]
    assert "out" not in config and "config" not in config and "resume" not in config
    with open(trained_run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert "val_dice_coefficient" in rows[0]
    model = keras.saving.load_model(trained_run / "model.keras")
    assert model.base_filters == 4 and model.depth == 2
    assert temporary_files(trained_run) == []


def test_saved_config_is_reusable_as_a_config_file(trained_run, data_dir, tmp_path):
    # Every key of config.json is an option, so it parses without "unknown option".
    config = str(trained_run / "config.json")
    args = train.resolve_options(train_namespace(["--config", config, "--out", str(tmp_path)]))
    assert args.base_filters == 4 and args.epochs == 2 and args.data == data_dir


class _InterruptAtEpoch(callbacks.RunCheckpoint):
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
    steps_per_epoch = 3  # drawn from the 8 training images repeated, in batches of 4
    argv += ["--steps-per-epoch", str(steps_per_epoch)]

    monkeypatch.setattr(callbacks, "RunCheckpoint", _InterruptAtEpoch)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"continue it with `keras-unet-seg train --out {run} --resume`" in err
    assert not (run / "model.keras").exists()
    assert [epoch for epoch, _ in _backups.backups(run / "backup")] == [2, 1]

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
    assert "already trained 4 epochs" in error_line(capsys)
    assert main(["train", "--out", str(run), "--resume", "--epochs", "5"]) == 0
    assert f"epoch 5/5, optimizer step {4 * steps_per_epoch}" in capsys.readouterr().out
    model = keras.saving.load_model(run / "model.keras")
    assert int(model.optimizer.iterations) == 5 * steps_per_epoch
    assert temporary_files(run) == []


def test_resume_refuses_a_model_change(trained_run, capsys):
    assert main(["train", "--out", str(trained_run), "--resume", "--depth", "3"]) == 2
    line = error_line(capsys)
    assert "cannot change the model when resuming (--depth" in line


def test_resume_refuses_a_switch_to_float16_loss_scaling(trained_run, capsys):
    argv = ["train", "--out", str(trained_run), "--resume", "--precision", "mixed_float16"]
    assert main(argv) == 2
    assert error_line(capsys).endswith(
        "cannot resume in mixed_float16: the run trained in float32, and mixed_float16's "
        "loss scaling changes the optimizer state that resuming restores; keep --precision "
        "as it was."
    )


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
        train_namespace(["--config", str(run / "config.json"), "--out", str(tmp_path / "b")])
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
    assert main([*predict, "--precision", "mixed_bfloat16", "--overwrite"]) == 1
    assert error_line(capsys).endswith(
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
        # Compiling is most of this run, and takes about half as long with FAST_COMPILE.
        ("data_parallel", "jax", {"XLA_FLAGS": with_devices(2)}),
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
        *("train", "--data", str(data), "--out", str(run), *SMALL_MODEL),
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
        performance,
        "distribution",
        lambda strategy, **hosts: performance.Distribution(strategy, None, 2),
    )
    data = make_synthetic_dataset(
        tmp_path / "data", num_train=3, num_val=2, image_size=(32, 32), seed=0
    )
    run = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(run), *SMALL_MODEL, "--strategy", "mirrored"]
    assert main(argv) == 1
    assert error_line(capsys).endswith(
        "the 3 training images do not split evenly among 2 devices; give at least 8 "
        "(a global batch) or a multiple of 2."
    )
    assert not run.exists()


def test_train_host_options_name_what_is_missing_and_stay_out_of_the_config(
    data_dir, tmp_path, monkeypatch, capsys
):
    """Checked before anything joins, trains or writes; per process, so not in config.json."""
    monkeypatch.delenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", raising=False)
    monkeypatch.delenv("JAX_COORDINATOR_ADDRESS", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    run = tmp_path / "run"
    argv = ["train", "--data", data_dir, "--out", str(run), *SMALL_MODEL]
    hosts = ["--num-processes", "2", "--process-id", "0"]
    assert main([*argv, "--strategy", "data_parallel", *hosts]) == 2
    assert error_line(capsys).endswith(
        "train: --strategy: Missing value for argument --coordinator-address (or "
        "KERAS_DISTRIBUTION_JOB_ADDRESSES or JAX_COORDINATOR_ADDRESS) to join several "
        "processes. Received: coordinator_address=None, num_processes=2, process_id=0"
    )
    hosts += ["--coordinator-address", "localhost:1234"]
    assert main([*argv, "--strategy", "mirrored", *hosts]) == 2
    assert "several hosts train with 'data_parallel' (JAX) only; Keras 3 does not support " in (
        error_line(capsys)
    )
    assert not run.exists()
    config = train.training_config(
        train.options(data="d", coordinator_address="localhost:1234", num_processes=2, process_id=1)
    ).to_dict()
    assert {"coordinator_address", "num_processes", "process_id"}.isdisjoint(config)
    assert "strategy" in config


def test_train_refuses_to_overwrite_a_run(trained_run, data_dir, capsys):
    before = (trained_run / "model.keras").stat().st_mtime_ns
    assert main(["train", "--data", data_dir, "--out", str(trained_run)]) == 1
    assert "already holds a training run (config.json); pass --resume to continue it, " in (
        error_line(capsys)
    )
    assert (trained_run / "model.keras").stat().st_mtime_ns == before


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of the trained run (its list of the files it wrote included)."""
    return shutil.copytree(trained_run, tmp_path / "run")


def test_train_overwrite_removes_only_the_files_the_run_wrote(run_copy, data_dir, capsys):
    (run_copy / "notes.txt").write_text("the user's notes")
    (run_copy / "backup.md").write_text("the user's backup plan")
    users = checksums(run_copy / "notes.txt", run_copy / "backup.md")
    argv = ["train", "--data", data_dir, "--out", str(run_copy), *SMALL_MODEL, "--epochs", "1"]
    assert main([*argv, "--overwrite", "--no-augment"]) == 0
    assert (
        "--overwrite: removed config.json, best.keras, model.keras, log.csv, curves.png, "
        f"backup from '{run_copy}'."
    ) in capsys.readouterr().out
    assert checksums(run_copy / "notes.txt", run_copy / "backup.md") == users
    assert [row["epoch"] for row in csv.DictReader(open(run_copy / "log.csv"))] == ["0"]


def _lock(run, pid):
    lock = {"pid": pid, "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"}
    (run / _run_folder.LOCK_FILE).write_text(json.dumps(lock))


def test_a_run_folder_in_use_by_a_live_process_is_refused(run_copy, capsys):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock(run_copy, other.pid)
        before = checksums(run_copy)
        assert main(["train", "--out", str(run_copy), "--resume", "--epochs", "3"]) == 1
        assert error_line(capsys) == (
            f"keras-unet-seg: error: run folder '{run_copy}' is in use by process {other.pid} "
            f"on {socket.gethostname()} (training since 2026-01-01T00:00:00+00:00): wait for it "
            "to finish, or choose another --out."
        )
        assert checksums(run_copy) == before
    finally:
        other.kill()
        other.wait()


def test_a_lock_left_by_a_killed_process_is_taken_over(run_copy, capsys):
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    killed.kill()
    killed.wait()
    _lock(run_copy, killed.pid)
    assert main(["train", "--out", str(run_copy), "--resume"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == (
        f"Taking over the run folder '{run_copy}': its lock was left by process {killed.pid} "
        f"on {socket.gethostname()}, which no longer runs."
    )
    assert "has already trained 2 epochs (--epochs 2)" in captured.err  # then it goes on
    assert not (run_copy / _run_folder.LOCK_FILE).exists()  # released on the error


def test_options_are_the_parsers_defaults_with_the_values_given(data_dir, tmp_path):
    """`train.options`: what `demo` trains with, without building an argument list."""
    options = train.options(data=data_dir, out=str(tmp_path), depth=3, learning_rate=3e-3)
    parsed = train.resolve_options(
        train_namespace(["--data", data_dir, "--out", str(tmp_path), "--depth", "3"])
    )
    config = train.training_config(options).to_dict()
    assert config == {**train.training_config(parsed).to_dict(), "learning_rate": 3e-3}
    assert config["image_size"] == [128, 128] and config["metrics"] == ["dice", "iou"]
    with pytest.raises(TypeError, match="train has no option 'colour'"):
        train.options(colour="red")


@pytest.mark.slow
def test_label_image_masks_train_with_the_default_mask_rule(tmp_path, capsys, monkeypatch):
    """Masks of object ids 1..N (StarDist, Cellpose) train as foreground; a threshold too."""
    from keras_unet_seg import evaluation
    from keras_unet_seg._errors import DataError

    data = make_synthetic_dataset(tmp_path / "data", 4, 2, image_size=(32, 32), seed=1)
    for mask_path in sorted((tmp_path / "data").glob("*/masks/*.png")):
        foreground = np.asarray(Image.open(mask_path)) > 0
        labels = np.where(foreground, 1 + np.arange(32)[None, :] // 4, 0).astype(np.uint16)
        assert len(np.unique(labels)) > 2, mask_path  # a label image, not a 0/1 mask
        Image.fromarray(labels).save(mask_path)
    run = tmp_path / "run"
    small = ["--base-filters", "4", "--depth", "2", "--image-size", "32", "--epochs", "1"]
    argv = ["train", "--data", data, "--out", str(run), *small]
    assert main(argv) == 0  # the defaults otherwise: the mask rule, augmentation, steps
    assert (
        "4 masks are label images (0 and object ids 1..N): foreground is value > 0. Pass "
        "--mask-threshold ... to binarise by another value, or --num-classes ... if the values "
        "are class ids."
    ) in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    defaults = train.training_config(train.options(data=data)).to_dict()
    kept = ("mask_threshold", "augment", "batch_size", "steps_per_epoch")
    assert {name: config[name] for name in kept} == {name: defaults[name] for name in kept}

    # --config takes it (no training needed to see that), and evaluate reads it back.
    (tmp_path / "options.json").write_text(json.dumps({"mask_threshold": 1}))
    args = train.resolve_options(
        train_namespace([*argv[1:], "--config", str(tmp_path / "options.json")])
    )
    assert args.mask_threshold == 1.0
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "mask_threshold": 1.0}))
    model = str(run / "best.keras")
    seen = []

    def read_pairs(directory, image_size, reading):
        seen.append(reading)
        raise DataError("read")  # a user's data error: one line, exit code 1

    monkeypatch.setattr(evaluation, "_read_pairs", read_pairs)
    assert main(["evaluate", "--model", model, "--data", data, "--tile-size", "32"]) == 1
    assert seen[0]["mask_threshold"] == 1.0
    assert main(["train", *argv[1:], "--mask-threshold", "nan"]) == 2
    assert "--mask-threshold: expected a finite number, got 'nan'" in capsys.readouterr().err

    # A mask that is neither binary nor a label image: the error names the options.
    mask = np.tile(np.array([0, 128, 255], np.uint8), (32, 11))[:, :32]
    Image.fromarray(mask).save(tmp_path / "data" / "train" / "masks" / "00000.png")
    assert main(["train", "--data", data, "--out", str(tmp_path / "refused"), *small]) == 1
    assert "Pass --mask-threshold ... to binarise it by value, or --num-classes ..." in (
        capsys.readouterr().err
    )


@pytest.mark.slow
def test_default_length_is_the_same_number_of_steps_for_8_and_96_images(tmp_path, capsys):
    """An epoch is `--steps-per-epoch` optimizer steps, however many images there are."""
    steps = {}
    for count in (8, 96):
        data = make_synthetic_dataset(tmp_path / f"d{count}", count, 2, image_size=(32, 32))
        options = train.options(
            data=data, out=str(tmp_path / f"r{count}"), image_size=(32, 32), base_filters=4
        )
        options.depth, options.epochs, options.augment = 2, 1, "none"
        result = train.train(options, verbose=1)
        steps[count] = int(result.model.optimizer.iterations)
        out = capsys.readouterr().out
        passes = f"{25 * 4 / count:.3g}"  # batches of 4
        assert f"1 epoch of 25 optimizer steps: 25 steps, about {passes} passes over the " in out
    assert steps == {8: 25, 96: 25}
    defaults = train.options()
    assert (defaults.epochs, defaults.steps_per_epoch, defaults.batch_size) == (10, 25, 4)


def test_augment_modes_and_the_booleans_of_older_runs(tmp_path):
    """`--augment` is geometric by default (the Data guide's measurement); `true` and
    `false` in the config.json of a run from before the modes are all and none."""
    assert train.options().augment == "geometric"
    for config, mode in ((True, "all"), (False, "none"), ("geometric", "geometric")):
        (tmp_path / "c.json").write_text(json.dumps({"augment": config}))
        argv = ["--data", "d", "--out", "o", "--config", str(tmp_path / "c.json")]
        assert train.resolve_options(train_namespace(argv)).augment == mode
    assert (
        train.resolve_options(
            train_namespace(["--data", "d", "--out", "o", "--no-augment"])
        ).augment
        == "none"
    )
    assert _types.AUGMENTATIONS["geometric"]["zoom"] == 0.0 and _types.AUGMENTATIONS["all"] == {}


def test_aspect_ratio_options_are_config_options(tmp_path):
    """Options of a mutually exclusive group are read from a config file and saved."""
    (tmp_path / "c.json").write_text(json.dumps({"crop_to_aspect_ratio": True}))
    argv = ["--data", "d", "--out", "o", "--config", str(tmp_path / "c.json")]
    args = train.resolve_options(train_namespace(argv))
    assert args.crop_to_aspect_ratio and not args.pad_to_aspect_ratio
    assert train.training_config(args).to_dict()["crop_to_aspect_ratio"] is True


def test_the_default_augmentation_is_the_best_of_the_data_guides_table():
    """The Data guide's "Which augmentation" table marks the default, and it scored best."""
    page = (REPO / "docs" / "guide" / "data.md").read_text(encoding="utf-8")
    table = page.split("### Which augmentation")[1].split("\n#")[0]
    rows = re.findall(r"^\| `(\w+)`( \(the default\))? \| ([0-9.]+) ± ", table, re.M)
    assert len(rows) >= 2  # modes compared
    best = max(rows, key=lambda row: float(row[2]))
    assert [mode for mode, default, _ in rows if default] == [best[0]]
    assert best[0] == train.options().augment
