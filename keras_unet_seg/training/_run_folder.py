"""The run folder: its files, claiming and locking it, resuming it, and what it logged.

A run folder receives `config.json`, `best.keras`, `model.keras`, `log.csv`,
`curves.png` and `backup/` (`_backups.py`: the backups of the last two epochs). The
run's files are recorded as they are written (`keras_unet_seg._outputs`); its
backups are recognised by their names and files. A folder holding other files is
refused unless `overwrite`, which removes the run's own files only; a file the run
did not write where it writes (a user's `config.json`, `backup/notes.txt`) is never
removed: the folder is refused. While a process trains in it, the folder holds
`.keras-unet-seg.lock` (its pid, host and start time), and a second process is
refused; a lock left by a process that no longer runs is taken over.
`resume` continues from the newest complete backup.
"""

import contextlib
import csv
import datetime
import json
import os
import shutil
import socket
import time
from typing import NamedTuple

from keras_unet_seg import _atomic, _outputs
from keras_unet_seg._naming import option
from keras_unet_seg.training import _backups, callbacks
from keras_unet_seg.training._errors import TrainingError

CONFIG_FILE = "config.json"
BEST_MODEL_FILE = callbacks.BEST_MODEL_FILE
FINAL_MODEL_FILE = "model.keras"
LOG_FILE = callbacks.LOG_FILE
CURVES_FILE = "curves.png"
BACKUP_FOLDER = _backups.BACKUP_FOLDER
# The files a run writes; `overwrite` replaces them (and the backups) in a folder.
RUN_FILES = (CONFIG_FILE, BEST_MODEL_FILE, FINAL_MODEL_FILE, LOG_FILE, CURVES_FILE)
LOCK_FILE = ".keras-unet-seg.lock"
_UNREADABLE_LOCK_SECONDS = 10
_SHOWN = 5


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
    """Raises `TrainingError` unless `out` holds a training run to resume."""
    if not os.path.isdir(out):
        raise TrainingError(f"run folder '{out}' does not exist: nothing to resume.")
    if not os.path.isfile(os.path.join(out, CONFIG_FILE)):
        raise TrainingError(
            f"run folder '{out}' holds no {CONFIG_FILE}: it is not a training run, "
            "so there is nothing to resume."
        )


@contextlib.contextmanager
def locked(out, verbose=1):
    """Holds the run folder `out` (created if needed) for this process while in the block.

    Raises `TrainingError` if another live process holds it; takes over (with a
    notice) a lock whose process no longer runs. The lock is removed on leaving,
    error or interruption included, and a folder created here is removed if empty.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise TrainingError(f"run folder '{out}' is a file, not a folder.")
    created = not os.path.isdir(out)
    write(lambda: os.makedirs(out, exist_ok=True), out)
    path = os.path.join(out, LOCK_FILE)
    try:
        _lock(out, path, verbose)
    except BaseException:
        _remove_empty(out, created)
        raise
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        _remove_empty(out, created)


def _lock(out, path, verbose):
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        other = _stale_holder(out, path)
        if verbose and other:
            print(
                f"Taking over the run folder '{out}': its lock was left by process "
                f"{other['pid']} on {other['host']}, which no longer runs."
            )
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        return _lock(out, path, verbose)
    except OSError as error:
        raise TrainingError(f"cannot write '{path}': {_reason(error)}.") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as f:
        json.dump(holder, f)


def _stale_holder(out, path):
    """The holder of the lock `path` that no longer runs (`None` if the lock is gone);
    raises `TrainingError` if it may still run."""
    try:
        with open(path, encoding="utf-8") as f:
            holder = json.load(f)
        pid, host = int(holder["pid"]), str(holder["host"])
    except FileNotFoundError:  # released meanwhile
        return None
    except (OSError, ValueError, KeyError, TypeError):
        # A process writes its lock as soon as it creates it: an old unreadable lock is
        # one whose process was killed in between.
        if time.time() - os.path.getmtime(path) > _UNREADABLE_LOCK_SECONDS:
            return {"pid": "(unknown)", "host": "(unknown)"}
        raise TrainingError(
            f"run folder '{out}' is being locked by another process; try again."
        ) from None
    if host != socket.gethostname() or _running(pid):
        gone = "" if host == socket.gethostname() else f"; if it no longer runs, delete '{path}'"
        raise TrainingError(
            f"run folder '{out}' is in use by process {pid} on {host} (training since "
            f"{holder.get('started')}): wait for it to finish, or choose another "
            f"{option('out')}{gone}."
        )
    return {"pid": pid, "host": host}


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _remove_empty(out, created):
    if created:
        with contextlib.suppress(OSError):  # not empty: it holds the run
            os.rmdir(out)


def open_run(out, epochs, resume, overwrite, verbose=1):
    """Checks (and with `overwrite` clears) the run folder; returns its `RunPaths`.

    Raises `TrainingError` for a folder that is not a run's (unless `overwrite`), a
    file the run did not write where it writes, or a resumed run that has trained
    `epochs`.
    """
    check_own_files(out)
    if not resume:
        _claim(out, overwrite, verbose)
    paths = run_paths(out)
    completed = _backups.latest_epoch(paths.backup) if resume else 0
    if completed >= epochs and not _is_stale(paths.final, paths.backup):
        raise TrainingError(
            f"run '{out}' has already trained {completed} epochs ({option('epochs', epochs)}); "
            f"to train longer, pass {option('resume', True)} with {option('epochs')} greater "
            f"than {completed}."
        )
    return paths


def check_own_files(out):
    """Raises `TrainingError` if a file where a run writes was not written by a run.

    The run's files count as a run's when recorded (`_outputs`), and `backup/`'s
    entries when they are backups (`_backups.is_backup`).
    """
    foreign = [
        name
        for name in RUN_FILES
        if os.path.lexists(os.path.join(out, name))
        and not _outputs.written_by_library(os.path.join(out, name), out)
    ]
    backup = os.path.join(out, BACKUP_FOLDER)
    if os.path.islink(backup) or os.path.isfile(backup):
        foreign.append(BACKUP_FOLDER)
    elif os.path.isdir(backup):
        foreign += [
            f"{BACKUP_FOLDER}/{name}"
            for name in sorted(os.listdir(backup))
            if not _backups.is_backup(os.path.join(backup, name))
        ]
    if foreign:
        raise TrainingError(
            f"run folder '{out}' holds {_shown(foreign)} where a run writes, and "
            "keras-unet-seg did not write them (or they changed since): it never replaces "
            f"or removes them; choose another {option('out')}."
        )


def _claim(out, overwrite, verbose):
    """Refuses a folder holding files unless `overwrite`; then removes the run's files
    (`check_own_files` has found them all the run's)."""
    if not os.path.isdir(out):
        return
    hidden = (_outputs.MANIFEST, LOCK_FILE)
    found = sorted(
        name
        for name in os.listdir(out)
        if not _atomic.is_temporary_name(name) and name not in hidden
    )
    if found and not overwrite:
        _refuse(out, found)
    removed = [name for name in (*RUN_FILES, BACKUP_FOLDER) if name in found]
    for name in removed:
        path = os.path.join(out, name)
        write(lambda path=path: _remove(path), path)
    if verbose and removed:
        print(f"{option('overwrite', True)}: removed {', '.join(removed)} from '{out}'.")


def _refuse(out, found):
    if CONFIG_FILE in found:
        raise TrainingError(
            f"run folder '{out}' already holds a training run ({CONFIG_FILE}); pass "
            f"{option('resume', True)} to continue it, {option('overwrite', True)} to start it "
            f"over, or choose another {option('out')}."
        )
    raise TrainingError(
        f"run folder '{out}' is not empty and holds no training run (it holds "
        f"{_shown(found)}); choose another {option('out')}, or pass {option('overwrite', True)} "
        "to train there "
        "(the files of an earlier run are then removed, other files kept)."
    )


def _shown(names):
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def write(action, path):
    """Runs a file-system `action`; an `OSError` becomes a `TrainingError`."""
    try:
        return action()
    except OSError as error:
        reason = _reason(error)
        raise TrainingError(f"cannot write '{path}': {reason}.") from None


def _is_stale(final_path, backup_dir):
    """Whether the final model is missing or older than the newest backup."""
    if not os.path.exists(final_path):
        return True
    found = _backups.backups(backup_dir)
    newest = os.path.join(found[0][1], _backups.STATE_FILE) if found else None
    return newest is not None and os.path.getmtime(final_path) < os.path.getmtime(newest)


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


def _reason(error):
    return error.strerror or " ".join(str(error).split())
