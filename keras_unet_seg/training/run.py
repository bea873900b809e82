"""`train_run`: trains a run folder from a `TrainingConfig`.

The run folder receives `config.json` (the config and what the run found in the
data), `best.keras` (best epoch by the first metric on the validation set),
`model.keras` (the last epoch), `log.csv`, `curves.png` and `backup/` (the weights
and optimizer state of the last two epochs, each written whole before it replaces
the older one). One process at a time trains in it (`.keras-unet-seg.lock`). An
interrupted run continues from its newest complete backup with `resume=True`.
"""

import dataclasses
import json
import os
import shutil
import tempfile

import keras

from keras_unet_seg import _atomic, _outputs, performance
from keras_unet_seg._errors import InvalidArgumentError, UserError
from keras_unet_seg._naming import option
from keras_unet_seg.performance.devices import speed_summary
from keras_unet_seg.training import _backups, _model_size, _run_folder, callbacks
from keras_unet_seg.training._data import load_datasets
from keras_unet_seg.training._errors import TrainingError
from keras_unet_seg.training._model import build_model, compile_model
from keras_unet_seg.training.config import UNFROZEN_LEARNING_RATE_FACTOR, TrainingConfig
from keras_unet_seg.training.schedule import LearningRateSchedule

__all__ = ["TrainingResult", "train_run"]


@dataclasses.dataclass
class TrainingResult:
    """What `train_run` returns.

    Attributes:
        model: the trained model (the last epoch's weights).
        monitor: str, the logged quantity that selected `best.keras`.
        best_value: float or `None`, its best value.
        best_epoch: int or `None`, the (0-based) epoch of that value.
        written: dict of the files written: `config`, `model`, `log`, and
            `best_model` and `curves` when written.
        facts: dict, what the run found in the data (`config.RECORDED`).
    """

    model: keras.Model
    monitor: str
    best_value: float | None
    best_epoch: int | None
    written: dict
    facts: dict


def train_run(
    config,
    out,
    *,
    resume=False,
    overwrite=False,
    verbose=1,
    coordinator_address=None,
    num_processes=None,
    process_id=None,
):
    """Trains the model of `config` into the run folder `out`.

    What the `train` command runs, with the same files and messages: a run
    trained here and one trained by the command with the same options are the
    same run.

    Several processes (hosts) train one run together with
    `config.strategy="data_parallel"` (JAX): each calls `train_run` with the same
    config and `out`, and the coordinator's address, the number of processes and
    its own id (or the environment variables that
    `performance.distribution` reads). Each reads its part of every global
    batch; process 0 alone writes the run folder, which must be one that every
    process sees (a shared file system) for `resume`.

    Args:
        config: a `TrainingConfig`.
        out: str, the run folder: new or empty, or an earlier run's with
            `overwrite` (its files are removed, other files never) or `resume`.
        resume: bool, continue the run in `out` from its newest complete backup
            (weights and optimizer state); `config.epochs` may be raised to train
            a finished run longer. The model's fields must not change.
        overwrite: bool, start over in a folder holding an earlier run.
        verbose: int, 0 silent, 1 progress and messages (process 0 only).
        coordinator_address: str `"host:port"` of process 0, with several
            processes.
        num_processes: int, the number of processes, with several.
        process_id: int, this process's index from 0, with several.

    Returns:
        A `TrainingResult`.

    Raises:
        TrainingError: the folder, the data or the run cannot go on (the
            message says why and what to do); the last complete epoch is kept.
        ValueError: a model the config cannot build, too big to train here, or
            devices and hosts that cannot train it.
    """
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"Expected a TrainingConfig. Received: config={config!r}")
    if resume and overwrite:
        raise InvalidArgumentError(
            f"{option('resume', True)} continues the run in {option('out')} and "
            f"{option('overwrite', True)} starts it over; give one of them."
        )
    _require_folder(config.data)
    hosts = {
        "coordinator_address": coordinator_address,
        "num_processes": num_processes,
        "process_id": process_id,
    }
    devices = set_up_devices(config, hosts)
    if not devices[0].is_chief:
        return _follow(config, out, resume, devices)
    with _run_folder.locked(out, verbose), _outputs.recording(out):
        return _train(config, out, resume, devices, overwrite=overwrite, verbose=verbose)


def _require_folder(path):
    if not os.path.exists(path):
        raise TrainingError(f"data folder '{path}' does not exist.")
    if not os.path.isdir(path):
        raise TrainingError(f"data folder '{path}' is not a folder.")


def _follow(config, out, resume, devices):
    """Trains as process 0 does, in a scratch folder that is then deleted.

    Under several processes, saving a model or a backup is a collective operation:
    every process runs the same ones, and only process 0 keeps what it writes. A
    resumed run starts from a copy of the run's `config.json` and backups, so that
    every process restores the same one.
    """
    scratch = tempfile.mkdtemp(prefix="keras-unet-seg-")
    try:
        if resume:
            _run_folder.check_resumable(out)
            shared = _run_folder.run_paths(out)
            shutil.copy(shared.config, scratch)
            for _, path in _backups.backups(shared.backup):
                shutil.copytree(
                    path, os.path.join(scratch, _backups.BACKUP_FOLDER, os.path.basename(path))
                )
        result = _train(config, scratch, resume, devices, verbose=0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result.written = {
        name: os.path.join(out, os.path.relpath(path, scratch))
        for name, path in result.written.items()
    }
    return result


def _train(config, out, resume, devices, overwrite=False, verbose=1):
    if resume:
        _run_folder.check_resumable(out)
        _check_unchanged(config, _run_folder.run_paths(out).config)
    paths = _run_folder.open_run(out, config.epochs, resume, overwrite, verbose)
    # The model and its loss and metrics first: they check the config before any
    # file is read or written.
    _model_size.check_model_fits(config)
    dist, policy, jit_compile = devices
    keras.utils.set_random_seed(config.seed)
    with dist.scope():
        model = build_model(config, dtype=policy)
        monitor = compile_model(model, config, jit_compile=jit_compile)
    train_data, val_data, facts = load_datasets(config, dist)
    with dist.scope():
        if not model.built:  # color_mode "native": as many channels as the files
            model.build((None,) * (len(config.image_size) + 1) + (facts["input_channels"],))
        # Before `fit`: Keras' TensorFlow trainer would make the optimizer's variables
        # while tracing the training step, then trace it again.
        model.optimizer.build(model.trainable_variables)
        unfreeze = callbacks.freeze_encoder(model, config.freeze_encoder_epochs, verbose)
        checkpoint = callbacks.RunCheckpoint(out, monitor, mode="max", restore=False)
        record = {**config.to_dict(), **facts}
        start = _start(paths, record, model, checkpoint, resume, verbose)
    if verbose:
        batch = dist.global_batch_size(config.batch_size)
        print(
            f"Training in {speed_summary(policy, jit_compile, dist.num_replicas)} "
            f"(batches of {batch})."
        )
        print(_length(config, facts["training_images"], batch))
    # The schedule first, so that the rate it sets is in the logged rows.
    history = [row.get(monitor) for row in checkpoint.rows]
    fit_callbacks = [*schedule_callbacks(config, monitor, history), *unfreeze, checkpoint]
    with dist.scope():
        _fit(model, (train_data, val_data), start, fit_callbacks, paths, config, verbose)
    return _finish(model, monitor, paths, facts, config, verbose)


def _check_unchanged(config, path):
    """Refuses to resume the run of `config.json` at `path` with another model or loss
    scaling."""
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError) as error:
        raise TrainingError(f"cannot read the run's '{path}': {error}.") from None
    # Runs from before the option read images by their dtype's range.
    saved.setdefault("intensity", "scale")
    changed = config.model_changes(saved)
    if changed:
        raise InvalidArgumentError(
            f"cannot change the model when resuming ({', '.join(map(option, changed))} "
            f"differ from the run's {os.path.basename(path)}); start a new run with another "
            f"{option('out')} instead."
        )
    # Runs from before the option trained in float32. A saved "auto" resolves here
    # as it does now, so only an explicit change is seen.
    before, now = (
        performance.resolve_precision(value, base_filters=config.base_filters)
        for value in (saved.get("precision", "float32"), config.precision)
    )
    if before != now and "mixed_float16" in (before, now):
        raise InvalidArgumentError(
            f"cannot resume in {now}: the run trained in {before}, and mixed_float16's "
            "loss scaling changes the optimizer state that resuming restores; keep "
            f"{option('precision')} as it was."
        )


def set_up_devices(config, hosts=None):
    """The `Distribution` of `config.strategy` (on the processes of `hosts`), the dtype
    policy and the XLA switch."""
    try:
        dist = performance.distribution(config.strategy, **(hosts or {}))
    except UserError as error:
        raise InvalidArgumentError(
            f"{option('strategy')}: {' '.join(str(error).split())}"
        ) from None
    if config.jit_compile is True and dist.name == "mirrored":
        raise InvalidArgumentError(
            f"{option('jit_compile', 'on')} cannot run under "
            f"{option('strategy', 'mirrored')} (XLA cannot reach the variables mirrored on "
            f"the other devices); use {option('jit_compile', 'auto')} or off."
        )
    policy = performance.resolve_precision(config.precision, base_filters=config.base_filters)
    jit_compile = performance.resolve_jit_compile(config.jit_compile, distribution=dist)
    return dist, policy, jit_compile


def _start(paths, record, model, checkpoint, resume, verbose):
    """Writes `config.json`; when resuming, restores `model`. Returns the first epoch."""
    _run_folder.write(lambda: os.makedirs(paths.out, exist_ok=True), paths.out)
    _backups.remove_temporary_files(paths.out)
    _run_folder.write(lambda: _atomic.write_json(paths.config, record), paths.config)
    if not resume:
        _backups.remove_partial(paths.backup)
        return 0
    try:
        restored = checkpoint.restore(model)
    except ValueError as error:
        raise TrainingError(
            f"run '{paths.out}' cannot be resumed: {error}. Start it over with "
            f"{option('overwrite', True)}."
        ) from None
    except _backups.WriteError as error:
        raise TrainingError(f"{error}.") from None
    if verbose:
        for path, reason in restored.skipped if restored else ():
            print(f"Skipped the backup '{path}': {reason}.")
        if restored is None:
            print(f"No backup in '{paths.out}' yet: training starts at epoch 1.")
        else:
            print(
                f"Resuming from the backup '{restored.path}' ({restored.epoch} epochs "
                f"done): epoch {restored.epoch + 1}/{record['epochs']}, optimizer step "
                f"{int(model.optimizer.iterations)}."
            )
    return restored.epoch if restored else 0


def schedule_callbacks(config, monitor, history=()):
    """The learning-rate schedule and early stopping of `config`.

    One `LearningRateSchedule` sets every epoch's rate (the warm-up, the cosine or
    plateau schedule, and the factor after `freeze_encoder_epochs`): a function of
    the epoch and the config alone, so a resumed run continues it. `history` holds
    the monitored values of the epochs a resumed run has done, which `plateau`
    replays.
    """
    schedule = LearningRateSchedule(
        config.learning_rate,
        config.epochs,
        schedule=config.lr_schedule,
        warmup_epochs=config.warmup_epochs,
        unfreeze_epoch=config.freeze_encoder_epochs or None,
        unfreeze_factor=UNFROZEN_LEARNING_RATE_FACTOR,
        monitor=monitor,
        history=history,
    )
    if not config.early_stopping:
        return [schedule]
    stopping = keras.callbacks.EarlyStopping(
        monitor=monitor, mode="max", patience=config.early_stopping, verbose=1
    )
    return [schedule, stopping]


def _length(config, num_images, batch_size):
    """What the training length means for these images, in a sentence."""
    steps = config.steps_per_epoch or -(-num_images // batch_size)
    total = steps * config.epochs
    passes = total * batch_size / num_images
    per_epoch = "" if config.steps_per_epoch else ", one pass over the images an epoch"
    epochs = "1 epoch" if config.epochs == 1 else f"{config.epochs} epochs"
    return (
        f"{epochs} of {steps} optimizer steps{per_epoch}: {total} steps, "
        f"about {passes:.3g} passes over the {num_images} training images."
    )


def _fit(model, datasets, start, fit_callbacks, paths, config, verbose):
    """`model.fit` from epoch `start`, then the final model saved; faults in one line.

    The last callback is the run's `RunCheckpoint`, which knows the epochs it kept.
    """
    checkpoint = fit_callbacks[-1]
    try:
        if start < config.epochs:
            train_data = datasets[0]
            if config.steps_per_epoch:  # a resumed run draws the batches it would have
                train_data = train_data.skip(start * config.steps_per_epoch)
            model.fit(
                train_data,
                steps_per_epoch=config.steps_per_epoch or None,
                validation_data=datasets[1],
                epochs=config.epochs,
                initial_epoch=start,
                callbacks=fit_callbacks,
                verbose=verbose,
                shuffle=False,  # the dataset shuffles itself, with the run's seed
            )
        _backups.save_model(model, paths.final)
    except callbacks.NonFiniteLoss as error:
        raise TrainingError(
            f"training stopped: {error}, so the model diverged. "
            f"{_run_folder.kept(checkpoint.rows)} "
            f"Try a lower {option('learning_rate')} in a new run."
        ) from None
    except _backups.WriteError as error:
        raise TrainingError(
            f"{error}. {_run_folder.kept(checkpoint.rows)} Free some space (or make the folder "
            f"writable) and continue it with {option('resume', True)} ({option('out', paths.out)})."
        ) from None


def _finish(model, monitor, paths, facts, config, verbose):
    """Plots the curves and says what was written; returns the `TrainingResult`."""
    written = {"config": paths.config, "model": paths.final, "log": paths.log}
    if os.path.exists(paths.best):
        written["best_model"] = paths.best
    if _plot_curves(paths.log, paths.curves):
        written["curves"] = paths.curves
    best_epoch, best_value = _run_folder.best_epoch(paths.log, monitor)
    if verbose:
        epochs = "1 epoch" if config.epochs == 1 else f"{config.epochs} epochs"
        print(f"\nTraining finished: {epochs} in '{paths.out}'.")
        if best_epoch is not None:
            print(f"Best {monitor}: {best_value:.4f} (epoch {best_epoch + 1}).")
        for label, path in written.items():
            print(f"  {label:<10} {path}")
    return TrainingResult(model, monitor, best_value, best_epoch, written, facts)


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
