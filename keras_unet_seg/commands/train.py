"""Train a UNet on a folder of images and masks.

The dataset root holds split folders, `DIR/train/{images,masks}` and
`DIR/val/{images,masks}`, as `SegmentationDataset.from_directory` reads them. Options
come from the command line or from a JSON file (`--config`) whose keys are the
options' names (`{"base_filters": 16, "loss": "dice"}`); the command line wins. The
run folder receives `config.json` (every option, reusable as `--config`),
`best.keras` (best epoch by the first metric on the validation set), `model.keras`
(the last epoch), `log.csv`, `curves.png` and `backup/` (the last epoch's weights and
optimizer state). An interrupted run continues from its last completed epoch,
weights and optimizer state included, with `keras-unet-seg train --out RUN --resume`;
add `--epochs N` to train a finished run longer.
"""

import argparse
import csv
import os

import keras

from keras_unet_seg import _io, performance
from keras_unet_seg.commands import _common, _encoder_options
from keras_unet_seg.commands._common import CommandError, Interrupted, UsageError

NAME = "train"

# Options that define the model's weights: they cannot change when resuming.
MODEL_OPTIONS = (
    "num_classes",
    "color_mode",
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
_CONTROL_OPTIONS = ("config", "resume", "out")

CONFIG_FILE = "config.json"
BEST_MODEL_FILE = "best.keras"
FINAL_MODEL_FILE = "model.keras"
LOG_FILE = "log.csv"
CURVES_FILE = "curves.png"
BACKUP_FOLDER = "backup"


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

    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        metavar="DIR",
        help="dataset root holding <subset>/images and <subset>/masks (required)",
    )
    data.add_argument("--train-subset", default="train", help="subfolder to train on")
    data.add_argument("--val-subset", default="val", help="subfolder to validate on")
    data.add_argument(
        "--image-size",
        type=_common.image_size,
        default=(128, 128),
        metavar="N|HxW",
        help="size images and masks are resized to for training",
    )
    data.add_argument(
        "--batch-size",
        type=_common.positive_int,
        default=8,
        help="images per training step (per device under --strategy)",
    )
    data.add_argument(
        "--color-mode",
        choices=("rgb", "grayscale", "rgba"),
        default="rgb",
        help="image channels (3, 1 or 4)",
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
        default="bce_dice",
        help="loss name for keras_unet_seg.losses.get (dice, jaccard, tversky, "
        "focal_tversky, bce_dice) or a Keras loss name",
    )
    training.add_argument(
        "--metrics",
        type=_common.name_list,
        default=["dice", "iou"],
        metavar="NAMES",
        help="comma-separated metric names for keras_unet_seg.metrics.get; the first "
        "selects the best checkpoint",
    )
    training.add_argument("--epochs", type=_common.positive_int, default=20, help="epochs in all")
    training.add_argument(
        "--learning-rate", type=_common.positive_float, default=1e-3, help="Adam's learning rate"
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
        config_path = os.path.join(args.out, CONFIG_FILE)
        if not os.path.isdir(args.out):
            raise CommandError(f"run folder '{args.out}' does not exist: nothing to resume.")
        if not os.path.isfile(config_path):
            raise CommandError(
                f"run folder '{args.out}' holds no {CONFIG_FILE}: it is not a training run, "
                "so there is nothing to resume."
            )
        saved = _common.read_json(config_path, "run config")
        layers.update(_common.config_defaults(parser, saved, config_path))
    if args.config is not None:
        config = _common.read_json(args.config, "config file")
        layers.update(_common.config_defaults(parser, config, args.config))
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


def build_model(options, dtype=None):
    """The `UNet` of the options, built for images of any size.

    `dtype` is the dtype policy name (`resolve_precision`); `None` takes Keras' global one.
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
    channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[options.color_mode]
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
        "num_classes": options.num_classes,
        "seed": options.seed,
    }
    datasets = []
    for role, subset, extra in (
        ("training", options.train_subset, {"shuffle": True, "augment": options.augment or None}),
        ("validation", options.val_subset, {"shuffle": False}),
    ):
        try:
            datasets.append(
                SegmentationDataset.from_directory(options.data, subset=subset, **extra, **common)
            )
        except ValueError as error:  # the data module names the folder or file at fault
            option = "--train-subset" if role == "training" else "--val-subset"
            raise CommandError(
                f"cannot read the {role} data (--data {options.data}, {option} {subset}): {error}"
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
    return train_data, val_data


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
    config_path = os.path.join(out, CONFIG_FILE)
    if not options.resume and os.path.exists(config_path):
        raise CommandError(
            f"run folder '{out}' already holds a training run ({CONFIG_FILE}); pass --resume "
            "to continue it, or choose another --out."
        )
    if os.path.exists(out) and not os.path.isdir(out):
        raise CommandError(f"run folder '{out}' is a file, not a folder.")
    log_path = os.path.join(out, LOG_FILE)
    backup_dir = os.path.join(out, BACKUP_FOLDER)
    best_path = os.path.join(out, BEST_MODEL_FILE)
    resuming = bool(options.resume) and os.path.isdir(backup_dir)
    completed = _backup_epoch(backup_dir) if resuming else 0
    if resuming and completed >= options.epochs:
        raise CommandError(
            f"run '{out}' has already trained {completed} epochs (--epochs {options.epochs}); "
            f"to train longer, pass --resume with --epochs greater than {completed}."
        )

    # The devices, the model and its loss and metrics first: they check the options
    # before any file is read or written.
    dist, policy, jit_compile = set_up_devices(options)
    keras.utils.set_random_seed(options.seed)
    with dist.scope():
        model = build_model(options, dtype=policy)
        monitor = compile_model(model, options, jit_compile=jit_compile)
        unfreeze = _encoder_options.freeze_callbacks(model, options)
    train_data, val_data = load_datasets(options, dist)

    os.makedirs(out, exist_ok=True)
    _io.write_json(config_path, run_config(options))
    best_so_far = None
    if resuming:
        best_so_far = _trim_log(log_path, completed, monitor)
    elif os.path.exists(log_path):
        os.remove(log_path)  # a run interrupted before its first epoch ended
    callbacks = [
        *unfreeze,
        keras.callbacks.CSVLogger(log_path, append=resuming),
        _AtomicModelCheckpoint(
            best_path,
            monitor=monitor,
            mode="max",
            save_best_only=True,
            initial_value_threshold=best_so_far,
            verbose=0,
        ),
        _ResumeReport(options.epochs) if verbose else keras.callbacks.Callback(),
        # Last, so that a backup is the commit point of an epoch: an interruption
        # before it re-runs the epoch, after it never does.
        # The backup is kept after the last epoch, so that `--resume --epochs N` can
        # train a finished run longer.
        keras.callbacks.BackupAndRestore(
            backup_dir, double_checkpoint=True, delete_checkpoint=False
        ),
    ]
    if verbose:
        batch = dist.global_batch_size(options.batch_size)
        print(
            f"Training in {_common.speed_summary(policy, jit_compile, dist.num_replicas)} "
            f"(batches of {batch})."
        )
    with dist.scope():
        model.fit(
            train_data,
            validation_data=val_data,
            epochs=options.epochs,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the dataset shuffles itself, with the run's seed
        )
    final_path = os.path.join(out, FINAL_MODEL_FILE)
    _io.save_model(model, final_path)
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


class _AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`ModelCheckpoint` that writes a hidden file, then replaces the target in one step.

    An interruption while saving leaves the previous best model whole.
    """

    def __init__(self, filepath, **kwargs):
        self.final_path = filepath
        directory, name = os.path.split(os.path.abspath(filepath))
        self.partial_path = os.path.join(directory, f".{os.path.splitext(name)[0]}.tmp.keras")
        super().__init__(self.partial_path, **kwargs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if os.path.exists(self.partial_path):
            os.replace(self.partial_path, self.final_path)


class _ResumeReport(keras.callbacks.Callback):
    """Says where a resumed run starts (epoch and optimizer step)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs
        self.first = True

    def on_epoch_begin(self, epoch, logs=None):
        if self.first and epoch > 0:
            step = int(self.model.optimizer.iterations)
            print(
                f"Resuming from the backup: epoch {epoch + 1}/{self.epochs}, optimizer step {step}."
            )
        self.first = False


def _backup_epoch(backup_dir):
    """The number of completed epochs recorded by `BackupAndRestore` (0 if unknown)."""
    import json

    try:
        with open(os.path.join(backup_dir, "training_metadata.json"), encoding="utf-8") as f:
            return int(json.load(f)["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _read_log(log_path):
    if not os.path.exists(log_path):
        return [], []
    with open(log_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _trim_log(log_path, completed_epochs, monitor):
    """Keeps the log's rows of the completed epochs; returns the best `monitor` so far.

    An epoch logged but interrupted before its backup is trained again after resuming;
    its first row is dropped so that the log holds each epoch once.
    """
    fields, rows = _read_log(log_path)
    kept = [row for row in rows if int(row["epoch"]) < completed_epochs]
    if len(kept) != len(rows):
        with (
            _io.atomic_path(log_path) as temporary,
            open(temporary, "w", newline="", encoding="utf-8") as f,
        ):
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
    values = [float(row[monitor]) for row in kept if row.get(monitor) not in (None, "")]
    return max(values) if values else None


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
