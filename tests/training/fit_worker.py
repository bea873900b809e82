"""A plain `model.fit` with the library's callbacks, as a user writes it; run as a
process that a test kills at a random moment (`test_callbacks.py`).

    python fit_worker.py OUT EPOCHS [KILL_AFTER_SECONDS]

Trains a small UNet on fixed arrays (no shuffling: the same batches in the same
order in every process) with `RunCheckpoint`, `LearningRateSchedule` (warm-up, then
cosine) and `TerminateOnNonFinite`; with a delay, a timer sends SIGKILL to the
process that many seconds after `fit` starts. At the end, writes the weights to
`OUT/final.npz`.
"""

import os
import signal
import sys
import threading

import keras
import numpy as np


def data():
    rng = np.random.default_rng(0)
    images = rng.random((8, 16, 16, 3), dtype="float32")
    return images, (images[..., :1] > 0.5).astype("float32")


def model():
    from keras_unet_seg import UNet
    from keras_unet_seg.losses import BCEDiceLoss

    keras.utils.set_random_seed(0)
    unet = UNet(base_filters=4, depth=2)
    unet.build((None, None, None, 3))
    unet.compile(optimizer=keras.optimizers.Adam(1e-2), loss=BCEDiceLoss())
    return unet


def fit(out, epochs, kill_after=None):
    from keras_unet_seg.training import (
        LearningRateSchedule,
        RunCheckpoint,
        TerminateOnNonFinite,
    )

    unet = model()
    images, masks = data()
    callbacks = [
        LearningRateSchedule(1e-2, epochs, schedule="cosine", warmup_epochs=1),
        TerminateOnNonFinite(),
        RunCheckpoint(out, monitor="loss"),
    ]
    if kill_after is not None:
        timer = threading.Timer(kill_after, os.kill, args=(os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()
    unet.fit(
        images,
        masks,
        batch_size=2,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
        validation_data=(images[:2], masks[:2]),
    )
    return unet


if __name__ == "__main__":
    out, epochs = sys.argv[1], int(sys.argv[2])
    kill_after = float(sys.argv[3]) if len(sys.argv) > 3 else None
    trained = fit(out, epochs, kill_after)
    np.savez(os.path.join(out, "final.npz"), *trained.get_weights())
