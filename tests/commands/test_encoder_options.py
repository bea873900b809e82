"""`train --encoder`, `--encoder-weights` and `--freeze-encoder-epochs`, and `UnfreezeEncoder`."""

import csv
import math

import keras
import numpy as np
import pytest

from keras_unet_seg import UNet
from keras_unet_seg.cli import main
from keras_unet_seg.data import make_synthetic_dataset
from keras_unet_seg.training import UnfreezeEncoder, callbacks


def _weights(layer):
    return [keras.ops.convert_to_numpy(w) for w in layer.weights]


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_unfreeze_encoder_callback_trains_the_encoder_from_its_epoch():
    model = UNet(encoder="mobilenetv2", decoder_filters=[4, 4, 8, 8, 8])
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", run_eagerly=True
    )
    model.build((None, 32, 32, 3))
    model.optimizer.build(model.trainable_variables)  # every weight, as the command does
    model.freeze_encoder()
    images = np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32")
    masks = (images[..., :1] > 0.5).astype("float32")
    snapshots = [_weights(model.encoder)]

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append(_weights(model.encoder))

    callbacks = [UnfreezeEncoder(1, verbose=0), Snapshot()]
    model.fit(images, masks, epochs=2, batch_size=2, verbose=0, callbacks=callbacks)
    assert _same(snapshots[0], snapshots[1])  # epoch 0: frozen, statistics included
    assert not _same(snapshots[1], snapshots[2])  # epoch 1: the encoder trains
    assert model.encoder_trainable
    # The rate is the schedule's (training.LearningRateSchedule), not the callback's.
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 1e-2, rtol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--encoder-weights", "imagenet"], "train: --encoder-weights needs --encoder: it "),
        (["--freeze-encoder-epochs", "1"], "train: --freeze-encoder-epochs needs --encoder: it "),
        (
            ["--encoder", "resnet51"],
            "keras-unet-seg: error: train: --encoder resnet51: not a known encoder; did you "
            "mean resnet50 or resnet152 or resnet101? keras_unet_seg.encoders.available() lists "
            "them all (such as resnet50, efficientnetb0, mobilenetv2).\n",
        ),
    ],
)
def test_encoder_options_without_an_encoder_are_usage_errors(tmp_path, capsys, options, message):
    data = make_synthetic_dataset(tmp_path / "d", num_train=2, num_val=1, image_size=(16, 16))
    code = main(["train", "--data", data, "--out", str(tmp_path / "run"), *options])
    assert code != 0
    assert message in capsys.readouterr().err


class _InterruptAtEpoch4(callbacks.RunCheckpoint):
    """Ctrl-C at the start of the fifth epoch (after the backup of the fourth)."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 4:
            raise KeyboardInterrupt
        super().on_epoch_begin(epoch, logs)


@pytest.mark.slow
def test_train_with_a_frozen_then_unfrozen_encoder_on_a_cosine_schedule_resumed(
    tmp_path, monkeypatch, capsys
):
    """The issue's case: base rate 0.01, cosine over 6 epochs, 2 frozen, killed after 4."""
    data = make_synthetic_dataset(tmp_path / "d", num_train=2, num_val=1, image_size=(32, 32))
    run = tmp_path / "run"
    monkeypatch.setattr(callbacks, "RunCheckpoint", _InterruptAtEpoch4)
    code = main(
        [
            *("train", "--data", data, "--out", str(run), "--image-size", "32"),
            *("--batch-size", "2", "--epochs", "6", "--no-augment", "--steps-per-epoch", "0"),
            *("--encoder", "vgg16", "--freeze-encoder-epochs", "2"),
            *("--lr-schedule", "cosine", "--learning-rate", "0.01"),
        ]
    )
    assert code == 130
    monkeypatch.undo()
    cosine = [0.01 * 0.5 * (1 + math.cos(math.pi * epoch / 6)) for epoch in range(6)]
    expected = cosine[:2] + [0.1 * rate for rate in cosine[2:]]
    unfrozen = "the encoder is unfrozen{} and trains from now on, at 0.1 times the scheduled "
    assert (
        f"Epoch 3: {unfrozen.format('')}learning rate ({expected[2]:.4g})."
        in capsys.readouterr().out
    )
    assert main(["train", "--out", str(run), "--resume"]) == 0
    resumed = unfrozen.format(" (resumed; frozen for 2 epochs)")
    assert f"Epoch 5: {resumed}learning rate ({expected[4]:.4g})." in capsys.readouterr().out
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["epoch"]) for row in rows] == list(range(6))
    np.testing.assert_allclose([float(row["learning_rate"]) for row in rows], expected, rtol=1e-6)
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    assert model.encoder.network == "vgg16" and model.encoder_trainable
