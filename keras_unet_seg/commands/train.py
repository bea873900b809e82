"""Train a UNet on a folder of images and masks.

The dataset root holds split folders, `DIR/train/{images,masks}` and
`DIR/val/{images,masks}`, as `SegmentationDataset.from_directory` reads them. Options
come from the command line or from a JSON file (`--config`) whose keys are the
options' names (`{"base_filters": 16, "loss": "dice"}`); the command line wins. The
run folder receives `config.json` (every option, reusable as `--config`),
`best.keras` (best epoch by the first metric on the validation set), `model.keras`
(the last epoch), `log.csv`, `curves.png` and `backup/` (the weights and optimizer
state of the last two epochs, each written whole before it replaces the older one).
--out must be a new or empty folder, unless --overwrite replaces a run's files there.
An interrupted run (Ctrl-C, a kill, a full disk) continues from its newest complete
backup, weights and optimizer state included, with `keras-unet-seg train --out RUN
--resume`; add `--epochs N` to train a finished run longer. Training stops with an
error when the loss becomes NaN or infinite, and keeps the last good backup.
"""

import argparse
import csv
import os
import shutil

import keras

from keras_unet_seg import _atomic, performance
from keras_unet_seg.commands import _common, _encoder_options, _model_size, _run_state
from keras_unet_seg.commands._common import CommandError, Interrupted, UsageError

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
# Options that are not part of a run's saved config.
_CONTROL_OPTIONS = ("config", "resume", "overwrite", "out", "verbose")
# What config.json records besides the options: found in the data, not chosen.
_RECORDED = ("input_channels", "training_scale", "mask_palette")

CONFIG_FILE = "config.json"
BEST_MODEL_FILE = "best.keras"
FINAL_MODEL_FILE = "model.keras"
LOG_FILE = "log.csv"
CURVES_FILE = "curves.png"
BACKUP_FOLDER = _run_state.BACKUP_FOLDER


def add_arguments(parser):
    """The options of `train`; `demo` builds its training options from them too."""
    run = parser.add_argument_group("run")
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
        help="train in an --out folder that is not empty: a run's own files there and "
        "its backup/ are replaced (other files are kept)",
    )

    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        metavar="DIR",
        help="dataset root holding <subset>/images and <subset>/masks (required)",
    )
    data.add_argument("--train-subset", default="train", help="subfolder to train on")
    data.add_argument("--val-subset", default="val", help="subfolder to validate on")
    data.add_argument(
        "--validation-split",
        type=_common.fraction,
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
    data.add_argument(
        "--image-size",
        type=_common.image_size,
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
        type=_common.positive_int,
        default=8,
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
        type=_common.intensity_choice,
        default="auto",
        metavar="MODE",
        help="intensity normalization of each whole image: auto (8-bit / 255; 16-bit, "
        "32-bit and float from their 1st to 99.8th percentile), scale (by the dtype's "
        "range), percentile, minmax, standardize or none; in --config also a dict such "
        'as {"mode": "percentile", "low": 2, "high": 99.5}. Stored in config.json, '
        "where predict and evaluate find it",
    )
    data.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random flips, rotations, zoom and photometric changes (JointAugmentation)",
    )

    model = parser.add_argument_group("model")
    model.add_argument(
        "--num-classes",
        type=_common.positive_int,
        default=1,
        help="1 for binary masks (sigmoid), more for class-id masks (softmax)",
    )
    model.add_argument(
        "--class-names",
        type=_common.name_list,
        default=None,
        metavar="NAMES",
        help="comma-separated names of the classes by id, background first (such as "
        "background,cell,nucleus); predict and evaluate name them in legends and reports",
    )
    model.add_argument(
        "--base-filters",
        type=_common.positive_int,
        default=16,
        help="filters of the first level, doubled at each level down",
    )
    model.add_argument(
        "--depth", type=_common.positive_int, default=4, help="number of downsampling stages"
    )
    model.add_argument(
        "--normalization",
        type=_common.optional_choice("batch", "group", "instance", "layer"),
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
        type=_common.fraction,
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

    training = parser.add_argument_group("training")
    training.add_argument(
        "--loss",
        type=_common.loss_spec,
        default="bce_dice",
        help="loss name for keras_unet_seg.losses.get (dice, jaccard, tversky, "
        "focal_tversky, bce_dice) or a Keras loss name; in --config also a dict with the "
        'loss\'s arguments, such as {"name": "tversky", "alpha": 0.3, "beta": 0.7}',
    )
    training.add_argument(
        "--metrics",
        type=_common.metric_list,
        default=["dice", "iou"],
        metavar="NAMES",
        help="comma-separated metric names for keras_unet_seg.metrics.get; the first "
        'selects the best checkpoint; in --config also dicts such as {"name": "dice", '
        '"per_image": true}',
    )
    training.add_argument("--epochs", type=_common.positive_int, default=20, help="epochs in all")
    training.add_argument(
        "--learning-rate", type=_common.positive_float, default=1e-3, help="Adam's learning rate"
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
        type=_common.non_negative_int,
        default=0,
        help="epochs whose learning rate rises linearly to --learning-rate first",
    )
    training.add_argument(
        "--early-stopping",
        type=_common.non_negative_int,
        default=0,
        metavar="PATIENCE",
        help="stop when the best checkpoint's metric has not improved for this many "
        "epochs (0: never)",
    )
    training.add_argument(
        "--seed",
        type=_common.non_negative_int,
        default=0,
        help="seeds the weights, the shuffling and the augmentation",
    )
    _encoder_options.add_arguments(model, training)

    speed = parser.add_argument_group("speed and devices")
    _common.add_speed_arguments(speed, training=True)
    speed.add_argument(
        "--strategy",
        type=_common.optional_choice(*performance.STRATEGIES),
        default=None,
        help="data-parallel training: mirrored (TensorFlow: every local GPU, or the "
        "logical CPU devices), data_parallel (JAX: every device, every host after "
        "keras.distribution.initialize()) or none; --batch-size is then per device, and "
        "a last batch that does not split evenly among the devices is left out (the "
        "command says how many images)",
    )
    return parser


def run(args):
    args = resolve_options(args)
    try:
        train(args)
    except KeyboardInterrupt:
        raise Interrupted(
            f"training interrupted; continue it with `{_common.PROG} train --out {args.out} "
            "--resume`."
        ) from None
    return 0


def resolve_options(args):
    """Layers the options: defaults < the resumed run's config < --config < command line."""
    parser = args._parser
    layers = {}
    if args.resume:
        if args.out is None:
            raise UsageError("train: --resume needs --out RUN, the run folder to continue.")
        if args.overwrite:
            raise UsageError(
                "train: --resume continues the run in --out and --overwrite starts it over; "
                "give one of them."
            )
        config_path = os.path.join(args.out, CONFIG_FILE)
        if not os.path.isdir(args.out):
            raise CommandError(f"run folder '{args.out}' does not exist: nothing to resume.")
        if not os.path.isfile(config_path):
            raise CommandError(
                f"run folder '{args.out}' holds no {CONFIG_FILE}: it is not a training run, "
                "so there is nothing to resume."
            )
        saved = _common.read_json(config_path, "run config")
        # Runs from before the option read images by their dtype's range.
        saved.setdefault("intensity", "scale")
        layers.update(_common.config_defaults(parser, saved, config_path, ignore=_RECORDED))
    if args.config is not None:
        config = _common.read_json(args.config, "config file")
        layers.update(_common.config_defaults(parser, config, args.config, ignore=_RECORDED))
    if layers:
        args = _common.parse_with_defaults(parser, args._argv, layers)
        args._parser = parser
    if args.resume:
        changed = [
            name
            for name in MODEL_OPTIONS
            if name in saved and getattr(args, name) != _saved_value(parser, name, saved)
        ]
        if changed:
            listed = ", ".join(f"--{name.replace('_', '-')}" for name in changed)
            raise UsageError(
                f"train: cannot change the model when resuming ({listed} differ from "
                f"the run's {CONFIG_FILE}); start a new run with another --out instead."
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
    missing = [f"--{name}" for name in ("data", "out") if getattr(args, name) is None]
    if missing:
        raise UsageError(f"train: the following arguments are required: {', '.join(missing)}")
    return args


def _saved_value(parser, name, saved):
    return _common.config_defaults(parser, {name: saved[name]}, CONFIG_FILE)[name]


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


def build_model(options, dtype=None, channels=None):
    """The `UNet` of the options, built for images of any size.

    `dtype` is the dtype policy name (`resolve_precision`); `None` takes Keras' global one.
    `channels` are the input channels, by default those of `--color-mode`; with
    `--color-mode native` the model is returned unbuilt when they are not given.
    """
    from keras_unet_seg import AttentionDecoderStage, DecoderStage, UNet

    try:
        model = UNet(
            num_classes=options.num_classes,
            base_filters=options.base_filters,
            **_encoder_options.model_kwargs(options),
            normalization=options.normalization,
            upsampling=options.upsampling,
            pooling=options.pooling,
            dropout=options.dropout,
            residual=options.residual,
            decoder_stage=AttentionDecoderStage if options.attention else DecoderStage,
            dtype=dtype,
        )
    except ValueError as error:
        raise UsageError(f"train: {error}") from None
    channels = channels or {"grayscale": 1, "rgb": 3, "rgba": 4}.get(options.color_mode)
    if channels is not None:
        model.build((None, None, None, channels))
    return model


def compile_model(model, options, jit_compile="auto"):
    """Compiles `model` with the optimizer, loss and metrics of the options.

    The one place where the commands compile a model. Returns the name of the logged
    quantity that selects the best checkpoint (`val_<first metric>`).
    """
    loss = _common.get_loss(options.loss, "train: --loss")
    metric_objects = [
        _common.get_metric(name, "train: --metrics", num_classes=options.num_classes)
        for name in options.metrics
    ]
    if not metric_objects:
        raise UsageError("train: --metrics: give at least one metric name, such as dice.")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=options.learning_rate),
        loss=loss,
        metrics=metric_objects,
        jit_compile=jit_compile,
    )
    return f"val_{_common.metric_name(metric_objects[0])}"


def load_datasets(options, dist):
    """The training and validation datasets; batches of `--batch-size` per device of `dist`."""
    from keras_unet_seg.data import SegmentationDataset

    common = {
        "image_size": tuple(options.image_size),
        "batch_size": dist.global_batch_size(options.batch_size),
        "color_mode": options.color_mode,
        "intensity": options.intensity,
        "num_classes": options.num_classes,
        "seed": options.seed,
        "on_error": options.on_error,
        "crop_to_aspect_ratio": options.crop_to_aspect_ratio,
        "pad_to_aspect_ratio": options.pad_to_aspect_ratio,
    }
    split = options.validation_split
    subsets = (
        (options.train_subset, options.val_subset) if split is None else ("training", "validation")
    )
    datasets = []
    for role, subset, extra in (
        ("training", subsets[0], {"shuffle": True, "augment": options.augment or None}),
        ("validation", subsets[1], {"shuffle": False}),
    ):
        if split is not None:
            extra["validation_split"] = split
        try:
            datasets.append(
                SegmentationDataset.from_directory(options.data, subset=subset, **extra, **common)
            )
        except ValueError as error:  # the data module names the folder or file at fault
            option = "--train-subset" if role == "training" else "--val-subset"
            where = f"--validation-split {split}" if split is not None else f"{option} {subset}"
            hint = ""
            if split is None and os.path.isdir(os.path.join(options.data, "images")):
                hint = (
                    f" '{options.data}' is one flat folder (images/ and masks/): pass "
                    "--validation-split 0.2 to hold out a fifth of it for validation."
                )
            raise CommandError(
                f"cannot read the {role} data (--data {options.data}, {where}): {error}{hint}"
            ) from None
    # A batch that does not split evenly among the devices fails (JAX; TensorFlow's
    # MirroredStrategy in training, and in evaluation when a replica gets no image),
    # so the short last batch is left out, and said so.
    batch_size, replicas = common["batch_size"], dist.num_replicas
    even = []
    for role, dataset in zip(("training", "validation"), datasets, strict=True):
        count = len(dataset.image_paths)
        left_out = dist.left_out(count, batch_size)
        if left_out:
            if count < batch_size:
                raise CommandError(
                    f"the {count} {role} images do not split evenly among {replicas} "
                    f"devices; give at least {batch_size} (a global batch) or a multiple of "
                    f"{replicas}."
                )
            print(
                f"Each epoch leaves out the last {left_out} of the {count} {role} "
                f"images: batches of {batch_size} must split evenly among {replicas} devices."
            )
        even.append(dist.even_batches(dataset, count, batch_size))
    train_data, val_data = even
    return train_data, val_data, data_facts(datasets[0], options)


def data_facts(dataset, options):
    """What `config.json` records of the training data, for predict and evaluate.

    `input_channels`; `training_scale`, the factor from the training images' median
    size on disk to `--image-size` (height, width), by which `predict` and `evaluate`
    resize new images; and `mask_palette`, the colours of the class ids when the
    training masks are palette PNGs, which `predict` writes its masks with.
    """
    import math

    import numpy as np
    from PIL import Image

    heights, widths = zip(*dataset.image_sizes, strict=True)
    height, width = options.image_size
    ratio = (float(np.median(widths)) / float(np.median(heights))) / (width / height)
    if not (options.crop_to_aspect_ratio or options.pad_to_aspect_ratio) and (
        abs(math.log(ratio)) > math.log(1.1)
    ):
        print(
            f"Note: the training images are {int(np.median(widths))}x{int(np.median(heights))} "
            f"(width x height, median) and are resized to {width}x{height}, which distorts "
            "them; --crop-to-aspect-ratio or --pad-to-aspect-ratio keeps their shape."
        )
    facts = {
        "input_channels": int(dataset.element_spec[0].shape[-1]),
        "training_scale": [
            round(height / float(np.median(heights)), 6),
            round(width / float(np.median(widths)), 6),
        ],
    }
    with Image.open(dataset.mask_paths[0]) as mask:
        if mask.mode == "P" and options.num_classes > 1:
            colours = mask.getpalette()[: 3 * options.num_classes]
            facts["mask_palette"] = [colours[i : i + 3] for i in range(0, len(colours), 3)]
    return facts


def schedule_callbacks(options, monitor):
    """The learning-rate schedule, warm-up and early stopping of the options.

    One `LearningRateScheduler` sets the rate at each epoch's start (a function of
    the epoch alone, so a resumed run continues it): the linear warm-up, then the
    cosine decay; under `plateau` it leaves the rate to `ReduceLROnPlateau` after
    the warm-up.
    """
    import math

    base, warmup, epochs = options.learning_rate, options.warmup_epochs, options.epochs

    def rate(epoch, current):
        if epoch < warmup:
            return base * (epoch + 1) / (warmup + 1)
        if options.lr_schedule == "cosine":
            progress = (epoch - warmup) / max(epochs - warmup, 1)
            return base * 0.5 * (1 + math.cos(math.pi * progress))
        if options.lr_schedule == "plateau" or epoch > warmup:
            return current
        return base

    callbacks = []
    if warmup or options.lr_schedule == "cosine":
        callbacks.append(keras.callbacks.LearningRateScheduler(rate))
    if options.lr_schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode="max", factor=0.5, patience=3)
        )
    if options.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode="max", patience=options.early_stopping, verbose=1
            )
        )
    return callbacks


def set_up_devices(options):
    """The `Distribution` of `--strategy`, the dtype policy and the XLA switch to use."""
    try:
        dist = performance.distribution(options.strategy)
    except ValueError as error:
        raise UsageError(f"train: --strategy: {_common.one_line(error)}") from None
    if options.jit_compile is True and dist.name == "mirrored":
        raise UsageError(
            "train: --jit-compile on cannot run under --strategy mirrored (XLA cannot reach "
            "the variables mirrored on the other devices); use --jit-compile auto or off."
        )
    policy = performance.resolve_precision(options.precision, base_filters=options.base_filters)
    jit_compile = performance.resolve_jit_compile(options.jit_compile, distribution=dist)
    return dist, policy, jit_compile


def train(options, verbose=1):
    """Trains the model of `options` into the run folder `options.out`.

    Returns:
        A dict with the model, the monitored quantity, its best value and epoch, and
        the paths written.
    """
    out = options.out
    _common.require_folder(options.data, "data folder")
    if os.path.exists(out) and not os.path.isdir(out):
        raise CommandError(f"run folder '{out}' is a file, not a folder.")
    if not options.resume:
        _claim_run_folder(out, options.overwrite, verbose)
    config_path = os.path.join(out, CONFIG_FILE)
    log_path = os.path.join(out, LOG_FILE)
    backup_dir = os.path.join(out, BACKUP_FOLDER)
    best_path = os.path.join(out, BEST_MODEL_FILE)
    final_path = os.path.join(out, FINAL_MODEL_FILE)
    completed = _run_state.latest_epoch(backup_dir) if options.resume else 0
    finished = completed >= options.epochs
    if finished and not _is_stale(final_path, backup_dir):
        raise CommandError(
            f"run '{out}' has already trained {completed} epochs (--epochs {options.epochs}); "
            f"to train longer, pass --resume with --epochs greater than {completed}."
        )

    # The devices, the model and its loss and metrics first: they check the options
    # before any file is read or written.
    _model_size.check_model_fits(options)
    dist, policy, jit_compile = set_up_devices(options)
    keras.utils.set_random_seed(options.seed)
    with dist.scope():
        model = build_model(options, dtype=policy)
        monitor = compile_model(model, options, jit_compile=jit_compile)
    train_data, val_data, facts = load_datasets(options, dist)
    with dist.scope():
        if not model.built:  # --color-mode native: as many channels as the files
            model.build((None, None, None, facts["input_channels"]))
        unfreeze = _encoder_options.freeze_callbacks(model, options)

    _write(lambda: os.makedirs(out, exist_ok=True), out)
    _run_state.remove_temporary_files(out)
    _write(lambda: _atomic.write_json(config_path, {**run_config(options), **facts}), config_path)
    restored = None
    if options.resume:
        with dist.scope():
            restored = _restore(model, out, backup_dir, best_path, options, verbose)
    else:
        _run_state.remove_partial(backup_dir)
    start = restored.epoch if restored else 0
    state = _run_state.RunState(out, monitor, log_path, best_path, restored)
    if verbose:
        batch = dist.global_batch_size(options.batch_size)
        print(
            f"Training in {_common.speed_summary(policy, jit_compile, dist.num_replicas)} "
            f"(batches of {batch})."
        )
    try:
        if start < options.epochs:
            with dist.scope():
                model.fit(
                    train_data,
                    validation_data=val_data,
                    epochs=options.epochs,
                    initial_epoch=start,
                    # The schedule first, so that the rate it sets is in the logged rows.
                    callbacks=[*schedule_callbacks(options, monitor), *unfreeze, state],
                    verbose=verbose,
                    shuffle=False,  # the dataset shuffles itself, with the run's seed
                )
        _run_state.save_model(model, final_path)
    except _run_state.NonFiniteLoss as error:
        kept = _kept(state.rows)
        raise CommandError(
            f"training stopped: {error}, so the model diverged. {kept} Try a lower "
            "--learning-rate in a new run."
        ) from None
    except _run_state.WriteError as error:
        raise CommandError(
            f"{error}. {_kept(state.rows)} Free some space (or make the folder writable) "
            f"and continue with `{_common.PROG} train --out {out} --resume`."
        ) from None
    written = {"config": config_path, "model": final_path, "log": log_path}
    if os.path.exists(best_path):
        written["best_model"] = best_path
    curves = _plot_curves(log_path, os.path.join(out, CURVES_FILE))
    if curves:
        written["curves"] = curves
    best_epoch, best_value = _best_epoch(log_path, monitor)
    if verbose:
        epochs = "1 epoch" if options.epochs == 1 else f"{options.epochs} epochs"
        print(f"\nTraining finished: {epochs} in '{out}'.")
        if best_epoch is not None:
            print(f"Best {monitor}: {best_value:.4f} (epoch {best_epoch + 1}).")
        for label, path in written.items():
            print(f"  {label:<10} {path}")
    return {
        "model": model,
        "monitor": monitor,
        "best_value": best_value,
        "best_epoch": best_epoch,
        "written": written,
    }


# The files a run writes; `--overwrite` replaces them (and the backups) in a folder.
RUN_FILES = (CONFIG_FILE, BEST_MODEL_FILE, FINAL_MODEL_FILE, LOG_FILE, CURVES_FILE)


def _claim_run_folder(out, overwrite, verbose):
    """Refuses a folder holding files (not written by this command) unless `overwrite`."""
    if not os.path.isdir(out):
        return
    found = sorted(name for name in os.listdir(out) if not _atomic.is_temporary_name(name))
    if not found:
        return
    if not overwrite:
        if CONFIG_FILE in found:
            raise CommandError(
                f"run folder '{out}' already holds a training run ({CONFIG_FILE}); pass "
                "--resume to continue it, --overwrite to start it over, or choose another "
                "--out."
            )
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise CommandError(
            f"run folder '{out}' is not empty and holds no training run (it holds {shown}); "
            "choose another --out, or pass --overwrite to train there (a run's own files "
            f"and {BACKUP_FOLDER}/ are then replaced, other files kept)."
        )
    removed = [name for name in (*RUN_FILES, BACKUP_FOLDER) if name in found]
    for name in removed:
        path = os.path.join(out, name)
        _write(lambda path=path: _remove(path), path)
    if verbose and removed:
        print(f"--overwrite: removed {', '.join(removed)} from '{out}'.")


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def _write(action, path):
    """Runs a file-system `action`; an `OSError` becomes a one-line `CommandError`."""
    try:
        return action()
    except OSError as error:
        reason = error.strerror or _common.one_line(error)
        raise CommandError(f"cannot write '{path}': {reason}.") from None


def _is_stale(final_path, backup_dir):
    """Whether the final model is missing or older than the newest backup."""
    if not os.path.exists(final_path):
        return True
    found = _run_state.backups(backup_dir)
    newest = os.path.join(found[0][1], _run_state.STATE_FILE) if found else None
    return newest is not None and os.path.getmtime(final_path) < os.path.getmtime(newest)


def _restore(model, out, backup_dir, best_path, options, verbose):
    """Loads the newest complete backup; rewrites the log and best model to match it."""
    try:
        restored = _run_state.restore(model, backup_dir)
    except ValueError as error:
        raise CommandError(
            f"run '{out}' cannot be resumed: {error}. Start it over with --overwrite."
        ) from None
    if verbose:
        for path, reason in restored.skipped if restored else ():
            print(f"Skipped the backup '{path}': {reason}.")
    if restored is None and verbose:
        print(f"No backup in '{out}' yet: training starts at epoch 1.")
    try:
        _run_state.write_log(os.path.join(out, LOG_FILE), restored.rows if restored else [])
        best = restored.best if restored else None
        # The best model is saved after its backup: an interruption in between is made up.
        if best is not None and best["epoch"] == restored.epoch - 1:
            _run_state.save_model(model, best_path)
    except _run_state.WriteError as error:
        raise CommandError(f"{error}.") from None
    if restored is None:
        return None
    if verbose:
        step = int(model.optimizer.iterations)
        print(
            f"Resuming from the backup '{restored.path}' ({restored.epoch} epochs done): "
            f"epoch {restored.epoch + 1}/{options.epochs}, optimizer step {step}."
        )
    return restored


def _kept(rows):
    if not rows:
        return "No epoch was completed, so nothing was kept."
    return f"The run keeps its backup of epoch {len(rows)}."


def _read_log(log_path):
    if not os.path.exists(log_path):
        return [], []
    with open(log_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _best_epoch(log_path, monitor):
    _, rows = _read_log(log_path)
    best = None
    for row in rows:
        if row.get(monitor) in (None, ""):
            continue
        value = float(row[monitor])
        if best is None or value > best[1]:
            best = (int(row["epoch"]), value)
    return best if best is not None else (None, None)


def _plot_curves(log_path, path):
    """Writes the training curves if matplotlib is installed; returns the path or None."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(
            "Training curves not plotted: matplotlib is not installed "
            '(pip install "keras-unet-seg[viz]").'
        )
        return None
    from keras_unet_seg import viz

    viz.plot_history(log_path, filepath=path)
    return path
