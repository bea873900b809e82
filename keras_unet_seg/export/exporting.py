"""Exporting a segmentation model with Keras' exporters, and checking the written file.

`export_model` writes a (folded) model with Keras' own exporters
(`model.export`), checks the written file in its runtime against
`keras-unet-seg predict`, and writes beside it a JSON file with what a consumer
needs to reproduce that command: the model's `InferenceSpec` (input
normalization, scale, tiling, threshold), the steps to follow, the output
activation, class names and colours.

- `"onnx"` writes a `.onnx` file, run with ONNX Runtime (it needs `tf2onnx`
  on the TensorFlow backend); `"litert"` a `.tflite` file, run with the
  LiteRT interpreter of `ai-edge-litert`; `"saved_model"` a TensorFlow
  SavedModel folder, signature `serve`; `"openvino"` a `.xml` file and its
  `.bin`, run with OpenVINO.
- Every format keeps a dynamic batch, height and width unless `image_size`
  fixes them, and a `UNet` pads inside the exported graph as it does in
  Keras, so a `(100, 75)` image gives a `(100, 75)` mask.
- A model built on volumes `(batch, depth, height, width, channels)` (a 3D
  `UNet`) exports the same way, with a dynamic depth too, to `"onnx"`,
  `"saved_model"` or `"openvino"`, and is checked on volumes by sliding-window
  inference as `predict` runs them. LiteRT is refused: its converter writes
  a 3D U-Net's `MaxPool3D` as a Select TensorFlow op (`FlexMaxPool3D`) that
  the LiteRT interpreter cannot run. int8 quantization is for images only.
- The check runs `check_images` (normalised) the way `predict` runs them,
  by the spec (`predict_tiled` with its scale and tiling), once through the
  written file (`load_exported`) and once through the Keras model as
  `predict` prepares it (folded, under the spec's precision), and reports
  the largest absolute difference and the mask pixels that differ (the
  `threshold` for one class, the argmax otherwise). A pixel that differs
  fails the export, except where a lower precision explains it: under
  `precision="float16"` (the export's weights) or `predict`'s float16,
  pixels whose probability is within 5e-3 of the threshold (or of the
  runner-up class), under `predict`'s bfloat16 within 3e-2.
- `quantize="int8"` (ONNX, LiteRT) writes a statically quantized model,
  calibrated on images read as `predict` reads them, and scores it and the
  float32 model as `evaluate` does on validation pairs: a Dice drop beyond
  `max_dice_drop` fails the export (`keras_unet_seg.export._quantizing`); the
  parity figures are then recorded, not checked.
- `<filepath>.json` records the input layout, channels and normalization
  (`intensity`, with its formula in words), the `InferenceSpec` (`inference`)
  and the `steps` that reproduce `predict` with it, the output activation,
  the threshold, the class names and colours, the parity figures, and for a
  quantized model its `quantization` (method, calibration images, Dice of each).
"""

import dataclasses
import os
import tempfile
import warnings

import keras
import numpy as np

from keras_unet_seg import _atomic, _outputs
from keras_unet_seg._model_facts import image_input_shape
from keras_unet_seg._validation import check_built_model, check_choice, check_size, invalid_value
from keras_unet_seg.export import _quantizing
from keras_unet_seg.export._metadata import metadata
from keras_unet_seg.export.folding import fold_batch_normalization
from keras_unet_seg.export.runtimes import EXPORT_FORMATS, load_exported, require

__all__ = ["export_model"]

_KERAS_FORMATS = {
    "onnx": "onnx",
    "litert": "litert",
    "saved_model": "tf_saved_model",
    "openvino": "openvino",
}
_PRECISIONS = ("float32", "float16")
# Where Keras' exporter offers float16 weights: LiteRT (float16 quantization of the
# weights). ONNX, SavedModel and OpenVINO are written in float32.
_FLOAT16_FORMATS = ("litert",)
# Under a compute dtype, a pixel whose probability is this close to the threshold (or
# whose two best classes are this close) may fall either side. bfloat16 keeps 8 bits of
# mantissa (float16 11): measured, bfloat16 moved the probabilities by up to 5e-3 (tests/
# test_one_answer.py's run on a 1000x700 photo) and 1e-3 (a MobileNetV3Small encoder).
_MASK_TOLERANCES = {"float32": 0.0, "float16": 5e-3, "bfloat16": 3e-2}
# The formats of a model built on volumes: LiteRT's converter writes MaxPool3D as a Select
# TensorFlow op (FlexMaxPool3D), which the LiteRT interpreter cannot run.
VOLUME_FORMATS = ("onnx", "saved_model", "openvino")
# The random check inputs' sizes without `check_images` or `image_size`, by spatial rank:
# one a multiple of 2**depth for a small depth, one not (the model pads inside).
_CHECK_SIZES = {2: [(64, 64), (100, 75)], 3: [(16, 24, 20), (13, 30, 17)]}
_AXES = {2: ("height", "width"), 3: ("depth", "height", "width")}
# The files an exporter writes beside the one named (OpenVINO's weights).
_SIBLINGS = {"openvino": (".bin",)}


def export_model(
    model,
    filepath,
    format="onnx",
    *,
    fold=True,
    precision="float32",
    image_size=None,
    spec=None,
    class_names=None,
    class_colors=None,
    check_images=None,
    overwrite=False,
    verbose=True,
    quantize=None,
    **deprecated,
):
    """Exports a segmentation model for inference outside Keras, and checks the file.

    The model is rebuilt in float32, folded unless `fold=False`, written with
    `model.export`, run in its runtime on `check_images` as `predict` runs them (by
    `spec`) against the Keras model as `predict` runs it, and described in
    `<filepath>.json` (`keras_unet_seg.export.exporting`, the "Deploying" guide).

    Args:
        model: a built Keras model mapping images `(batch, height, width,
            channels)` to probabilities `(batch, height, width, num_classes)`
            (or volumes, `(batch, depth, ...)`: not to `"litert"`).
        filepath: str, the file (or SavedModel folder) to write: `.onnx`,
            `.tflite`, a folder, `.xml`.
        format: `"onnx"`, `"litert"`, `"saved_model"` or `"openvino"`. Defaults to `"onnx"`.
        fold: bool, whether to fold batch normalization. Defaults to `True`.
        precision: `"float32"`, or `"float16"` for float16 weights (LiteRT
            only). Defaults to `"float32"`.
        image_size: `None` for any size, or `(height, width)` (a volume
            model's `(depth, height, width)`) to fix it. Defaults to `None`.
        spec: the `InferenceSpec` the model runs by, written into the JSON
            file and followed by the check. Defaults to `None`: the defaults.
        class_names: one name per mask value. Defaults to `None`:
            `["background", "foreground"]` for one class, else `"class_<id>"`.
        class_colors: one RGB triple per class name. Defaults to `None`: the
            colours of `keras_unet_seg.viz.overlay_mask`.
        check_images: float32 normalized images `(n, height, width,
            channels)` (volumes `(n, depth, ...)`), or a list of such batches.
            Defaults to `None`: random ones of the fixed size, or of 64x64 and
            100x75 (volumes: 16x24x20 and 13x30x17).
        overwrite: bool, whether to replace an earlier export's files (never
            another file). Defaults to `False`.
        verbose: bool, whether to print the parity figures. Defaults to `True`.
        quantize: `None`, or a dict of int8 options (the "Deploying" guide). Defaults to `None`.
        **deprecated: `intensity`, `color_mode` and `threshold`, deprecated:
            pass them in `spec`.

    Returns:
        The dict written to `<filepath>.json`.

    Raises:
        ValueError: an invalid argument, or masks that differ from `predict`'s
            beyond a lower precision or `quantize`'s bound (nothing is written then).
        FileExistsError: a file to write exists, and no export wrote it or
            `overwrite` is `False`.
        ImportError: if the format's exporter or runtime is not installed.

    Example:

    ```python
    model = keras.saving.load_model("runs/a/best.keras")
    export_model(model, "model.onnx", spec=InferenceSpec.from_run("runs/a"))
    ```
    """
    check_built_model(model)
    *spatial, channels = image_input_shape(model)
    options = _Options(format, fold, precision, image_size, quantize, rank=len(spatial))
    reference = _float32(model)
    options.describe(_spec(spec, channels, options, deprecated), class_names, class_colors)
    images = _check_batches(check_images, options.image_size, channels, options.rank)
    written = _export(reference, os.fspath(filepath), options, channels, images, overwrite)
    if verbose:
        _print_parity(written, filepath)
    return written


def _spec(spec, channels, options, deprecated):
    """The checked `InferenceSpec` of the model's `channels`, its tiles of the model's
    rank (`options.rank`; a square tile is a cube for volumes) or of a fixed `image_size`."""
    from keras_unet_seg.inference import InferenceSpec

    given = dict(deprecated)
    unknown = sorted(set(given) - {"intensity", "color_mode", "threshold"})
    if unknown:
        raise TypeError(f"export_model() got unexpected keyword arguments {unknown}")
    if given:
        if spec is not None:
            raise ValueError(
                f"Arguments {sorted(given)} and `spec` are the same settings: pass only "
                f"`spec`. Received: spec={spec!r}"
            )
        warnings.warn(
            f"The arguments {sorted(given)} of `export_model` are deprecated and will be "
            "removed in the next release; pass `spec=InferenceSpec(...)` instead.",
            DeprecationWarning,
            stacklevel=3,
        )
    if spec is None:
        spec = InferenceSpec(channels=channels, **given)
    if not isinstance(spec, InferenceSpec):
        raise invalid_value("spec", "an InferenceSpec or None", spec)
    if spec.channels not in (None, channels):
        raise invalid_value(
            "spec",
            f"the model's {channels} input channels",
            received=f"spec.channels={spec.channels}",
        )
    tile = options.image_size or spec.tiled_arguments(options.rank == 3)["tile_size"]
    if len(tile) != options.rank:
        raise invalid_value(
            "spec",
            f"a tile_size of the model's {options.rank} spatial axes "
            f"({', '.join(_AXES[options.rank])}), or an int",
            received=f"spec.tile_size={spec.tile_size}",
        )
    return dataclasses.replace(spec, channels=channels, tile_size=tile)


class _Options:
    """The checked options of `export_model` that its JSON file records."""

    def __init__(self, format, fold, precision, image_size, quantize, rank):
        self.format = check_choice("format", format, EXPORT_FORMATS)
        self.rank = rank  # of the model's input: 2 for images, 3 for volumes
        if rank == 3:
            _check_volume_export(format, quantize)
        self.fold = fold
        self.precision = check_choice("precision", precision, _PRECISIONS)
        if precision == "float16" and format not in _FLOAT16_FORMATS:
            raise invalid_value(
                "precision",
                f"'float32' for format {format!r} (float16 weights are offered for "
                f"{_FLOAT16_FORMATS})",
                precision,
            )
        self.image_size = check_size("image_size", image_size, allow_none=True, rank=rank)
        self.quantization = quantize and _quantizing.Quantization(format, precision, **quantize)
        require(format, quantize=bool(quantize))

    def describe(self, spec, class_names, class_colors):
        """Adds what the JSON file says of the model's inputs and outputs."""
        self.spec = spec
        self.class_names = class_names
        self.class_colors = class_colors


def _check_volume_export(format, quantize):
    """Refuses the formats and options that a model built on volumes cannot export to."""
    if format not in VOLUME_FORMATS:
        raise invalid_value(
            "format",
            f"one of {VOLUME_FORMATS} for a model built on volumes (LiteRT's converter "
            "writes a 3D U-Net's MaxPool3D as a Select TensorFlow op, FlexMaxPool3D, that "
            "the LiteRT interpreter cannot run)",
            format,
        )
    if quantize:
        raise invalid_value(
            "quantize",
            "None for a model built on volumes (int8 calibration and its quality check "
            "read images)",
            quantize,
        )


def _export(reference, filepath, options, channels, images, overwrite):
    """Writes the export of `reference` and its JSON file; returns the JSON's dict.

    Existing files are replaced only if an earlier export wrote them and `overwrite`.
    The model is written under a temporary name and checked (a quantized model on its
    validation pairs) before it is renamed: a failed export leaves the old files as
    they were.
    """
    folder = os.path.dirname(os.path.abspath(filepath))
    targets = written_files(filepath, options.format)
    _outputs.check_writable(targets, overwrite, folder, filepath, option="filepath")
    exported = fold_batch_normalization(reference) if options.fold else reference
    quantization = options.quantization
    siblings = _SIBLINGS.get(options.format, ())
    with _outputs.recording(folder):
        with _atomic.atomic_path(filepath, siblings=siblings) as temporary:
            _write(exported, temporary, options, channels, quantization)
            runner = load_exported(temporary, options.format)
            predicting = _as_predict_runs(reference, exported, options.spec)
            parity, num_classes = _parity(predicting, runner, images, options)
            written = metadata(reference, filepath, channels, num_classes, parity, **vars(options))
            if quantization is None:
                _check_parity(written, filepath)
            else:
                _check_quantized(written, exported, runner, options, quantization, filepath)
        _atomic.write_json(filepath + ".json", written)
    return written


def _write(model, filepath, options, channels, quantization):
    """Writes `model` with Keras' exporter, for images of `channels` channels; quantized
    (`quantization`) on the tiles of its calibration images."""
    shape = (None, *(options.image_size or (None,) * options.rank), channels)
    signature = [keras.InputSpec(shape=shape, dtype="float32")]
    kwargs = _precision_kwargs(options.precision)
    if quantization is not None:

        def tiles():
            return _quantizing.calibration_tiles(quantization.images, options.spec, shape)

        if options.format == "litert":
            kwargs = _quantizing.litert_converter_kwargs(tiles)
        else:
            with tempfile.TemporaryDirectory() as folder:
                source = os.path.join(folder, "float32.onnx")
                model.export(source, format="onnx", input_signature=signature, verbose=False)
                _quantizing.quantize_onnx(source, filepath, tiles, quantization.keep_float)
            return
    model.export(
        filepath,
        format=_KERAS_FORMATS[options.format],
        input_signature=signature,
        verbose=False,
        **kwargs,
    )


def _check_quantized(written, reference, runner, options, quantization, filepath):
    """Scores the quantized model against `reference` (float32) into `written`; raises
    if its Dice drops too much. The parity figures stay, without a tolerance."""
    quality = _quantizing.quality(reference, runner, quantization.validation, options.spec)
    for key in ("mask_tolerance", "mask_pixels_beyond_tolerance"):
        del written["parity"][key]
    written["quantization"] = quantization.record(quality, written["format"])
    _quantizing.check_quality(quality, quantization.max_dice_drop, filepath)


def _as_predict_runs(reference, exported, spec):
    """The model as `predict` runs it: under the spec's precision (a `UNet`), folded.

    `reference` is the float32 model, `exported` the model written (`reference`,
    folded or not).
    """
    from keras_unet_seg import performance
    from keras_unet_seg.models import UNet

    model = reference
    if isinstance(reference, UNet):
        model = performance.with_precision(reference, spec.precision, training=False)
    if model is reference and exported is not reference:
        return exported
    return fold_batch_normalization(model)


class _Sized:
    """A NumPy function that `predict_tiled` tiles as a model of `input_shape`."""

    def __init__(self, function, input_shape):
        self.function, self.input_shape = function, input_shape

    def __call__(self, batch):
        return self.function(batch)


def _parity(predicting, runner, images, options):
    """`(parity figures, num_classes)` of the exported model (`runner`) against `predicting`.

    Both run as `predict` runs images, by `options.spec`; with a fixed `image_size`
    both are given tiles of that size (shorter sides padded).
    """
    from keras_unet_seg.inference import predict_tiled

    spec, policy = options.spec, predicting.dtype_policy
    tolerance = max(_MASK_TOLERANCES[options.precision], _MASK_TOLERANCES[policy.compute_dtype])
    shape = (None, *(options.image_size or (None,) * options.rank), images[0].shape[-1])
    tiling = spec.tiled_arguments(volumes=options.rank == 3)
    if options.image_size:
        predicting = _Sized(predicting.predict_on_batch, shape)
    runner = _Sized(runner, shape)
    differences, mismatches, beyond = [], 0, 0
    for batch in images:
        want = predict_tiled(predicting, batch, **tiling, verbose=0)
        got = predict_tiled(runner, batch, **tiling, verbose=0)
        differences.append(float(np.max(np.abs(want - got))))
        mismatches += _mask_mismatches(want, got, spec.threshold, 0.0)
        beyond += _mask_mismatches(want, got, spec.threshold, tolerance)
    parity = {
        "image_sizes": [list(batch.shape[1:-1]) for batch in images],
        "compared_with": f"keras-unet-seg predict, in {policy.name}",
        "max_abs_difference": max(differences),
        "mask_pixels_differing": mismatches,
        "mask_tolerance": tolerance,
        "mask_pixels_beyond_tolerance": beyond,
    }
    return parity, want.shape[-1]


def written_files(filepath, format):
    """The paths an export of `format` at `filepath` writes: its file(s) and JSON file."""
    stem = os.path.splitext(filepath)[0]
    return [
        filepath,
        *(stem + extension for extension in _SIBLINGS.get(format, ())),
        filepath + ".json",
    ]


def _check_parity(written, filepath):
    """Raises if a mask of the export differs from `predict`'s beyond the tolerance."""
    parity = written["parity"]
    mismatches, beyond = parity["mask_pixels_differing"], parity["mask_pixels_beyond_tolerance"]
    if beyond:
        raise ValueError(
            f"The {written['format']} export at '{filepath}' gives {mismatches} mask pixels "
            f"that differ from {parity['compared_with']}, {beyond} of them beyond "
            f"{parity['mask_tolerance']:g} of the threshold (largest probability difference "
            f"{parity['max_abs_difference']:.2e}); it was not written."
        )


def _print_parity(written, filepath):
    parity = written["parity"]
    mismatches, tolerance = parity["mask_pixels_differing"], parity.get("mask_tolerance")
    sizes = ", ".join("x".join(str(s) for s in size) for size in parity["image_sizes"])
    kind = "volumes" if len(parity["image_sizes"][0]) == 3 else "images"
    near = f" (all within {tolerance:g} of the threshold)" if mismatches and tolerance else ""
    print(
        f"Exported {written['format']} to '{filepath}' (+ '{filepath}.json'); on {sizes} {kind} "
        f"run as predict runs them, the largest difference from {parity['compared_with']} is "
        f"{parity['max_abs_difference']:.2e}, {mismatches} mask pixels differ{near}."
    )
    if "quantization" in written:
        quality = written["quantization"]["quality"]
        print(
            f"{written['precision']} on {len(quality['validation_images'])} validation images: "
            f"Dice {quality['dice_int8']:.4f} against {quality['dice_float32']:.4f} in "
            f"float32 (a drop of {quality['dice_drop']:.4f}); "
            f"{quality['mask_pixels_differing_fraction']:.4%} of the mask pixels differ."
        )


def _float32(model):
    """The model itself in float32, or a float32 copy (same weights) of a mixed one."""
    if model.dtype_policy.name == "float32":
        return model
    from keras_unet_seg import performance

    return performance.with_precision(model, "float32")


def _precision_kwargs(precision):
    if precision != "float16":
        return {}
    import tensorflow as tf

    return {  # LiteRT's converter options
        "optimizations": [tf.lite.Optimize.DEFAULT],
        "target_spec": {"supported_types": [tf.float16]},
    }


def _check_batches(check_images, image_size, channels, rank):
    """The batches to check the export on: `check_images` (checked), else random ones of
    the model's spatial `rank` (of the fixed `image_size`, else of two sizes). Checked
    images of any size are tiled by `predict_tiled`, to the fixed size's tiles too."""
    if check_images is None:
        sizes = [image_size] if image_size else _CHECK_SIZES[rank]
        rng = np.random.default_rng(0)
        return [rng.random((2, *size, channels), dtype=np.float32) for size in sizes]
    batches = [check_images] if isinstance(check_images, np.ndarray) else list(check_images)
    batches = [np.asarray(batch, dtype=np.float32) for batch in batches]
    for batch in batches:
        if batch.ndim != rank + 2 or batch.shape[-1] != channels:
            raise invalid_value(
                "check_images",
                f"float arrays (n, {', '.join(_AXES[rank])}, {channels})",
                received=f"an array of shape {batch.shape}",
            )
    return batches


def _mask_mismatches(want, got, threshold, tolerance):
    """Mask pixels that differ, except near-ties within `tolerance`."""
    if want.shape[-1] == 1:
        differ = (want >= threshold) != (got >= threshold)
        tie = np.abs(want - threshold) <= tolerance
    else:
        differ = np.argmax(want, axis=-1) != np.argmax(got, axis=-1)
        top2 = np.sort(want, axis=-1)[..., -2:]
        tie = (top2[..., 1] - top2[..., 0]) <= tolerance
    return int(np.count_nonzero(differ & ~tie))
