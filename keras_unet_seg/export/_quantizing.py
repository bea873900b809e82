"""Static int8 quantization of an export, calibrated on images read as `predict` reads them.

`export_model(..., quantize={"calibration": DIR})` runs the steps here (the dict's
keys are `Quantization`'s arguments: `method` (`"int8"`), `calibration`,
`validation`, `num_calibration` (32), `max_dice_drop` (0.005), `keep_float`):

- Calibration: up to `num_calibration` images of `DIR` (its `train` subset, the
  training part of a flat `images/` and `masks/` folder, or every image file),
  spread evenly over the sorted list, each read by `read_image` with the spec's
  colour mode and intensity, resized by its scale and cut into the tiles that
  `predict_tiled` gives the model (one pass, no flips).
- ONNX: `onnxruntime.quantization.quantize_static` on the written float32 file:
  QDQ, int8 weights per output channel, uint8 activations, min-max ranges. LiteRT:
  TensorFlow Lite's full-integer quantization (int8 weights and activations,
  `TFLITE_BUILTINS_INT8`), the input and output staying float32 (its sigmoid or
  softmax output in int8 steps of 1/256). `keep_float` leaves the first
  convolution and/or the head (the last convolution and its activation) of an
  ONNX export in float32.
- Quality: the float32 model and the quantized file are each scored as `evaluate`
  scores a model (`evaluate_directory`, by the spec) on the validation pairs (the
  given folder, or the calibration folder's `val` subset or held-out part, never
  calibrated on); the pooled Dice of each against the truth and the fraction of
  mask pixels that differ are recorded, and a Dice drop beyond `max_dice_drop`
  fails the export (nothing is written).
"""

import os

import numpy as np

from keras_unet_seg._validation import check_choice, check_positive_int, invalid_value

QUANTIZATIONS = ("int8",)
# What `keep_float` may leave in float32.
KEEP_FLOAT = ("first_convolution", "head")
# The formats that quantize, and how.
QUANTIZED_FORMATS = ("onnx", "litert")
# The fraction of a flat calibration folder's pairs held out for the quality check.
_HELD_OUT = 0.25
_CONVOLUTIONS = ("Conv", "ConvTranspose")


class Quantization:
    """The checked quantization options, their calibration images and validation pairs."""

    def __init__(
        self,
        format,
        precision,
        method="int8",
        calibration=None,
        validation=None,
        num_calibration=32,
        max_dice_drop=0.005,
        keep_float=(),
    ):
        self.method = check_choice("quantize", method, QUANTIZATIONS)
        if format not in QUANTIZED_FORMATS:
            raise invalid_value(
                "format", f"one of {QUANTIZED_FORMATS} with quantize={method!r}", format
            )
        if precision != "float32":
            raise invalid_value("precision", "'float32' with `quantize`", precision)
        self.num_calibration = check_positive_int("num_calibration", num_calibration)
        if not -1 <= max_dice_drop <= 1:
            raise invalid_value("max_dice_drop", "a float in [-1, 1]", max_dice_drop)
        self.max_dice_drop = float(max_dice_drop)
        self.keep_float = tuple(check_choice("keep_float", k, KEEP_FLOAT) for k in keep_float)
        if self.keep_float and format != "onnx":
            raise invalid_value(
                "keep_float",
                f"() for format {format!r}: TensorFlow Lite's full-integer quantization "
                "quantizes every layer (keep_float is for 'onnx')",
                keep_float,
            )
        if calibration is None:
            raise invalid_value("calibration", "a folder of images (and masks)", calibration)
        self.images, held_out = _calibration_split(os.fspath(calibration))
        self.images = _spread(self.images, self.num_calibration)
        if validation is not None:
            held_out = {"directory": os.fspath(validation), "subset": "auto"}
        if held_out is None:
            raise invalid_value(
                "validation",
                f"a folder of images and masks to check the quantized model on: "
                f"'{calibration}' has no `val` subset and no flat `images/` and `masks/` "
                "folders to hold out pairs from",
                validation,
            )
        self.validation = held_out

    def record(self, quality, format):
        """The `"quantization"` entry of the JSON file."""
        how = {
            "onnx": "onnxruntime.quantization.quantize_static: QDQ, int8 weights per output "
            "channel, uint8 activations, min-max calibration",
            "litert": "TensorFlow Lite full-integer quantization: int8 weights and "
            "activations (TFLITE_BUILTINS_INT8), float32 input and output",
        }[format]
        return {
            "method": self.method,
            "how": how,
            "kept_in_float32": list(self.keep_float),
            "calibration_images": [os.path.basename(path) for path in self.images],
            "calibration_read": "as predict reads images: read_image with the inference "
            "spec's color mode and intensity, resized by its scale, cut into its tiles",
            "quality": quality,
        }


def _calibration_split(folder):
    """`(image paths, evaluate_directory's arguments of the held-out pairs, or None)`."""
    from keras_unet_seg import data

    if not os.path.isdir(folder):
        raise invalid_value("calibration", "an existing folder", folder)
    for images in (
        os.path.join(folder, "train", "images"),
        os.path.join(folder, "images", "train"),
    ):
        if os.path.isdir(images):
            return data.list_image_files(images), {"directory": folder, "subset": "val"}
    if os.path.isdir(os.path.join(folder, "images")) and os.path.isdir(
        os.path.join(folder, "masks")
    ):
        split = {"validation_split": _HELD_OUT, "seed": 0}
        pairs = data.SegmentationDataset.from_directory(
            folder,
            subset="training",
            **split,
            image_size=None,
            batch_size=None,
            shuffle=False,
            verify=False,
            verbose=False,
        )
        return list(pairs.image_paths), {"directory": folder, "subset": "validation", **split}
    images = data.list_image_files(folder)
    if not images:
        raise invalid_value("calibration", "a folder holding image files", folder)
    return images, None


def _spread(paths, count):
    """At most `count` of `paths` (sorted), spread evenly over them."""
    paths = sorted(paths)
    if len(paths) <= count:
        return paths
    return [paths[i] for i in np.linspace(0, len(paths) - 1, count).round().astype(int)]


class _Recorder:
    """A stand-in model of `input_shape` that keeps the tiles `predict_tiled` gives it."""

    def __init__(self, input_shape):
        self.input_shape = input_shape
        self.tiles = []

    def __call__(self, batch):
        self.tiles.extend(np.array(tile) for tile in batch)
        return np.zeros((*batch.shape[:3], 1), dtype=np.float32)


def calibration_tiles(paths, spec, input_shape):
    """Yields each tile `(1, h, w, channels)` that `predict` gives the model for `paths`."""
    from keras_unet_seg import data
    from keras_unet_seg.inference import predict_tiled

    tiling = {**spec.tiled_arguments(), "tta": False}
    for path in paths:
        recorder = _Recorder(input_shape)
        image = data.read_image(path, spec.color_mode, spec.intensity)
        predict_tiled(recorder, image, **tiling, batch_size=1, verbose=0)
        for tile in recorder.tiles:
            yield tile[None]


def quantize_onnx(source, target, tiles, keep_float=()):
    """Writes `target`: the ONNX file `source` statically quantized on `tiles` (a callable
    returning an iterator of input batches)."""
    import onnx
    from onnxruntime import quantization as q

    graph = onnx.load(source).graph
    name = graph.input[0].name

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.batches = iter(tiles())

        def get_next(self):
            return {name: batch} if (batch := next(self.batches, None)) is not None else None

    q.quantize_static(
        source,
        target,
        Reader(),
        quant_format=q.QuantFormat.QDQ,
        per_channel=True,
        activation_type=q.QuantType.QUInt8,
        weight_type=q.QuantType.QInt8,
        nodes_to_exclude=_float_nodes(graph, keep_float),
        # Min-max calibration keeps each tile's minimum and maximum of every tensor (two
        # numbers), not the tensors.
        calibrate_method=q.CalibrationMethod.MinMax,
    )


def _float_nodes(graph, keep_float):
    """The names of the ONNX nodes that `keep_float` leaves in float32.

    The nodes are in topological order: the first convolution reads the input, and the
    head is the last convolution with the activations after it.
    """
    nodes = list(graph.node)
    convolutions = [i for i, node in enumerate(nodes) if node.op_type in _CONVOLUTIONS]
    names = []
    if "first_convolution" in keep_float:
        names.append(nodes[convolutions[0]].name)
    if "head" in keep_float:
        kinds = (*_CONVOLUTIONS, "Sigmoid", "Softmax")
        names += [node.name for node in nodes[convolutions[-1] :] if node.op_type in kinds]
    return names


def litert_converter_kwargs(tiles):
    """The LiteRT converter's options of full-integer quantization on `tiles` (a callable
    returning an iterator of input batches)."""
    import tensorflow as tf

    return {
        "optimizations": [tf.lite.Optimize.DEFAULT],
        "representative_dataset": lambda: ([batch] for batch in tiles()),
        "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
    }


def quality(reference, quantized, validation, spec, batch_size=4):
    """The Dice of `reference` (float32) and `quantized` on the `validation` pairs.

    Both run as `evaluate` runs a model by `spec` (`evaluate_directory`). Returns the
    pooled Dice of each against the truth, the drop, and the fraction of the mask
    pixels that differ between them.
    """
    from keras_unet_seg.evaluation import evaluate_directory

    reports = [
        evaluate_directory(
            model,
            validation["directory"],
            subset=validation["subset"],
            validation_split=validation.get("validation_split"),
            seed=validation.get("seed", 0),
            spec=spec,
            batch_size=batch_size,
            return_predictions=True,
            verbose=0,
        )
        for model in (reference, quantized)
    ]
    pairs = zip(reports[0]["predictions"], reports[1]["predictions"], strict=True)
    differing, total = 0, 0
    for want, got in pairs:
        differing += int(np.count_nonzero(want["y_pred"] != got["y_pred"]))
        total += want["y_pred"].size
    dice = [report["overall"]["dice"] for report in reports]
    return {
        "validation_images": [os.path.basename(row["image"]) for row in reports[0]["per_image"]],
        "dice_float32": dice[0],
        "dice_int8": dice[1],
        "dice_drop": dice[0] - dice[1],
        "mask_pixels_differing_fraction": differing / max(total, 1),
    }


def check_quality(quality, max_dice_drop, filepath):
    """Raises if the quantized model lost more Dice than `max_dice_drop`."""
    if quality["dice_drop"] > max_dice_drop:
        raise ValueError(
            f"The int8 model at '{filepath}' scores Dice {quality['dice_int8']:.4f} on "
            f"{len(quality['validation_images'])} validation images against "
            f"{quality['dice_float32']:.4f} in float32: a drop of {quality['dice_drop']:.4f}, "
            f"beyond max_dice_drop={max_dice_drop:g} (--max-dice-drop); it was not written. "
            "Keep the first convolution or the head in float32 (keep_float, --keep-float), "
            "or calibrate on more images."
        )
