"""The run folder of `train`: its files, claiming it, resuming it, and what it logged.

`--out RUN` receives `config.json`, `best.keras`, `model.keras`, `log.csv`,
`curves.png` and `backup/` (`_run_state`: the backups of the last two epochs). A
folder holding other files is refused unless `--overwrite` (which replaces a run's
own files there); `--resume` continues from the newest complete backup.
"""

import csv
import os
import shutil
from typing import NamedTuple

from keras_unet_seg import _atomic
from keras_unet_seg.commands import _run_state
from keras_unet_seg.commands._errors import CommandError, one_line

CONFIG_FILE = "config.json"
BEST_MODEL_FILE = "best.keras"
FINAL_MODEL_FILE = "model.keras"
LOG_FILE = "log.csv"
CURVES_FILE = "curves.png"
BACKUP_FOLDER = _run_state.BACKUP_FOLDER
# The files a run writes; `--overwrite` replaces them (and the backups) in a folder.
RUN_FILES = (CONFIG_FILE, BEST_MODEL_FILE, FINAL_MODEL_FILE, LOG_FILE, CURVES_FILE)


class RunPaths(NamedTuple):
    """The paths of a run folder's files."""

    out: str
    config: str
    log: str
    backup: str
    best: str
    final: str
    curves: str


def run_paths(out):
    return RunPaths(
        out,
        *(
            os.path.join(out, name)
            for name in (CONFIG_FILE, LOG_FILE, BACKUP_FOLDER, BEST_MODEL_FILE)
        ),
        os.path.join(out, FINAL_MODEL_FILE),
        os.path.join(out, CURVES_FILE),
    )


def check_resumable(out):
    """Raises `CommandError` unless `out` holds a training run to resume."""
    if not os.path.isdir(out):
        raise CommandError(f"run folder '{out}' does not exist: nothing to resume.")
    if not os.path.isfile(os.path.join(out, CONFIG_FILE)):
        raise CommandError(
            f"run folder '{out}' holds no {CONFIG_FILE}: it is not a training run, "
            "so there is nothing to resume."
        )


def open_run(out, epochs, resume, overwrite, verbose=1):
    """Checks (and with `--overwrite` clears) the run folder; returns its `RunPaths`.

    Raises `CommandError` for a file in place of the folder, a folder that is not
    this command's (unless `overwrite`), or a resumed run that has trained `epochs`.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise CommandError(f"run folder '{out}' is a file, not a folder.")
    if not resume:
        _claim(out, overwrite, verbose)
    paths = run_paths(out)
    completed = _run_state.latest_epoch(paths.backup) if resume else 0
    if completed >= epochs and not _is_stale(paths.final, paths.backup):
        raise CommandError(
            f"run '{out}' has already trained {completed} epochs (--epochs {epochs}); "
            f"to train longer, pass --resume with --epochs greater than {completed}."
        )
    return paths


def _claim(out, overwrite, verbose):
    """Refuses a folder holding files (not written by this command) unless `overwrite`."""
    if not os.path.isdir(out):
        return
    found = sorted(name for name in os.listdir(out) if not _atomic.is_temporary_name(name))
    if found and not overwrite:
        _refuse(out, found)
    removed = [name for name in (*RUN_FILES, BACKUP_FOLDER) if name in found]
    for name in removed:
        path = os.path.join(out, name)
        write(lambda path=path: _remove(path), path)
    if verbose and removed:
        print(f"--overwrite: removed {', '.join(removed)} from '{out}'.")


def _refuse(out, found):
    if CONFIG_FILE in found:
        raise CommandError(
            f"run folder '{out}' already holds a training run ({CONFIG_FILE}); pass "
            "--resume to continue it, --overwrite to start it over, or choose another "
            "--out."
        )
    shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    raise CommandError(
        f"run folder '{out}' is not empty and holds no training run (it holds {shown}); "
        "choose another --out, or pass --overwrite to train there (a run's own files "
        f"and {BACKUP_FOLDER}/ are then replaced, other files kept)."
    )


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def write(action, path):
    """Runs a file-system `action`; an `OSError` becomes a one-line `CommandError`."""
    try:
        return action()
    except OSError as error:
        reason = error.strerror or one_line(error)
        raise CommandError(f"cannot write '{path}': {reason}.") from None


def _is_stale(final_path, backup_dir):
    """Whether the final model is missing or older than the newest backup."""
    if not os.path.exists(final_path):
        return True
    found = _run_state.backups(backup_dir)
    newest = os.path.join(found[0][1], _run_state.STATE_FILE) if found else None
    return newest is not None and os.path.getmtime(final_path) < os.path.getmtime(newest)


def start(paths, config, model, options, verbose=1):
    """Creates the folder and writes `config.json`; with `--resume`, restores `model`.

    Returns the `_run_state.Restored` backup training continues from, or `None`.
    """
    write(lambda: os.makedirs(paths.out, exist_ok=True), paths.out)
    _run_state.remove_temporary_files(paths.out)
    write(lambda: _atomic.write_json(paths.config, config), paths.config)
    if not options.resume:
        _run_state.remove_partial(paths.backup)
        return None
    restored = _restore(model, paths, verbose)
    if restored is not None and verbose:
        step = int(model.optimizer.iterations)
        print(
            f"Resuming from the backup '{restored.path}' ({restored.epoch} epochs done): "
            f"epoch {restored.epoch + 1}/{options.epochs}, optimizer step {step}."
        )
    return restored


def _restore(model, paths, verbose):
    """Loads the newest complete backup; rewrites the log and best model to match it."""
    try:
        restored = _run_state.restore(model, paths.backup)
    except ValueError as error:
        raise CommandError(
            f"run '{paths.out}' cannot be resumed: {error}. Start it over with --overwrite."
        ) from None
    if verbose:
        for path, reason in restored.skipped if restored else ():
            print(f"Skipped the backup '{path}': {reason}.")
        if restored is None:
            print(f"No backup in '{paths.out}' yet: training starts at epoch 1.")
    try:
        _run_state.write_log(paths.log, restored.rows if restored else [])
        best = restored.best if restored else None
        # The best model is saved after its backup: an interruption in between is made up.
        if best is not None and best["epoch"] == restored.epoch - 1:
            _run_state.save_model(model, paths.best)
    except _run_state.WriteError as error:
        raise CommandError(f"{error}.") from None
    return restored


def kept(rows):
    """What a stopped run keeps, in a sentence, from its committed log `rows`."""
    if not rows:
        return "No epoch was completed, so nothing was kept."
    return f"The run keeps its backup of epoch {len(rows)}."


def best_epoch(log_path, monitor):
    """`(epoch, value)` of the CSV log's highest `monitor`, or `(None, None)`."""
    rows = []
    if os.path.exists(log_path):
        with open(log_path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    best = None
    for row in rows:
        if row.get(monitor) in (None, ""):
            continue
        value = float(row[monitor])
        if best is None or value > best[1]:
            best = (int(row["epoch"]), value)
    return best if best is not None else (None, None)
