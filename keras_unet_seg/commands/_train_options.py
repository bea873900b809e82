"""The options of `train`: the command line by group, config files, and resuming.

Options come from the defaults, the resumed run's `config.json`, `--config` and the
command line, each layer over the previous one; a resumed run cannot change the
options that define its model's weights.
"""

import argparse
import os

from keras_unet_seg import performance
from keras_unet_seg.commands import _config, _encoder_options, _parser, _run_folder, _types
from keras_unet_seg.commands._errors import PROG, UsageError

NAME = "train"

# Options that define the model's weights: they cannot change when resuming.
MODEL_OPTIONS = (
    "num_classes",
    "color_mode",
    "intensity",
    "base_filters",
    "depth",
    "normalization",
    "upsampling",
    "pooling",
    "dropout",
    "residual",
    "attention",
    *_encoder_options.MODEL_OPTIONS,
)
# Optimizer steps an epoch by default: with --epochs 10 and --batch-size 4, 250 steps of
# 4 images whatever the number of images; with the default model (--base-filters 8
# --depth 3) within the demo's time (benchmarks/bench_quality.py; the Model quality page).
STEPS_PER_EPOCH = 25
# Options that are not part of a run's saved config.
_CONTROL_OPTIONS = ("config", "resume", "overwrite", "out", "verbose")
# What config.json records besides the options: found in the data, not chosen.
_RECORDED = ("training_images", "input_channels", "training_scale", "mask_palette")


def add_arguments(parser):
    """The options of `train`, by group; `options` builds a run's options from them too."""
    _add_run_arguments(parser.add_argument_group("run"))
    data = parser.add_argument_group("data")
    _add_data_arguments(data)
    _add_image_arguments(data, parser)
    model = parser.add_argument_group("model")
    _add_model_arguments(model)
    training = parser.add_argument_group("training")
    _add_training_arguments(training)
    _encoder_options.add_arguments(model, training)
    _add_speed_arguments(parser.add_argument_group("speed and devices"))
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


def _add_data_arguments(data):
    data.add_argument(
        "--data",
        metavar="DIR",
        help="dataset root holding <subset>/images and <subset>/masks (required)",
    )
    data.add_argument("--train-subset", default="train", help="subfolder to train on")
    data.add_argument("--val-subset", default="val", help="subfolder to validate on")
    data.add_argument(
        "--validation-split",
        type=_types.fraction,
        default=None,
        metavar="F",
        help="for one flat folder (DIR/images and DIR/masks): the fraction held out for "
        "validation, drawn with --seed (instead of --train-subset and --val-subset)",
    )
    data.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="a bad file stops the command (raise), or is left out with a report (skip)",
    )


def _add_image_arguments(data, parser):
    data.add_argument(
        "--image-size",
        type=_types.image_size,
        default=(128, 128),
        metavar="N|HxW",
        help="size images and masks are resized to for training",
    )
    fit = data.add_mutually_exclusive_group()
    fit.add_argument(
        "--crop-to-aspect-ratio",
        action="store_true",
        help="crop images and masks (centred) to --image-size's aspect ratio before resizing",
    )
    fit.add_argument(
        "--pad-to-aspect-ratio",
        action="store_true",
        help="pad images and masks (centred) to --image-size's aspect ratio before resizing",
    )
    data.add_argument(
        "--batch-size",
        type=_types.positive_int,
        default=4,
        help="images per training step (per device under --strategy)",
    )
    data.add_argument(
        "--color-mode",
        choices=("rgb", "grayscale", "rgba", "native"),
        default="rgb",
        help="image channels (3, 1 or 4), or native: the files' own (2, 5, ... from "
        "multi-channel TIFFs; the model gets as many input channels)",
    )
    data.add_argument(
        "--intensity",
        type=_types.intensity_choice,
        default="auto",
        metavar="MODE",
        help="intensity normalization of each whole image: auto (8-bit / 255; 16-bit, "
        "32-bit and float from their 1st to 99.8th percentile), scale (by the dtype's "
        "range), percentile, minmax, standardize or none; in --config also a dict such "
        'as {"mode": "percentile", "low": 2, "high": 99.5}. Stored in config.json, '
        "where predict and evaluate find it",
    )
    data.add_argument(
        "--mask-threshold",
        type=_types.finite_float,
        default=None,
        metavar="T",
        help="with --num-classes 1: foreground is mask value > T, any values allowed (such "
        "as 127 for 0/255 masks saved as JPEG); by default a mask holds 0 and one other "
        "value, or is a label image (0 and object ids 1..N), and foreground is value > 0",
    )
    data.add_argument(
        "--no-augment",
        dest="augment",
        action="store_const",
        const="none",
        default=argparse.SUPPRESS,  # the default is --augment's
        help="--augment none",
    )
    data.add_argument(  # after --no-augment: a config file's "augment" is checked by this one
        "--augment",
        type=_types.augment_choice,
        default="geometric",
        metavar="MODE",
        help="random changes of each training pair (JointAugmentation): geometric (flips "
        "and 90-degree rotations), all (also small rotations, zoom, brightness, contrast, "
        "gamma and noise) or none; chosen by measurement on real images (the Data guide)",
    )


def _add_model_arguments(model):
    model.add_argument(
        "--num-classes",
        type=_types.positive_int,
        default=1,
        help="1 for binary masks (sigmoid), more for class-id masks (softmax)",
    )
    model.add_argument(
        "--class-names",
        type=_types.name_list,
        default=None,
        metavar="NAMES",
        help="comma-separated names of the classes by id, background first (such as "
        "background,cell,nucleus); predict and evaluate name them in legends and reports",
    )
    model.add_argument(
        "--base-filters",
        type=_types.positive_int,
        default=8,
        help="filters of the first level, doubled at each level down",
    )
    model.add_argument(
        "--depth", type=_types.positive_int, default=3, help="number of downsampling stages"
    )
    model.add_argument(
        "--normalization",
        type=_types.optional_choice("batch", "group", "instance", "layer"),
        default="batch",
        help="batch, group, instance, layer or none",
    )
    model.add_argument(
        "--upsampling",
        choices=("transpose", "bilinear", "nearest"),
        default="transpose",
        help="how the decoder upsamples",
    )
    model.add_argument(
        "--pooling",
        choices=("max", "avg", "conv"),
        default="max",
        help="how the encoder downsamples",
    )
    model.add_argument(
        "--dropout",
        type=_types.fraction,
        default=0.0,
        help="dropout rate at the end of each block",
    )
    model.add_argument(
        "--residual", action=argparse.BooleanOptionalAction, default=False, help="residual blocks"
    )
    model.add_argument(
        "--attention",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="attention-gated skip connections (AttentionDecoderStage)",
    )


def _add_training_arguments(training):
    training.add_argument(
        "--loss",
        type=_types.loss_spec,
        default="bce_dice",
        help="loss name for keras_unet_seg.losses.get (dice, jaccard, tversky, "
        "focal_tversky, bce_dice) or a Keras loss name; in --config also a dict with the "
        'loss\'s arguments, such as {"name": "tversky", "alpha": 0.3, "beta": 0.7}',
    )
    training.add_argument(
        "--metrics",
        type=_types.metric_list,
        default=["dice", "iou"],
        metavar="NAMES",
        help="comma-separated metric names for keras_unet_seg.metrics.get; the first "
        'selects the best checkpoint; in --config also dicts such as {"name": "dice", '
        '"per_image": true}',
    )
    training.add_argument(
        "--epochs",
        type=_types.positive_int,
        default=10,
        help="epochs in all; each ends with a validation and a checkpoint",
    )
    training.add_argument(
        "--steps-per-epoch",
        type=_types.non_negative_int,
        default=STEPS_PER_EPOCH,
        metavar="N",
        help="optimizer steps an epoch, drawn from the training images repeated and "
        "reshuffled, so the training length does not depend on how many images there "
        "are; 0: one pass over the images an epoch",
    )
    training.add_argument(
        "--learning-rate", type=_types.positive_float, default=1e-3, help="Adam's learning rate"
    )
    training.add_argument(
        "--lr-schedule",
        choices=("none", "cosine", "plateau"),
        default="none",
        help="learning rate over the epochs: constant, cosine decay to 0 (per epoch), or "
        "halved when the best checkpoint's metric has not improved for 3 epochs",
    )
    training.add_argument(
        "--warmup-epochs",
        type=_types.non_negative_int,
        default=0,
        help="epochs whose learning rate rises linearly to --learning-rate first",
    )
    training.add_argument(
        "--early-stopping",
        type=_types.non_negative_int,
        default=0,
        metavar="PATIENCE",
        help="stop when the best checkpoint's metric has not improved for this many "
        "epochs (0: never)",
    )
    training.add_argument(
        "--seed",
        type=_types.non_negative_int,
        default=0,
        help="seeds the weights, the shuffling and the augmentation",
    )


def _add_speed_arguments(speed):
    _parser.add_speed_arguments(speed, training=True)
    speed.add_argument(
        "--strategy",
        type=_types.optional_choice(*performance.STRATEGIES),
        default=None,
        help="data-parallel training: mirrored (TensorFlow: every local GPU, or the "
        "logical CPU devices), data_parallel (JAX: every device, every host after "
        "keras.distribution.initialize()) or none; --batch-size is then per device, and "
        "a last batch that does not split evenly among the devices is left out (the "
        "command says how many images)",
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
    layers, saved = {}, None
    if args.resume:
        saved = _resumed_config(args)
        layers.update(_config.config_defaults(parser, saved, _resumed_path(args), _RECORDED))
    if args.config is not None:
        config = _config.read_json(args.config, "config file")
        layers.update(_config.config_defaults(parser, config, args.config, ignore=_RECORDED))
    if layers:
        args = _config.parse_with_defaults(parser, args._argv, layers)
        args._parser = parser
    if saved is not None:
        _check_unchanged(args, saved)
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
    _run_folder.check_resumable(args.out)
    saved = _config.read_json(_resumed_path(args), "run config")
    # Runs from before the option read images by their dtype's range.
    saved.setdefault("intensity", "scale")
    return saved


def _check_unchanged(args, saved):
    """Refuses a resumed run whose model options or loss scaling would change."""
    parser = args._parser
    changed = [
        name
        for name in MODEL_OPTIONS
        if name in saved and getattr(args, name) != _saved_value(parser, name, saved)
    ]
    if changed:
        listed = ", ".join(f"--{name.replace('_', '-')}" for name in changed)
        raise UsageError(
            f"train: cannot change the model when resuming ({listed} differ from "
            f"the run's {_run_folder.CONFIG_FILE}); start a new run with another --out instead."
        )
    # Runs from before the option trained in float32. A saved "auto" resolves here
    # as it does now, so only an explicit change is seen.
    before, now = (
        performance.resolve_precision(value, base_filters=args.base_filters)
        for value in (saved.get("precision", "float32"), args.precision)
    )
    if before != now and "mixed_float16" in (before, now):
        raise UsageError(
            f"train: cannot resume in {now}: the run trained in {before}, and "
            "mixed_float16's loss scaling changes the optimizer state that resuming "
            "restores; keep --precision as it was."
        )


def _saved_value(parser, name, saved):
    return _config.config_defaults(parser, {name: saved[name]}, _run_folder.CONFIG_FILE)[name]


def run_config(args):
    """The run's options as JSON data, keyed like the command line's options."""
    parser = args._parser
    config = {}
    for dest in parser.option_actions:
        if dest in _CONTROL_OPTIONS:
            continue
        value = getattr(args, dest)
        config[dest] = list(value) if isinstance(value, tuple) else value
    return config
