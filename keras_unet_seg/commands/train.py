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
"""

import os

import keras

from keras_unet_seg import _outputs, performance
from keras_unet_seg.commands import (
    _encoder_options,
    _losses_metrics,
    _model_size,
    _models,
    _run_folder,
    _run_state,
    _types,
)
from keras_unet_seg.commands._errors import (
    PROG,
    CommandError,
    Interrupted,
    UsageError,
    one_line,
    require_folder,
    train_options_printed,
    with_train_options,
)
from keras_unet_seg.commands._train_options import (
    NAME,
    add_arguments,
    options,
    resolve_options,
    run_config,
)

__all__ = ["NAME", "add_arguments", "options", "resolve_options", "run", "train"]


def run(args):
    args = resolve_options(args)
    try:
        train(args)
    except KeyboardInterrupt:
        raise Interrupted(
            f"training interrupted; continue it with `{PROG} train --out {args.out} --resume`."
        ) from None
    return 0


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
    loss = _losses_metrics.get_loss(options.loss, "train: --loss")
    metric_objects = [
        _losses_metrics.get_metric(name, "train: --metrics", num_classes=options.num_classes)
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
    return f"val_{_losses_metrics.metric_name(metric_objects[0])}"


def load_datasets(options, dist):
    """The training and validation datasets; batches of `--batch-size` per device of `dist`."""
    from keras_unet_seg.data import SegmentationDataset

    common = {
        "image_size": tuple(options.image_size),
        "batch_size": dist.global_batch_size(options.batch_size),
        "color_mode": options.color_mode,
        "intensity": options.intensity,
        "num_classes": options.num_classes,
        "mask_threshold": options.mask_threshold,
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
        ("training", subsets[0], {"shuffle": True, "augment": _augmentation(options)}),
        ("validation", subsets[1], {"shuffle": False}),
    ):
        if split is not None:
            extra["validation_split"] = split
        try:
            with train_options_printed():
                datasets.append(
                    SegmentationDataset.from_directory(
                        options.data, subset=subset, **extra, **common
                    )
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
            message = with_train_options(error)
            raise CommandError(
                f"cannot read the {role} data (--data {options.data}, {where}): {message}{hint}"
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
    if options.steps_per_epoch:  # epochs of a fixed number of steps, whatever the images
        train_data = train_data.repeat()
    return train_data, val_data, data_facts(datasets[0], options)


def _augmentation(options):
    """`from_directory`'s `augment` of `--augment` (JointAugmentation's arguments, or None)."""
    return _types.AUGMENTATIONS[options.augment]


def data_facts(dataset, options):
    """What `config.json` records of the training data, for predict and evaluate.

    `training_images`, how many; `input_channels`; `training_scale`, the factor from
    the training images' median size on disk to `--image-size` (height, width), by
    which `predict` and `evaluate` resize new images; and `mask_palette`, the colours
    of the class ids when the training masks are palette PNGs, which `predict` writes
    its masks with.
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
        "training_images": len(dataset.image_paths),
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


def schedule_callbacks(options, monitor, history=()):
    """The learning-rate schedule and early stopping of the options.

    One `training.LearningRateSchedule` sets every epoch's rate (the warm-up, the
    cosine or plateau schedule, and the factor after `--freeze-encoder-epochs`):
    a function of the epoch and the options alone, so a resumed run continues it.
    `history` holds the monitored values of the epochs a resumed run has done,
    which `plateau` replays.
    """
    from keras_unet_seg.training import LearningRateSchedule

    callbacks = [
        LearningRateSchedule(
            options.learning_rate,
            options.epochs,
            schedule=options.lr_schedule,
            warmup_epochs=options.warmup_epochs,
            unfreeze_epoch=options.freeze_encoder_epochs or None,
            unfreeze_factor=_encoder_options.UNFROZEN_LEARNING_RATE_FACTOR,
            monitor=monitor,
            history=history,
        )
    ]
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
        raise UsageError(f"train: --strategy: {one_line(error)}") from None
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
    require_folder(options.data, "data folder")
    with _run_folder.locked(options.out, verbose), _outputs.recording(options.out):
        return _train(options, verbose)


def _train(options, verbose):
    paths = _run_folder.open_run(
        options.out, options.epochs, options.resume, options.overwrite, verbose
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
        unfreeze = _encoder_options.freeze_callbacks(model, options, verbose)
        restored = _run_folder.start(
            paths, {**run_config(options), **facts}, model, options, verbose
        )
    state = _run_state.RunState(options.out, monitor, paths.log, paths.best, restored)
    if verbose:
        batch = dist.global_batch_size(options.batch_size)
        print(
            f"Training in {_models.speed_summary(policy, jit_compile, dist.num_replicas)} "
            f"(batches of {batch})."
        )
        print(_length(options, facts["training_images"], batch))
    # The schedule first, so that the rate it sets is in the logged rows.
    history = [row.get(monitor) for row in state.rows]
    callbacks = [*schedule_callbacks(options, monitor, history), *unfreeze, state]
    start = restored.epoch if restored else 0
    with dist.scope():
        _fit(model, (train_data, val_data), start, callbacks, paths, options, verbose)
    return _finish(model, monitor, paths, options, verbose)


def _length(options, num_images, batch_size):
    """What the training length means for these images, in a sentence."""
    steps = options.steps_per_epoch or -(-num_images // batch_size)
    total = steps * options.epochs
    passes = total * batch_size / num_images
    per_epoch = "" if options.steps_per_epoch else ", one pass over the images an epoch"
    epochs = "1 epoch" if options.epochs == 1 else f"{options.epochs} epochs"
    return (
        f"{epochs} of {steps} optimizer steps{per_epoch}: {total} steps, "
        f"about {passes:.3g} passes over the {num_images} training images."
    )


def _fit(model, datasets, start, callbacks, paths, options, verbose):
    """`model.fit` from epoch `start`, then the final model saved; faults in one line.

    The last callback is the run's `RunState`, which knows the epochs it kept.
    """
    state = callbacks[-1]
    try:
        if start < options.epochs:
            train_data = datasets[0]
            if options.steps_per_epoch:  # a resumed run draws the batches it would have
                train_data = train_data.skip(start * options.steps_per_epoch)
            model.fit(
                train_data,
                steps_per_epoch=options.steps_per_epoch or None,
                validation_data=datasets[1],
                epochs=options.epochs,
                initial_epoch=start,
                callbacks=callbacks,
                verbose=verbose,
                shuffle=False,  # the dataset shuffles itself, with the run's seed
            )
        _run_state.save_model(model, paths.final)
    except _run_state.NonFiniteLoss as error:
        raise CommandError(
            f"training stopped: {error}, so the model diverged. {_run_folder.kept(state.rows)} "
            "Try a lower --learning-rate in a new run."
        ) from None
    except _run_state.WriteError as error:
        raise CommandError(
            f"{error}. {_run_folder.kept(state.rows)} Free some space (or make the folder "
            f"writable) and continue with `{PROG} train --out {options.out} --resume`."
        ) from None


def _finish(model, monitor, paths, options, verbose):
    """Plots the curves and says what was written; returns `train`'s result."""
    written = {"config": paths.config, "model": paths.final, "log": paths.log}
    if os.path.exists(paths.best):
        written["best_model"] = paths.best
    if _plot_curves(paths.log, paths.curves):
        written["curves"] = paths.curves
    best_epoch, best_value = _run_folder.best_epoch(paths.log, monitor)
    if verbose:
        epochs = "1 epoch" if options.epochs == 1 else f"{options.epochs} epochs"
        print(f"\nTraining finished: {epochs} in '{options.out}'.")
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
