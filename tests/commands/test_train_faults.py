"""`train` keeps its run whole through faults: kills at any moment, damaged backups, a
full disk, a read-only folder, a diverging loss, a folder it did not write.

Data: 4 + 2 synthetic 32x32 pairs; model: base_filters 8, depth 2, one batch per epoch.
The random-kill test runs `KERAS_UNET_SEG_FAULT_KILLS` kills: 1 by default, which
takes each of its processes (TensorFlow's import included) a few seconds; the
issue's 20 by hand (`KERAS_UNET_SEG_FAULT_KILLS=20 pytest -s -k random ...`). How a
resumed run continues exactly is tested in `tests/training/test_callbacks.py`.
"""

import csv
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_unet_seg import _atomic, _outputs
from keras_unet_seg.cli import main
from keras_unet_seg.data import make_synthetic_dataset
from keras_unet_seg.training import _backups, callbacks

from ._helpers import checksums, error_line

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parent / "fault_worker.py"
KILLS = int(os.environ.get("KERAS_UNET_SEG_FAULT_KILLS", "1"))
SMALL = ["--base-filters", "8", "--depth", "2", "--image-size", "32", "--batch-size", "4"]
SMALL += ["--no-augment", "--seed", "0", "--steps-per-epoch", "0"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_synthetic_dataset(root, num_train=4, num_val=2, image_size=(32, 32), seed=0)


def _logged_epochs(run):
    with open(run / "log.csv", newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def _leftovers(run):
    """Partial backups and temporary files: none may outlive a finished run."""
    return sorted(
        os.path.relpath(os.path.join(folder, name), run)
        for folder, folders, files in os.walk(run)
        for name in (*folders, *files)
        if name.startswith(".") and name != _outputs.MANIFEST
    )


def _worker(fault, argv, timeout=600):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, str(WORKER), json.dumps(fault), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def _weights(path):
    return keras.saving.load_model(path).get_weights()


class _InterruptAtEpoch(callbacks.RunCheckpoint):
    """Ctrl-C at the start of the third epoch (after the backups of epochs 1 and 2)."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt
        super().on_epoch_begin(epoch, logs)


# --------------------------------------------------------------------------- #
# Kills at random moments
# --------------------------------------------------------------------------- #

POINTS = ("time", "time", "time", "weights", "state", "committed", "log", "best", "prune")


@pytest.mark.slow
def test_train_killed_at_random_moments_resumes_to_the_uninterrupted_result(data_dir, tmp_path):
    epochs = 2 * KILLS  # a kill costs at most about one epoch's progress: room for all
    argv = ["--data", data_dir, *SMALL, "--epochs", str(epochs)]
    reference = tmp_path / "reference"
    started = time.monotonic()
    result = _worker({}, ["train", "--out", str(reference), *argv])
    assert result.returncode == 0, result.stderr[-3000:]
    seconds = time.monotonic() - started

    run = tmp_path / "run"
    rng = random.Random(11)
    outcomes = []
    while len(outcomes) < KILLS:
        remaining = epochs - (len(_logged_epochs(run)) if (run / "log.csv").exists() else 0)
        fault = {"point": rng.choice(POINTS), "signal": rng.choice(["INT", "KILL"])}
        # A timed kill strikes before the process could end: from the import of
        # TensorFlow to the last epoch's writes.
        fault["delay"] = round(rng.uniform(0.5, 0.8 * seconds * remaining / epochs), 2)
        if (run / "config.json").exists():
            command = ["train", "--out", str(run), "--resume", "--epochs", str(epochs)]
        else:  # killed before the run was created: start it again
            command = ["train", "--out", str(run), *argv]
        result = _worker(fault, command)
        assert result.returncode != 0, f"finished before the fault {fault} struck: {outcomes}"
        # 130: our Ctrl-C exit; -2: Ctrl-C while Python imports; -9: SIGKILL.
        assert result.returncode in (130, -2, -9), (fault, result.stderr[-3000:])
        if result.returncode == 130:
            assert "Traceback" not in result.stderr, result.stderr[-3000:]
        outcomes.append((fault, result.returncode, remaining))
    result = _worker({}, ["train", "--out", str(run), "--resume", "--epochs", str(epochs)])
    assert result.returncode == 0, (outcomes, result.stderr[-3000:])
    print(f"\n{len(outcomes)} kills (fault, exit status, epochs left before):")
    print(*outcomes, sep="\n")

    assert _logged_epochs(run) == list(range(epochs))
    assert len(_backups.backups(run / "backup")) <= 2 and _leftovers(run) == []
    # Each resumption restarts the training data's shuffling, so the order of the 4
    # images inside the one batch of a resumed epoch differs from the uninterrupted
    # run's: the rounding of the batch's sums changes, and Adam amplifies it over the
    # epochs (20 kills, 40 epochs: 0.024). With the same order a resumed run is bit
    # for bit the uninterrupted one (the test below).
    differences = [
        float(np.max(np.abs(resumed - uninterrupted)))
        for resumed, uninterrupted in zip(
            _weights(run / "model.keras"), _weights(reference / "model.keras"), strict=True
        )
    ]
    print(f"largest weight difference from the uninterrupted run: {max(differences):.3g}")
    assert max(differences) < 0.05


# --------------------------------------------------------------------------- #
# Damaged backups, a full disk, a read-only folder
# --------------------------------------------------------------------------- #


@pytest.mark.slow
def test_resume_falls_back_to_the_previous_backup_and_says_which(
    data_dir, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "run"
    monkeypatch.setattr(callbacks, "RunCheckpoint", _InterruptAtEpoch)
    argv = ["train", "--data", data_dir, "--out", str(run), *SMALL, "--epochs", "3"]
    assert main(argv) == 130
    monkeypatch.undo()

    # An empty weights file (the zero-byte backup).
    newest, previous = (path for _, path in _backups.backups(run / "backup"))
    weights = os.path.join(newest, _backups.WEIGHTS_FILE)
    size = os.path.getsize(weights)
    open(weights, "w").close()
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    reason = f"the weights file is incomplete (0 bytes, expected {size} bytes)"
    assert f"Skipped the backup '{newest}': {reason}." in out
    assert f"Resuming from the backup '{previous}' (1 epochs done): epoch 2/3" in out
    assert _logged_epochs(run) == [0, 1, 2]

    # A truncated state.json (the truncated training_metadata.json).
    newest, previous = (path for _, path in _backups.backups(run / "backup"))
    with open(os.path.join(newest, _backups.STATE_FILE), "r+b") as f:
        f.truncate(40)
    assert main(["train", "--out", str(run), "--resume", "--epochs", "4"]) == 0
    out = capsys.readouterr().out
    assert f"Skipped the backup '{newest}': state.json is unreadable (Unterminated string" in out
    assert f"Resuming from the backup '{previous}' (2 epochs done): epoch 3/4" in out
    assert _logged_epochs(run) == [0, 1, 2, 3]
    assert _leftovers(run) == []

    # With every backup damaged there is nothing to resume from: said, not guessed.
    for _, path in _backups.backups(run / "backup"):
        open(os.path.join(path, _backups.WEIGHTS_FILE), "w").close()
    assert main(["train", "--out", str(run), "--resume", "--epochs", "5"]) == 1
    line = error_line(capsys)
    assert f"run '{run}' cannot be resumed: no backup can be restored ('" in line
    assert line.endswith("Start it over with --overwrite.")


@pytest.mark.slow
def test_a_full_disk_ends_in_one_line_and_the_run_resumes(data_dir, tmp_path):
    run = tmp_path / "run"
    argv = ["train", "--data", data_dir, "--out", str(run), *SMALL, "--epochs", "2"]
    # Files past 200 KB cannot be written: config.json and the log can, a backup cannot.
    result = _worker({"fsize": 200_000}, argv)
    assert result.returncode == 1, result.stderr[-3000:]
    ours = [line for line in result.stderr.splitlines() if line.startswith("keras-unet-seg")]
    assert len(ours) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    backup = run / "backup" / "epoch-0001"
    assert ours[0].startswith(
        f"keras-unet-seg: error: cannot write the backup of epoch 1 to '{backup}': "
    )
    assert ours[0].endswith(
        "No epoch was completed, so nothing was kept. Free some space (or make the folder "
        f"writable) and continue it with --resume (--out {run})."
    )
    assert _leftovers(run) == []

    # Resumed in this process (no limit): a second process would import TensorFlow again.
    assert main(["train", "--out", str(run), "--resume"]) == 0
    assert _logged_epochs(run) == [0, 1]


def test_a_backup_that_cannot_fit_on_the_disk_is_not_started(
    data_dir, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "run"
    usage = _backups.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(_backups.shutil, "disk_usage", lambda path: usage._replace(free=300_000))
    argv = ["train", "--data", data_dir, "--out", str(run), *SMALL, "--epochs", "1"]
    assert main(argv) == 1
    line = error_line(capsys)
    assert f"cannot write the backup of epoch 1 to '{run / 'backup' / 'epoch-0001'}': " in line
    assert "0.3 MB free on its disk, and the backup needs about 1.4 MB. No epoch was" in line
    assert not (run / "model.keras").exists() and _leftovers(run) == []


def test_a_read_only_run_folder_ends_in_one_line(data_dir, tmp_path, monkeypatch, capsys):
    def refuse(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(_atomic, "atomic_path", refuse)
    run = tmp_path / "run"
    argv = ["train", "--data", data_dir, "--out", str(run), *SMALL, "--epochs", "1"]
    assert main(argv) == 1
    assert error_line(capsys).endswith(f"cannot write '{run / 'config.json'}': Permission denied.")


# --------------------------------------------------------------------------- #
# A diverging loss
# --------------------------------------------------------------------------- #


def test_a_nan_loss_stops_training_in_one_line_and_saves_no_nan_model(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--data", data_dir, "--out", str(run), *SMALL, "--epochs", "4"]
    assert main([*argv, "--learning-rate", "1e30"]) == 1
    line = error_line(capsys)
    assert re.search(
        r"error: training stopped: the (val_)?loss is nan at epoch \d+(, batch \d+)?, so the "
        r"model diverged\. (No epoch was completed, so nothing was kept|The run keeps its "
        r"backup of epoch \d+)\. Try a lower --learning-rate in a new run\.$",
        line,
    ), line
    assert not (run / "model.keras").exists()
    for _, path in _backups.backups(run / "backup"):
        state = _backups.read_state(path)
        assert all(np.isfinite(row["loss"]) for row in state["rows"])
    if (run / "best.keras").exists():
        assert all(np.isfinite(w).all() for w in _weights(run / "best.keras"))


# --------------------------------------------------------------------------- #
# A folder the command did not write
# --------------------------------------------------------------------------- #


def test_train_never_replaces_or_removes_a_file_it_did_not_write(data_dir, tmp_path, capsys):
    # The folder: a user's config.json, log.csv and backup/thesis_v3.docx.
    run = tmp_path / "mine"
    (run / "backup").mkdir(parents=True)
    (run / "config.json").write_text('{"my": "settings"}')
    (run / "log.csv").write_text("day,hours\n1,8\n")
    (run / "backup" / "thesis_v3.docx").write_bytes(b"PK\x03\x04 the thesis")
    (run / "notes.txt").write_text("the user's notes")
    before = checksums(run)
    argv = ["train", "--data", data_dir, "--out", str(run), *SMALL, "--epochs", "1"]
    for flags in ([], ["--overwrite"]):
        assert main([*argv, *flags]) == 1
        assert error_line(capsys) == (
            f"keras-unet-seg: error: run folder '{run}' holds config.json, log.csv, "
            "backup/thesis_v3.docx where a run writes, and keras-unet-seg did not write them "
            "(or they changed since): it never replaces or removes them; choose another --out."
        )
        assert checksums(run) == before

    # A folder without a run's files is refused unless --overwrite (a run's files shown).
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("the user's notes")
    assert main(["train", "--data", data_dir, "--out", str(notes), *SMALL]) == 1
    assert error_line(capsys).endswith(
        f"run folder '{notes}' is not empty and holds no training run (it holds notes.txt); "
        "choose another --out, or pass --overwrite to train there (the files of an earlier "
        "run are then removed, other files kept)."
    )
    stale = tmp_path / "stale"
    (stale / "backup" / "epoch-0003").mkdir(parents=True)
    assert main(["train", "--data", data_dir, "--out", str(stale), *SMALL]) == 1
    assert "(it holds backup); choose another --out" in error_line(capsys)

    assert main(["train", "--out", str(run), "--resume", "--overwrite"]) == 2
    assert "--resume continues the run in --out and --overwrite starts it over" in (
        error_line(capsys)
    )
