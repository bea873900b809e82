"""Models for the commands: the `.keras` file checked and loaded, and prepared for inference."""

import os

from keras_unet_seg.commands._errors import CommandError, one_line
from keras_unet_seg.performance.devices import speed_summary


def check_model_file(path):
    """Raises `CommandError` unless `path` looks like a `.keras` file (cheap, no loading)."""
    import zipfile

    if not os.path.exists(path):
        raise CommandError(f"model file '{path}' does not exist.")
    if os.path.isdir(path):
        raise CommandError(f"model file '{path}' is a folder, not a .keras file.")
    if not os.path.isfile(path):  # reading a FIFO would wait for a writer forever
        raise CommandError(
            f"model file '{path}' is not a regular file (a pipe, socket or device): "
            "expected a .keras file."
        )
    stem, extension = os.path.splitext(path)
    if extension.lower() == ".keras" and extension != ".keras":
        raise CommandError(
            f"model file '{path}' ends in '{extension}': Keras reads only the lower-case "
            f"extension, so rename it to '{stem}.keras'."
        )
    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        raise CommandError(
            f"model file '{path}' is not a Keras model: expected a .keras file written "
            "by model.save() or by `keras-unet-seg train`."
        )


def load_model(path):
    """Loads a `.keras` model for inference (safe mode, not compiled: no optimizer state
    to restore) or raises `CommandError` naming the file."""
    import keras

    import keras_unet_seg  # noqa: F401  (registers the library's classes)

    check_model_file(path)
    try:
        return keras.saving.load_model(path, compile=False)  # inference: no optimizer
    except Exception as error:  # Keras raises many types for bad archives.
        raise CommandError(
            f"model file '{path}' cannot be loaded: {type(error).__name__}: {one_line(error)}"
        ) from None


def inference_model(model, precision="auto", fold=True, jit_compile="auto", verbose=1):
    """`model` under `precision` (same weights), batch normalization folded unless
    `fold=False`, with `jit_compile` applied (`--precision`, `--no-fold`, `--jit-compile`).

    Only a `UNet` is rebuilt under another precision; other models keep their own
    under `auto`, and an explicit other precision is refused.
    """
    from keras_unet_seg import UNet, performance

    if isinstance(model, UNet):
        model = performance.with_precision(model, precision, training=False)
    elif precision not in ("auto", model.dtype_policy.name):
        raise CommandError(
            f"--precision {precision} applies to UNet models; this model is a "
            f"{type(model).__name__} and computes in {model.dtype_policy.name}: use "
            "--precision auto."
        )
    folded = fold and _has_batch_normalization(model)
    if folded:
        model = _folded(model)
    model.jit_compile = performance.resolve_jit_compile(jit_compile, training=False)
    if verbose:
        print(f"Predicting in {speed_summary(model.dtype_policy.name, model.jit_compile)}.")
        if folded:
            print("Batch normalization folded into the convolutions (--no-fold keeps it).")
    return model


def _has_batch_normalization(model):
    import keras

    return any(
        isinstance(layer, keras.layers.BatchNormalization) for layer in model._flatten_layers()
    )


def _folded(model):
    from keras_unet_seg.export import fold_batch_normalization

    try:
        return fold_batch_normalization(model)
    except ValueError as error:
        raise CommandError(f"{error}; use --no-fold to predict without folding.") from None
