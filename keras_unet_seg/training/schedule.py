"""The learning rate of each epoch: one function of the epoch and the options."""

import math

import keras

from keras_unet_seg import _validation

__all__ = ["LearningRateSchedule", "learning_rate"]

SCHEDULES = ("none", "cosine", "plateau")


def _check(epochs, schedule, warmup_epochs, unfreeze_epoch, unfreeze_factor, mode, plateau):
    _validation.check_positive_int("epochs", epochs)
    _validation.check_choice("schedule", schedule, SCHEDULES)
    _validation.check_non_negative_int("warmup_epochs", warmup_epochs)
    if unfreeze_epoch is not None:
        _validation.check_non_negative_int("unfreeze_epoch", unfreeze_epoch)
    _validation.check_positive("unfreeze_factor", unfreeze_factor)
    _validation.check_choice("mode", mode, ("max", "min"))
    patience, factor, min_delta = plateau
    _validation.check_positive_int("patience", patience)
    if not _validation.is_real(factor) or not 0 < factor < 1:
        raise _validation.invalid_value("factor", "a number in (0, 1)", factor)
    _validation.check_non_negative("min_delta", min_delta)


def _plateau_reductions(history, start, stop, mode, plateau):
    """How many times `keras.callbacks.ReduceLROnPlateau` reduces the rate over `history`.

    The monitored values of epochs `start` (the end of the warm-up) to `stop - 1`,
    with its rule: a value improves on the best by more than `min_delta`, or waits;
    `patience` waits in a row reduce the rate once and start the count again.
    `plateau` is `(patience, factor, min_delta)`.
    """
    if len(history) < stop:
        expected = (
            f"the monitored value of each of the {stop} epochs before epoch {stop} (a resumed "
            "run's log) for schedule='plateau'"
        )
        raise _validation.invalid_value("history", expected, received=f"{len(history)} values")
    patience, _, min_delta = plateau
    best, wait, reductions = -math.inf, 0, 0
    sign = 1.0 if mode == "max" else -1.0
    for value in history[start:stop]:
        value = sign * float(value)
        if value > best + min_delta:  # False for NaN: it waits
            best, wait = value, 0
            continue
        wait += 1
        if wait >= patience:
            reductions, wait = reductions + 1, 0
    return reductions


def _schedule_factor(epoch, epochs, schedule, warmup_epochs, history, mode, plateau):
    """The rate of `epoch` by the warm-up and the schedule, as a fraction of the base."""
    if epoch < warmup_epochs:
        return (epoch + 1) / (warmup_epochs + 1)
    if schedule == "cosine":
        progress = (epoch - warmup_epochs) / max(epochs - warmup_epochs, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    if schedule == "plateau":
        return plateau[1] ** _plateau_reductions(history, warmup_epochs, epoch, mode, plateau)
    return 1.0


def learning_rate(
    epoch,
    base_rate,
    *,
    epochs,
    schedule="none",
    warmup_epochs=0,
    unfreeze_epoch=None,
    unfreeze_factor=0.1,
    history=(),
    mode="max",
    patience=3,
    factor=0.5,
    min_delta=1e-4,
):
    """The learning rate of epoch `epoch` (0-based) of a run of `epochs` epochs.

    The product of three parts, each a function of the epoch and the options, so a
    resumed run continues with exactly the rates of an uninterrupted one:

    1. the warm-up: epoch `e < warmup_epochs` runs at
       `base_rate * (e + 1) / (warmup_epochs + 1)`;
    2. after it, the schedule: `"none"` keeps `base_rate`; `"cosine"` decays it
       to 0 along `base_rate * (1 + cos(pi * (e - warmup_epochs) /
       (epochs - warmup_epochs))) / 2`; `"plateau"` multiplies it by `factor`
       each time the monitored quantity of the epochs after the warm-up
       (`history`) has not improved for `patience` epochs, by the rule of
       `keras.callbacks.ReduceLROnPlateau` (`min_delta`, no cooldown);
    3. from epoch `unfreeze_epoch` on (a pretrained encoder trains from then
       on), times `unfreeze_factor`.

    Args:
        epoch: int, the epoch (0-based).
        base_rate: float > 0, the learning rate after the warm-up.
        epochs: int, the epochs of the whole run (the cosine reaches 0 after
            the last).
        schedule: `"none"`, `"cosine"` or `"plateau"`. Defaults to `"none"`.
        warmup_epochs: int >= 0. Defaults to `0`.
        unfreeze_epoch: int or `None`: the first epoch that trains the
            encoder, or `None` (no factor). Defaults to `None`.
        unfreeze_factor: float > 0. Defaults to `0.1`.
        history: the monitored quantity of each epoch before `epoch` (index =
            epoch), for `"plateau"`; it must hold at least `epoch` values.
        mode: `"max"` (a score: higher is better) or `"min"` (a loss). Defaults to
            `"max"`.
        patience, factor, min_delta: `"plateau"`'s epochs without improvement per
            reduction (3), reduction (0.5) and least improvement (1e-4).

    Returns:
        The learning rate, a Python float.

    Raises:
        ValueError: an invalid option, or `"plateau"` with fewer than `epoch`
            values in `history`.

    Example:

    >>> rates = [
    ...     learning_rate(e, 0.01, epochs=6, schedule="cosine", unfreeze_epoch=2)
    ...     for e in range(6)
    ... ]
    >>> [round(rate, 5) for rate in rates]
    [0.01, 0.00933, 0.00075, 0.0005, 0.00025, 7e-05]
    """
    _validation.check_non_negative_int("epoch", epoch)
    _validation.check_positive("base_rate", base_rate)
    plateau = (patience, factor, min_delta)
    _check(epochs, schedule, warmup_epochs, unfreeze_epoch, unfreeze_factor, mode, plateau)
    rate = base_rate * _schedule_factor(
        epoch, epochs, schedule, warmup_epochs, history, mode, plateau
    )
    if unfreeze_epoch is not None and epoch >= unfreeze_epoch:
        rate *= unfreeze_factor
    return float(rate)


class LearningRateSchedule(keras.callbacks.Callback):
    """Sets the optimizer's learning rate at each epoch's start, to `learning_rate(epoch, ...)`.

    One callback for the warm-up, the schedule and the encoder's unfreezing
    factor, so they never overwrite each other; the rate of an epoch depends on
    nothing but the epoch and the options (and, for `"plateau"`, the monitored
    values of the epochs before it), so `model.fit(..., initial_epoch=k)` after
    an interruption trains epoch `k` at the rate it would have had. Each epoch's
    rate is added to the logs as `learning_rate` (a column of
    `keras.callbacks.CSVLogger`'s file). Place it before callbacks that read the
    rate at an epoch's start.

    Args:
        learning_rate: float > 0, the base rate (`base_rate` of
            `learning_rate`).
        epochs: int, the epochs of the whole run.
        schedule: `"none"`, `"cosine"` or `"plateau"`, as in `learning_rate`.
        warmup_epochs: int >= 0, as in `learning_rate`.
        unfreeze_epoch: int or `None`, as in `learning_rate`.
        unfreeze_factor: float > 0, as in `learning_rate`.
        monitor: str, the logged quantity that `"plateau"` watches, such as
            `"val_dice_coefficient"`. Required for `"plateau"`.
        mode: `"max"` or `"min"`, as in `learning_rate`.
        patience: int > 0, as in `learning_rate`.
        factor: float in (0, 1), as in `learning_rate`.
        min_delta: float >= 0, as in `learning_rate`.
        history: the monitored values of the epochs already trained, to
            resume a `"plateau"` run (`learning_rate`'s `history`: a resumed
            run's log gives them). Defaults to `()`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> schedule = LearningRateSchedule(0.1, epochs=3, warmup_epochs=1)
    >>> history = model.fit(
    ...     np.zeros((4, 2)), np.zeros((4, 1)), epochs=3, verbose=0, callbacks=[schedule]
    ... )
    >>> [round(rate, 4) for rate in history.history["learning_rate"]]
    [0.05, 0.1, 0.1]
    """

    def __init__(
        self,
        learning_rate,
        epochs,
        schedule="none",
        warmup_epochs=0,
        unfreeze_epoch=None,
        unfreeze_factor=0.1,
        monitor=None,
        mode="max",
        patience=3,
        factor=0.5,
        min_delta=1e-4,
        history=(),
    ):
        super().__init__()
        _validation.check_positive("learning_rate", learning_rate)
        plateau = (patience, factor, min_delta)
        _check(epochs, schedule, warmup_epochs, unfreeze_epoch, unfreeze_factor, mode, plateau)
        if schedule == "plateau" and not isinstance(monitor, str):
            raise _validation.invalid_value(
                "monitor", "the name of a logged quantity for schedule='plateau'", monitor
            )
        self.options = {
            "base_rate": float(learning_rate),
            "epochs": epochs,
            "schedule": schedule,
            "warmup_epochs": warmup_epochs,
            "unfreeze_epoch": unfreeze_epoch,
            "unfreeze_factor": unfreeze_factor,
            "mode": mode,
            "patience": patience,
            "factor": factor,
            "min_delta": min_delta,
        }
        self.monitor = monitor
        self.monitored = [math.nan if value is None else float(value) for value in history]
        self.rate = None

    def on_epoch_begin(self, epoch, logs=None):
        self.rate = learning_rate(epoch, history=self.monitored, **self.options)
        self.model.optimizer.learning_rate = self.rate

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["learning_rate"] = self.rate
        if self.monitor is not None:
            value = logs.get(self.monitor)
            # A missing value waits, as a value that does not improve.
            self.monitored[epoch:] = [math.nan if value is None else float(value)]
