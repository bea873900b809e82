"""A training run's state on disk: backups that survive any interruption, and the log.

At the end of each epoch `RunCheckpoint` (`callbacks.py`) commits the epoch:

1. the weights (the model's and the optimizer's variables, as a NumPy `.npz` file
   written with plain file writes, which fail cleanly on a full disk where h5py
   crashes) and `state.json` (the epochs done, every row of the log so far, the best
   epoch, the weights file's size and SHA-256) are written into a hidden folder
   `backup/.epoch-NNNN.tmp-XXXXXXXX/`, each file flushed and synced to disk;
2. that folder is renamed `backup/epoch-NNNN/` in one step: the commit point;
3. `log.csv` is rewritten from the rows, `best.keras` saved when the epoch is the best
   so far, and backups older than the previous one are deleted.

Whenever the process dies (Ctrl-C, SIGKILL, a full disk, a power cut after the sync),
the newest complete backup is whole and the previous one is still there. `restore`
tries the backups newest first (state readable, weights of the recorded size and
checksum, weights that load) and says which it used; the log is rewritten from that
backup's rows, so it never holds an epoch twice or an epoch that was not kept.
"""

import contextlib
import csv
import hashlib
import json
import os
import re
import secrets
import shutil

import keras
import numpy as np

from keras_unet_seg import _atomic
from keras_unet_seg._errors import DataError

BACKUP_FOLDER = "backup"
WEIGHTS_FILE = "weights.npz"
STATE_FILE = "state.json"
_BACKUP_NAME = re.compile(r"^epoch-(\d+)$")
_PARTIAL_NAME = re.compile(r"^\.epoch-\d+\.tmp-[0-9a-f]{8}$")
# Backups kept: the newest, and the previous one in case the newest is damaged later.
_KEEP = 2


class WriteError(Exception):
    """A backup or a run file could not be written (disk full, read-only folder)."""


class Restored:
    """A backup that loaded: `epoch` (epochs done), `rows`, `best`, `path`, `skipped`."""

    def __init__(self, epoch, rows, best, path, skipped):
        self.epoch = epoch
        self.rows = rows
        self.best = best
        self.path = path
        self.skipped = skipped


# --------------------------------------------------------------------------- #
# Writing
# --------------------------------------------------------------------------- #


def commit(model, backup_dir, state):
    """Writes the backup of `state["epoch"]` epochs: complete, synced, then renamed."""
    name = f"epoch-{state['epoch']:04d}"
    final = os.path.join(backup_dir, name)
    partial = os.path.join(backup_dir, f".{name}.tmp-{secrets.token_hex(4)}")
    try:
        os.makedirs(backup_dir, exist_ok=True)
        _check_free_space(model, backup_dir)
        os.mkdir(partial)
        weights = os.path.join(partial, WEIGHTS_FILE)
        _write_weights(model, weights)
        state = {**state, "weights": {"size": os.path.getsize(weights), "sha256": _sha256(weights)}}
        with open(os.path.join(partial, STATE_FILE), "w", encoding="utf-8") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        _fsync_folder(partial)
        if os.path.exists(final):  # the same epoch again, after an earlier commit
            shutil.rmtree(final)
        os.rename(partial, final)
        _fsync_folder(backup_dir)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise WriteError(
            f"cannot write the backup of epoch {state['epoch']} to '{final}': {_reason(error)}"
        ) from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def _write_weights(model, path):
    """The model's weights, then the optimizer's variables, in order, synced to disk."""
    arrays = {f"model_{i:05d}": value for i, value in enumerate(model.get_weights())}
    for i, variable in enumerate(_optimizer_variables(model)):
        arrays[f"optimizer_{i:05d}"] = keras.ops.convert_to_numpy(variable)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())


def _load_weights(model, path):
    """Loads `_write_weights`' file; `ValueError` if it does not match the model."""
    optimizer_variables = _optimizer_variables(model)
    with np.load(path, allow_pickle=False) as data:
        names = sorted(data.files)
        model_names = [name for name in names if name.startswith("model_")]
        optimizer_names = [name for name in names if name.startswith("optimizer_")]
        if len(model_names) != len(model.weights) or len(optimizer_names) != len(
            optimizer_variables
        ):
            raise DataError(
                f"{len(model_names)} model and {len(optimizer_names)} optimizer arrays for "
                f"{len(model.weights)} and {len(optimizer_variables)} variables"
            )
        model.set_weights([data[name] for name in model_names])
        for variable, name in zip(optimizer_variables, optimizer_names, strict=True):
            if tuple(variable.shape) != data[name].shape:
                raise DataError(f"{name} has shape {data[name].shape}, not {variable.shape}")
            variable.assign(data[name])


def _check_free_space(model, folder):
    """Refuses to start a backup that cannot fit."""
    needed = sum(_nbytes(v) for v in (*model.weights, *_optimizer_variables(model)))
    needed = int(needed * 1.05) + (1 << 20)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(
            f"{_megabytes(free)} free on its disk, and the backup needs about {_megabytes(needed)}"
        )


def _optimizer_variables(model):
    optimizer = getattr(model, "optimizer", None)
    return getattr(optimizer, "variables", None) or ()


def _nbytes(variable):
    itemsize = np.dtype(keras.backend.standardize_dtype(variable.dtype)).itemsize
    return int(np.prod(variable.shape)) * itemsize


def _megabytes(size):
    return f"{size / 1e6:.1f} MB"


def _reason(error):
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror} ({error.filename})" if error.filename else error.strerror
    return " ".join(str(error).split())


def write_log(path, rows):
    """Writes `rows` (dicts with an `epoch` key) as the CSV log, atomically."""
    fields = ["epoch", *sorted({name for row in rows for name in row} - {"epoch"})]
    try:
        with (
            _atomic.atomic_path(path) as temporary,
            open(temporary, "w", newline="", encoding="utf-8") as f,
        ):
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    except OSError as error:
        raise WriteError(f"cannot write the log '{path}': {_reason(error)}") from None


def save_model(model, path):
    """`model.save` to `path` atomically; a write failure raises `WriteError`."""
    try:
        _atomic.save_model(model, path)
    except (OSError, RuntimeError) as error:
        raise WriteError(f"cannot write the model '{path}': {_reason(error)}") from None


def prune(backup_dir):
    """Deletes backups older than the newest `_KEEP` complete ones, and partial ones."""
    for _, path in backups(backup_dir)[_KEEP:]:
        shutil.rmtree(path, ignore_errors=True)
    remove_partial(backup_dir)


def remove_temporary_files(out):
    """Deletes the temporary files (`_atomic.temporary_name`) an interruption left in `out`."""
    for name in os.listdir(out):
        if _atomic.is_temporary_name(name):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(out, name))


def remove_partial(backup_dir):
    """Deletes the partial backups an interruption left."""
    if not os.path.isdir(backup_dir):
        return
    for name in os.listdir(backup_dir):
        if name.startswith(".") and ".tmp-" in name:
            shutil.rmtree(os.path.join(backup_dir, name), ignore_errors=True)


def _fsync_folder(path):
    with contextlib.suppress(OSError):  # not every file system syncs a folder
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- #
# Reading
# --------------------------------------------------------------------------- #


def backups(backup_dir):
    """`[(epochs, path)]` of the committed backups, newest first."""
    if not os.path.isdir(backup_dir):
        return []
    found = []
    for name in os.listdir(backup_dir):
        match = _BACKUP_NAME.match(name)
        if match and os.path.isdir(os.path.join(backup_dir, name)):
            found.append((int(match.group(1)), os.path.join(backup_dir, name)))
    return sorted(found, reverse=True)


def is_backup(path):
    """Whether `path` is a backup folder a run wrote (committed or partial, maybe
    damaged): its name, and files among the weights and the state only."""
    name = os.path.basename(path)
    return (
        bool(_BACKUP_NAME.match(name) or _PARTIAL_NAME.match(name))
        and os.path.isdir(path)
        and not os.path.islink(path)
        and set(os.listdir(path)) <= {WEIGHTS_FILE, STATE_FILE}
    )


def read_state(path):
    """The checked `state.json` of the backup folder `path`; `ValueError` says what is wrong."""
    state_path = os.path.join(path, STATE_FILE)
    try:
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        raise DataError(f"{STATE_FILE} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{STATE_FILE} is unreadable ({' '.join(str(error).split())})") from None
    try:
        epoch, rows, best = int(state["epoch"]), list(state["log"]), state["best"]
        size, sha256 = int(state["weights"]["size"]), str(state["weights"]["sha256"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{STATE_FILE} lacks the epoch, the log or the weights' checksum") from None
    epochs = [row.get("epoch") if isinstance(row, dict) else None for row in rows]
    if epochs != list(range(epoch)):
        raise DataError(f"{STATE_FILE} does not log each of its {epoch} epochs once")
    weights = os.path.join(path, WEIGHTS_FILE)
    actual = os.path.getsize(weights) if os.path.isfile(weights) else None
    if actual != size:
        found = "missing" if actual is None else f"{actual} bytes"
        raise DataError(f"the weights file is incomplete ({found}, expected {size} bytes)")
    if _sha256(weights) != sha256:
        raise DataError("the weights file is damaged (its checksum differs)")
    return {"epoch": epoch, "rows": rows, "best": best, "weights": weights}


def latest_epoch(backup_dir):
    """The epochs done by the newest backup whose state reads, or 0 (no loading)."""
    for _, path in backups(backup_dir):
        with contextlib.suppress(ValueError):
            return read_state(path)["epoch"]
    return 0


def restore(model, backup_dir):
    """Loads the newest complete backup into `model` (compiled and built).

    Returns:
        A `Restored`, or `None` when the run has no backup (it starts at epoch 1).

    Raises:
        ValueError: if there are backups and none of them loads; the message lists
            each with the reason.
    """
    remove_partial(backup_dir)
    found = backups(backup_dir)
    skipped = []
    for _, path in found:
        try:
            state = read_state(path)
        except ValueError as error:
            skipped.append((path, str(error)))
            continue
        optimizer = model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)
        try:
            _load_weights(model, state["weights"])
        except Exception as error:  # NumPy, zipfile and the backend raise many types.
            skipped.append((path, f"its weights do not load ({type(error).__name__})"))
            continue
        return Restored(state["epoch"], state["rows"], state["best"], path, skipped)
    if skipped:
        reasons = "; ".join(f"'{path}': {reason}" for path, reason in skipped)
        raise DataError(f"no backup can be restored ({reasons})")
    return None
