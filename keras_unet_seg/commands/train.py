"""Train a UNet on a folder of images and masks.

The dataset root holds split folders, `DIR/train/{images,masks}` and
`DIR/val/{images,masks}`, as `SegmentationDataset.from_directory` reads them. Options
come from the command line or from a JSON file (`--config`) whose keys are the
options' names (`{"base_filters": 16, "loss": "dice"}`); the command line wins. The
run folder receives `config.json` (every option, reusable as `--config`),
`best.keras` (best epoch by the first metric on the validation set), `model.keras`
(the last epoch), `log.csv`, `curves.png` and `backup/` (the weights and optimizer
state of the last two epochs, each written whole before it replaces the older one).
--out must be a new or empty folder, unless --overwrite removes an earlier run's files
there (files the run did not write are never removed), and one process at a time
trains in it (`.keras-unet-seg.lock`).
An interrupted run (Ctrl-C, a kill, a full disk) continues from its newest complete
backup, weights and optimizer state included, with `keras-unet-seg train --out RUN
--resume`; add `--epochs N` to train a finished run longer. Training stops with an
error when the loss becomes NaN or infinite, and keeps the last good backup.

The command maps its options onto `keras_unet_seg.training.TrainingConfig` and runs
`keras_unet_seg.training.train_run`, which a Python script can call the same way.
"""

from keras_unet_seg import _naming
from keras_unet_seg._errors import UserError
from keras_unet_seg.commands._device_options import HOST_OPTIONS
from keras_unet_seg.commands._errors import PROG, CommandError, Interrupted, UsageError, one_line
from keras_unet_seg.commands._train_options import (
    NAME,
    add_arguments,
    options,
    resolve_options,
    training_config,
)

__all__ = [
    "NAME",
    "add_arguments",
    "options",
    "resolve_options",
    "run",
    "train",
    "training_config",
]


def run(args):
    args = resolve_options(args)
    try:
        train(args)
    except KeyboardInterrupt:
        raise Interrupted(
            f"training interrupted; continue it with `{PROG} train --out {args.out} --resume`."
        ) from None
    return 0


def train(args, verbose=1):
    """Trains the run of the parsed options `args`; returns its `TrainingResult`.

    The library's errors name the options as this command's flags.
    """
    from keras_unet_seg.training import TrainingError, train_run

    with _naming.as_flags():
        try:
            return train_run(
                training_config(args),
                args.out,
                resume=args.resume,
                overwrite=args.overwrite,
                verbose=verbose,
                **{name: getattr(args, name) for name in HOST_OPTIONS},
            )
        except TrainingError as error:
            raise CommandError(one_line(error)) from None
        except UserError as error:
            raise UsageError(f"{NAME}: {one_line(error)}") from None
