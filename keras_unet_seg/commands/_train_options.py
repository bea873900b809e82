"""The options of `train`: the command line by group, config files, and resuming.

Each option is a field of `keras_unet_seg.training.TrainingConfig` (`--base-filters`
is `base_filters`), with its default. Options come from the defaults, the resumed
run's `config.json`, `--config` and the command line, each layer over the previous.
"""

import dataclasses
import os

from keras_unet_seg import _types
from keras_unet_seg.commands import (
    _config,
    _data_options,
    _device_options,
    _model_options,
    _parser,
)
from keras_unet_seg.commands._errors import PROG, UsageError, user_errors
from keras_unet_seg.training import TrainingConfig, TrainingError, _run_folder
from keras_unet_seg.training import config as _training_config

NAME = "train"

_FIELDS = tuple(field.name for field in dataclasses.fields(TrainingConfig))
default = TrainingConfig.default


def add_arguments(parser):
    """The options of `train`, by group; `options` builds a run's options from them too."""
    _add_run_arguments(parser.add_argument_group("run"))
    _data_options.add_arguments(parser.add_argument_group("data"))
    model = parser.add_argument_group("model")
    training = parser.add_argument_group("training")
    _add_training_arguments(training)
    _model_options.add_arguments(model, training)
    _device_options.add_arguments(parser.add_argument_group("speed and devices"))
    return parser


def _add_run_arguments(run):
    run.add_argument("--out", metavar="RUN", help="run folder to write (required)")
    run.add_argument(
        "--config",
        metavar="FILE",
        help="JSON file of options (keys as the option names, such as base_filters); "
        "the command line overrides it",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --out from its last completed epoch "
        "(weights and optimizer state); its config.json gives the options",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="train in an --out folder that is not empty: an earlier run's files there "
        "and its backup/ are removed, other files kept (a file where the run writes that "
        "keras-unet-seg did not write is never removed: the folder is refused)",
    )


def _add_training_arguments(training):
    training.add_argument(
        "--loss",
        type=_types.loss_spec,
        default=default("loss"),
        help="loss name for keras_unet_seg.losses.get (dice, jaccard, tversky, "
        "focal_tversky, bce_dice) or a Keras loss name; in --config also a dict with the "
        'loss\'s arguments, such as {"name": "tversky", "alpha": 0.3, "beta": 0.7}',
    )
    training.add_argument(
        "--metrics",
        type=_types.metric_list,
        default=default("metrics"),
        metavar="NAMES",
        help="comma-separated metric names for keras_unet_seg.metrics.get; the first "
        'selects the best checkpoint; in --config also dicts such as {"name": "dice", '
        '"per_image": true}',
    )
    training.add_argument(
        "--epochs",
        type=_types.positive_int,
        default=default("epochs"),
        help="epochs in all; each ends with a validation and a checkpoint",
    )
    training.add_argument(
        "--steps-per-epoch",
        type=_types.non_negative_int,
        default=default("steps_per_epoch"),
        metavar="N",
        help="optimizer steps an epoch, drawn from the training images repeated and "
        "reshuffled, so the training length does not depend on how many images there "
        "are; 0: one pass over the images an epoch",
    )
    training.add_argument(
        "--learning-rate",
        type=_types.positive_float,
        default=default("learning_rate"),
        help="Adam's learning rate",
    )
    training.add_argument(
        "--lr-schedule",
        choices=_training_config.LR_SCHEDULES,
        default=default("lr_schedule"),
        help="learning rate over the epochs: constant, cosine decay to 0 (per epoch), or "
        "halved when the best checkpoint's metric has not improved for 3 epochs",
    )
    training.add_argument(
        "--warmup-epochs",
        type=_types.non_negative_int,
        default=default("warmup_epochs"),
        help="epochs whose learning rate rises linearly to --learning-rate first",
    )
    training.add_argument(
        "--early-stopping",
        type=_types.non_negative_int,
        default=default("early_stopping"),
        metavar="PATIENCE",
        help="stop when the best checkpoint's metric has not improved for this many "
        "epochs (0: never)",
    )
    training.add_argument(
        "--seed",
        type=_types.non_negative_int,
        default=default("seed"),
        help="seeds the weights, the shuffling and the augmentation",
    )


def options(**values):
    """The options of a run: every option's default, replaced by `values` (by `dest`)."""
    parser = add_arguments(_parser.ArgumentParser(prog=f"{PROG} {NAME}"))
    args = parser.parse_args([])
    for name, value in values.items():
        if name not in parser.option_actions:
            raise TypeError(f"train has no option {name!r}")
        setattr(args, name, value)
    args._parser, args._argv = parser, []
    return args


def resolve_options(args):
    """Layers the options: defaults < the resumed run's config < --config < command line."""
    parser = args._parser
    layers = {}
    if args.resume:
        saved = _resumed_config(args)
        layers.update(
            _config.config_defaults(parser, saved, _resumed_path(args), _training_config.RECORDED)
        )
    if args.config is not None:
        config = _config.read_json(args.config, "config file")
        layers.update(
            _config.config_defaults(parser, config, args.config, ignore=_training_config.RECORDED)
        )
    if layers:
        args = _config.parse_with_defaults(parser, args._argv, layers)
        args._parser = parser
    missing = [f"--{name}" for name in ("data", "out") if getattr(args, name) is None]
    if missing:
        raise UsageError(f"train: the following arguments are required: {', '.join(missing)}")
    return args


def _resumed_path(args):
    return os.path.join(args.out, _run_folder.CONFIG_FILE)


def _resumed_config(args):
    """The saved options of the run `--resume` continues."""
    if args.out is None:
        raise UsageError("train: --resume needs --out RUN, the run folder to continue.")
    if args.overwrite:
        raise UsageError(
            "train: --resume continues the run in --out and --overwrite starts it over; "
            "give one of them."
        )
    with user_errors(TrainingError):
        _run_folder.check_resumable(args.out)
    saved = _config.read_json(_resumed_path(args), "run config")
    # Runs from before the option read images by their dtype's range.
    saved.setdefault("intensity", "scale")
    return saved


def training_config(args):
    """The `TrainingConfig` of the parsed options."""
    return TrainingConfig(**{name: getattr(args, name) for name in _FIELDS})
