"""Callbacks for any `model.fit`: the run's checkpoint, the NaN stop, the unfreezing.

The learning-rate schedule is `schedule.LearningRateSchedule`.
"""

import math
import os

import keras

from keras_unet_seg import _validation
from keras_unet_seg.training import _backups
from keras_unet_seg.training.config import UNFROZEN_LEARNING_RATE_FACTOR

__all__ = ["NonFiniteLoss", "RunCheckpoint", "TerminateOnNonFinite", "UnfreezeEncoder"]

LOG_FILE = "log.csv"
BEST_MODEL_FILE = "best.keras"


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite: the epoch is not committed."""

    def __init__(self, name, value, epoch, batch=None):
        where = f"epoch {epoch + 1}" + ("" if batch is None else f", batch {batch + 1}")
        super().__init__(f"the {name} is {value} at {where}")


def check_finite(logs, epoch, batch=None):
    """Raises `NonFiniteLoss` if the `loss` (or, at an epoch's end, `val_loss`) of
    `logs` is NaN or infinite."""
    names = ("loss",) if batch is not None else ("loss", "val_loss")
    for name in names:
        value = (logs or {}).get(name)
        if value is not None and not math.isfinite(float(value)):
            raise NonFiniteLoss(name, float(value), epoch, batch)


class TerminateOnNonFinite(keras.callbacks.Callback):
    """Stops training with `NonFiniteLoss` when the loss becomes NaN or infinite.

    Unlike `keras.callbacks.TerminateOnNaN`, which lets `fit` return normally
    after the batch, it raises at once, naming the epoch and batch, so no
    callback after it (a checkpoint) ever keeps the diverged weights: the run
    keeps its last good epoch.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=keras.optimizers.SGD(1e30), loss="mse")
    >>> model.fit(np.ones((4, 1)), 1e30 * np.ones((4, 1)), epochs=2, verbose=0,
    ...           callbacks=[TerminateOnNonFinite()])
    Traceback (most recent call last):
    ...
    keras_unet_seg.training.callbacks.NonFiniteLoss: the loss is inf at epoch 1, batch 1
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        check_finite(logs, self.epoch, batch)

    def on_epoch_end(self, epoch, logs=None):
        check_finite(logs, epoch)


class RunCheckpoint(keras.callbacks.Callback):
    """Keeps a training run in the folder `out`, whole whatever kills the process.

    A drop-in for `keras.callbacks.BackupAndRestore` that survives a kill at
    any moment: at each epoch's end it writes a backup (the weights and the
    optimizer's state, with every log row so far and the file's SHA-256) under a
    temporary name, syncs it and renames it in one step, then rewrites
    `log.csv` from the rows, saves `best.keras` when `monitor` improves, and
    deletes backups older than the previous one (`_backups.py` says how). At the
    start of `fit`, the newest complete backup is loaded and `fit` continues
    after its epoch, as `BackupAndRestore` does; a damaged newest backup is
    skipped for the one before. A non-finite loss is never committed.

    Args:
        out: str, the run folder (created if needed).
        monitor: str, the logged quantity that selects `best.keras`, such as
            `"val_dice_coefficient"`. Defaults to `"val_loss"`.
        mode: `"max"` (a score) or `"min"` (a loss). Defaults to `"min"` for
            names ending in `loss`, else `"max"`.
        restore: bool, whether `fit` continues from the newest backup. Defaults
            to `True`.

    Attributes:
        rows: the committed epochs' log rows, restored ones included.
        restored: the backup loaded (its `epoch`, `rows`, `path`, and the
            damaged ones `skipped`), or `None`.

    Example:

    >>> import numpy as np, tempfile
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> out = tempfile.mkdtemp()
    >>> x, y = np.ones((4, 2)), np.ones((4, 1))
    >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[RunCheckpoint(out, "loss")])
    >>> _ = model.fit(x, y, epochs=3, verbose=0, callbacks=[RunCheckpoint(out, "loss")])
    >>> sorted(os.listdir(out)), [r["epoch"] for r in RunCheckpoint(out).read_rows()]
    (['backup', 'best.keras', 'log.csv'], [0, 1, 2])
    """

    def __init__(self, out, monitor="val_loss", mode=None, restore=True):
        super().__init__()
        if mode is None:
            mode = "min" if monitor.endswith("loss") else "max"
        _validation.check_choice("mode", mode, ("min", "max"))
        self.out = out
        self.backup_dir = os.path.join(out, _backups.BACKUP_FOLDER)
        self.log_path = os.path.join(out, LOG_FILE)
        self.best_path = os.path.join(out, BEST_MODEL_FILE)
        self.monitor = monitor
        self.sign = 1.0 if mode == "max" else -1.0
        self.restore_on_train_begin = restore
        self.rows = []
        self.best = None
        self.restored = None
        self.epoch = 0

    def restore(self, model):
        """Loads the newest complete backup into `model` (compiled and built).

        Rewrites `log.csv` from the backup's rows and makes up `best.keras` if
        the process died between the backup and it. Returns the
        backup (its `epoch`, `rows` and `path`), or `None` when there is none; `ValueError`
        if none of the backups loads.
        """
        restored = _backups.restore(model, self.backup_dir)
        self.restored = restored
        self.rows = list(restored.rows) if restored else []
        self.best = dict(restored.best) if restored and restored.best else None
        _backups.write_log(self.log_path, self.rows)
        # The best model is saved after its backup: an interruption in between is made up.
        if self.best is not None and self.best["epoch"] == restored.epoch - 1:
            _backups.save_model(model, self.best_path)
        return restored

    def read_rows(self):
        """The rows of the newest complete backup, without loading any weights."""
        for _, path in _backups.backups(self.backup_dir):
            try:
                return _backups.read_state(path)["rows"]
            except ValueError:
                continue
        return []

    def on_train_begin(self, logs=None):
        if self.restore_on_train_begin and self.restored is None:
            restored = self.restore(self.model)
            if restored is not None:
                # How `keras.callbacks.BackupAndRestore` makes `fit` continue.
                self.model._initial_epoch = restored.epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        check_finite(logs, self.epoch, batch)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        check_finite(logs, epoch)
        row = {"epoch": epoch, **{name: float(logs[name]) for name in sorted(logs)}}
        rows = [*self.rows, row]
        value = row.get(self.monitor)
        improved = value is not None and math.isfinite(value)
        improved = improved and (
            self.best is None or self.sign * value > self.sign * self.best["value"]
        )
        best = {"epoch": epoch, "value": value} if improved else self.best
        state = {"epoch": epoch + 1, "monitor": self.monitor, "best": best, "log": rows}
        _backups.commit(self.model, self.backup_dir, state)
        self.rows, self.best = rows, best  # `rows` lists the committed epochs
        _backups.write_log(self.log_path, self.rows)
        if improved:
            _backups.save_model(self.model, self.best_path)
        _backups.prune(self.backup_dir)


def freeze_encoder(model, epochs, verbose=1):
    """Freezes `model`'s encoder for its first `epochs` epochs; returns the callbacks.

    Call after `compile`. The optimizer is built for every weight first (unless it
    is built already), encoder included, so that unfreezing needs no new optimizer,
    and a resumed run restores the same optimizer state whichever phase it stopped
    in. Returns
    `[UnfreezeEncoder(epochs)]`, or `[]` when `epochs` is 0.
    """
    if not epochs:
        return []
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.freeze_encoder()
    return [UnfreezeEncoder(epochs, verbose=verbose)]


class UnfreezeEncoder(keras.callbacks.Callback):
    """Unfreezes the model's encoder at the start of epoch `epoch` (0-based), and says so.

    Rebuilds the training step, so that the encoder's weights train from that epoch
    on; the learning rate is the schedule's (`LearningRateSchedule` with
    `unfreeze_epoch=epoch`, which must come before this callback so the printed
    rate is the epoch's). The model's optimizer must have been built with every
    weight, encoder included (`freeze_encoder` does it). A run resumed after
    `epoch` unfreezes at its first epoch.

    Args:
        epoch: int, the first epoch that trains the encoder.
        verbose: int, 1 prints one line when the encoder unfreezes, 0 nothing.
    """

    def __init__(self, epoch, verbose=1):
        super().__init__()
        self.epoch = epoch
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        if epoch < self.epoch or self.model.encoder.trainable:
            return
        self.model.unfreeze_encoder()
        self.model.make_train_function(force=True)
        if self.verbose:
            rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            since = "" if epoch == self.epoch else f" (resumed; frozen for {self.epoch} epochs)"
            print(
                f"Epoch {epoch + 1}: the encoder is unfrozen{since} and trains from now on, "
                f"at {UNFROZEN_LEARNING_RATE_FACTOR:g} times the scheduled learning rate "
                f"({rate:.4g})."
            )
