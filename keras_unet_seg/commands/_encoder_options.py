"""The train command's pretrained-encoder options, and the callback that unfreezes.

`--encoder NAME` builds `UNet(encoder=NAME)`; `--encoder-weights imagenet|PATH` loads
its weights; `--freeze-encoder-epochs N` trains the first `N` epochs with the encoder
frozen (batch normalization in inference mode), then the whole model at a tenth of
the scheduled learning rate (`training.learning_rate`'s `unfreeze_factor`).
"""

import difflib

import keras

from keras_unet_seg.commands._errors import UsageError
from keras_unet_seg.commands._types import non_negative_int

# Encoder options that change the model, so that a resumed run cannot change them.
MODEL_OPTIONS = ("encoder", "encoder_weights")
UNFROZEN_LEARNING_RATE_FACTOR = 0.1


def add_arguments(model, training):
    """Adds the options to the command's `model` and `training` argument groups."""
    model.add_argument(
        "--encoder",
        default=None,
        metavar="NAME",
        help="a keras.applications network as encoder, such as resnet50 or efficientnetb0 "
        "(keras_unet_seg.encoders.available() lists them), instead of the U-Net's own "
        "stages; --base-filters, --depth and --pooling then do not apply",
    )
    model.add_argument(
        "--encoder-weights",
        default=None,
        metavar="imagenet|PATH",
        help="the encoder's weights: imagenet (downloaded by keras.applications on first "
        "use) or a weights file; random without it",
    )
    training.add_argument(
        "--freeze-encoder-epochs",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="train the first N epochs with the encoder frozen, then the whole model at "
        f"{UNFROZEN_LEARNING_RATE_FACTOR:g} times the learning rate of --lr-schedule",
    )


def model_kwargs(options):
    """The `UNet` arguments of the options (`depth` stays out with an encoder)."""
    if options.encoder is None:
        for name in ("encoder_weights", "freeze_encoder_epochs"):
            if getattr(options, name):
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"train: {flag} needs --encoder NAME.")
        return {"depth": options.depth}
    _check_encoder_name(options.encoder)
    return {
        "encoder": options.encoder,
        "encoder_weights": options.encoder_weights,
    }


def _check_encoder_name(name):
    """Refuses an unknown `--encoder`, suggesting the closest names."""
    from keras_unet_seg.encoders import available

    names = sorted(available())
    if name in names:
        return
    close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise UsageError(
        f"train: --encoder {name}: not a known encoder; {hint}"
        "keras_unet_seg.encoders.available() lists them all (such as resnet50, "
        "efficientnetb0, mobilenetv2)."
    )


def freeze_callbacks(model, options, verbose=1):
    """Freezes the encoder for `--freeze-encoder-epochs`; returns the callback that unfreezes.

    Call after `compile`. The optimizer is built for every weight first, encoder
    included, so that unfreezing needs no new optimizer, and a resumed run restores
    the same optimizer state whichever phase it stopped in. The learning rate's
    factor after the unfreezing is the schedule's (`train.schedule_callbacks`).
    """
    if not options.freeze_encoder_epochs:
        return []
    model.optimizer.build(model.trainable_variables)
    model.freeze_encoder()
    return [UnfreezeEncoder(options.freeze_encoder_epochs, verbose=verbose)]


class UnfreezeEncoder(keras.callbacks.Callback):
    """Unfreezes the model's encoder at the start of epoch `epoch` (0-based), and says so.

    Rebuilds the training step, so that the encoder's weights train from that epoch
    on; the learning rate is the schedule's (`training.LearningRateSchedule`, which
    must come before this callback so the printed rate is the epoch's). The model's
    optimizer must have been built with every weight, encoder included
    (`freeze_callbacks` does it). A run resumed after `epoch` unfreezes at its first
    epoch.

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
