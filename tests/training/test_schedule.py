"""`keras_unet_seg.training.schedule`: the rates by hand, in a plain `model.fit`, resumed."""

import math
import re

import keras
import numpy as np
import pytest

from keras_unet_seg.training import LearningRateSchedule, learning_rate

BASE = 0.01


def _by_hand(epoch, epochs, warmup, unfreeze):
    """The documented rule, written out: warm-up, cosine, then the unfreezing factor."""
    if epoch < warmup:
        rate = BASE * (epoch + 1) / (warmup + 1)
    else:
        rate = BASE * 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / (epochs - warmup)))
    return rate * (0.1 if epoch >= unfreeze else 1.0)


def test_the_issue_case_keeps_the_factor_after_unfreezing():
    """Cosine from 0.01 over 6 epochs, 2 frozen: 0.1x for every epoch after them."""
    rates = [
        learning_rate(e, BASE, epochs=6, schedule="cosine", unfreeze_epoch=2) for e in range(6)
    ]
    cosine = [BASE * 0.5 * (1 + math.cos(math.pi * e / 6)) for e in range(6)]
    np.testing.assert_allclose(rates, cosine[:2] + [0.1 * r for r in cosine[2:]], rtol=1e-12)


def _model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    return model


class _Interrupt(keras.callbacks.Callback):
    """Stops `fit` at the start of epoch `epoch`, as a kill would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


class _Score(keras.callbacks.Callback):
    """Logs a made-up monitored quantity, `score`, for each epoch."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.values[epoch]


def _fit(model, callbacks, epochs, initial_epoch=0):
    """The `learning_rate` logged by each epoch that `fit` finished."""
    logged = {}

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logged[epoch] = logs["learning_rate"]

    data = np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32")
    try:
        model.fit(
            *data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            verbose=0,
            callbacks=[*callbacks, Record()],
        )
    except KeyboardInterrupt:
        pass
    return logged


def test_plain_fit_logs_warmup_cosine_and_unfreezing_and_resumes_them():
    epochs, warmup, unfreeze = 8, 2, 4
    options = {"schedule": "cosine", "warmup_epochs": warmup, "unfreeze_epoch": unfreeze}
    expected = [_by_hand(e, epochs, warmup, unfreeze) for e in range(epochs)]

    model = _model()
    first = _fit(model, [LearningRateSchedule(BASE, epochs, **options), _Interrupt(5)], epochs)
    assert sorted(first) == [0, 1, 2, 3, 4]
    # A new process: a new callback, the fit resumed at the epoch after the last kept.
    resumed = _fit(model, [LearningRateSchedule(BASE, epochs, **options)], epochs, 5)
    logged = {**first, **resumed}
    np.testing.assert_allclose([logged[e] for e in range(epochs)], expected, rtol=1e-6)
    assert float(model.optimizer.learning_rate) == pytest.approx(expected[-1], rel=1e-6)


def test_plateau_follows_reduce_lr_on_plateau_and_resumes_from_the_history():
    # Improves, stalls 3 epochs (halved), improves, stalls 3 more (halved again).
    scores = [0.1, 0.2, 0.2, 0.15, 0.2, 0.3, 0.3, 0.3, 0.3, 0.25]
    epochs = len(scores)
    keras_rates = []

    class Rate(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            keras_rates.append(float(self.model.optimizer.learning_rate))

    model = _model()
    model.optimizer.learning_rate = BASE
    reduce = keras.callbacks.ReduceLROnPlateau(monitor="score", mode="max", factor=0.5, patience=3)
    _fit(model, [Rate(), _Score(scores), reduce], epochs)
    assert keras_rates[-1] == pytest.approx(BASE / 4)

    options = {"schedule": "plateau", "monitor": "score"}
    whole = _fit(_model(), [_Score(scores), LearningRateSchedule(BASE, epochs, **options)], epochs)
    np.testing.assert_allclose([whole[e] for e in range(epochs)], keras_rates, rtol=1e-6)
    # Resumed at epoch 6 with the monitored values of epochs 0-5 (a run's log).
    schedule = LearningRateSchedule(BASE, epochs, history=scores[:6], **options)
    resumed = _fit(_model(), [_Score(scores), schedule], epochs, 6)
    np.testing.assert_allclose([resumed[e] for e in range(6, epochs)], keras_rates[6:], rtol=1e-6)


def test_plateau_counts_after_the_warmup_and_refuses_a_missing_history():
    # Three flat warm-up epochs do not count: the first reduction is 3 epochs after them.
    flat = [0.5] * 8
    rates = [
        learning_rate(e, BASE, epochs=8, schedule="plateau", warmup_epochs=3, history=flat)
        for e in range(8)
    ]
    assert rates == [BASE / 4, BASE / 2, BASE * 3 / 4, BASE, BASE, BASE, BASE, BASE / 2]
    message = (
        "Invalid value for argument `history`. Expected the monitored value of each of the "
        "4 epochs before epoch 4 (a resumed run's log) for schedule='plateau'. Received: "
        "2 values"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        learning_rate(4, BASE, epochs=8, schedule="plateau", history=[0.1, 0.2])
    with pytest.raises(ValueError, match=re.escape("Received: monitor=None")):
        LearningRateSchedule(BASE, 8, schedule="plateau")
    with pytest.raises(ValueError, match=re.escape("Received: schedule='step'")):
        learning_rate(0, BASE, epochs=8, schedule="step")
