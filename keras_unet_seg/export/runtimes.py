"""Running exported models in their own runtimes: ONNX Runtime, LiteRT, TensorFlow, OpenVINO."""

import os

import keras
import numpy as np

from keras_unet_seg._validation import check_choice

__all__ = ["ExportedModel", "load_exported"]

EXPORT_FORMATS = ("onnx", "litert", "saved_model", "openvino")
# The runtime package of each format, and the extra that installs it (TensorFlow is a
# dependency).
_RUNTIMES = {
    "onnx": ("onnxruntime", "onnx"),
    "litert": ("ai_edge_litert", "litert"),
    "saved_model": ("tensorflow", "export"),
    "openvino": ("openvino", "openvino"),
}


def load_exported(filepath, format):
    """Loads an exported model in its own runtime, callable as a model on NumPy arrays.

    Args:
        filepath: str, the file (or SavedModel folder) that `export_model`
            wrote.
        format: one of `"onnx"`, `"litert"`, `"saved_model"`, `"openvino"`.

    Returns:
        An `ExportedModel`: called on a float32 array `(batch, height, width,
        channels)` (`(batch, depth, height, width, channels)` for an export of a
        model built on volumes), it returns the float32 array of the model's
        outputs. It runs ONNX Runtime on the CPU, the LiteRT interpreter
        (resizing its input to each batch's shape), the SavedModel's `serve`
        signature, or OpenVINO on the CPU in float32 (its default on
        bfloat16-capable CPUs is bfloat16).

    Raises:
        ImportError: if the format's runtime is not installed.
    """
    check_choice("format", format, EXPORT_FORMATS)
    require(format, runtime_only=True)
    filepath = os.fspath(filepath)
    run, shape = _RUNNERS[format](filepath)
    return ExportedModel(run, shape, format)


class ExportedModel:
    """An exported model in its runtime, called as `predict_tiled` calls a Keras model.

    `load_exported` makes one. It maps a float32 batch `(batch, height, width,
    channels)` to float32 outputs `(batch, height, width, num_classes)` (volumes
    `(batch, depth, height, width, channels)` for an export of a model built on
    them), and has the facts that the library reads of a Keras model:
    `input_shape` (`None` for a dynamic size, as the file declares it) and
    `num_classes` (its output channels).

    Args:
        run: the runtime's function of a float32 NumPy batch.
        input_shape: `(batch, height, width, channels)` (`(batch, depth, height,
            width, channels)`) as the file declares it, `None` for a dynamic axis.
        format: the export's format, such as `"onnx"`.

    Example:

    ```python
    model = load_exported("model.onnx", "onnx")
    probabilities = predict_tiled(model, image, **spec.tiled_arguments())
    ```
    """

    def __init__(self, run, input_shape, format):
        self._run = run
        self.input_shape = tuple(input_shape)
        self.format = format
        self._num_classes = None

    def __call__(self, images):
        return np.asarray(self._run(_as_input(images)), dtype=np.float32)

    @property
    def num_classes(self):
        """The output channels, from one call on a small image or volume (cached)."""
        if self._num_classes is None:
            _, *spatial, channels = self.input_shape
            sample = np.zeros((1, *(side or 32 for side in spatial), channels))
            self._num_classes = int(self(sample).shape[-1])
        return self._num_classes


def _static(dimensions):
    """A shape with every unknown dimension (a name, -1, 0 or `None`) as `None`."""
    return tuple(d if isinstance(d, int) and d > 0 else None for d in dimensions)


def _onnx(filepath):
    import onnxruntime

    session = onnxruntime.InferenceSession(filepath, providers=["CPUExecutionProvider"])
    entry = session.get_inputs()[0]
    return (lambda images: session.run(None, {entry.name: images})[0]), _static(entry.shape)


def _litert(filepath):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=filepath)
    entry = interpreter.get_input_details()[0]

    def run(images):
        interpreter.resize_tensor_input(entry["index"], images.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(entry["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()

    return run, _static(entry["shape_signature"].tolist())


def _saved_model(filepath):
    import tensorflow as tf

    loaded = tf.saved_model.load(filepath)  # owns the variables `serve` reads
    [spec] = loaded.serve.concrete_functions[0].structured_input_signature[0]
    return (lambda images: loaded.serve(tf.constant(images))), _static(spec.shape.as_list())


def _openvino(filepath):
    import openvino

    compiled = openvino.Core().compile_model(filepath, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    shape = [d.get_length() if d.is_static else None for d in compiled.inputs[0].partial_shape]
    return (lambda images: compiled(images)[0]), _static(shape)


_RUNNERS = {"onnx": _onnx, "litert": _litert, "saved_model": _saved_model, "openvino": _openvino}


def _as_input(images):
    return np.ascontiguousarray(images, dtype=np.float32)


def require(format, runtime_only=False, quantize=False):
    """Raises an `ImportError` with its install hint if `format` lacks a package (to
    export, to run only, or to quantize)."""
    import importlib.util

    package, extra = _RUNTIMES[format]
    needed = [package]
    if format == "onnx" and not runtime_only and keras.backend.backend() != "torch":
        needed.append("tf2onnx")
    if format == "onnx" and quantize:
        needed.append("onnx")
    for name in needed:
        if importlib.util.find_spec(name) is None:
            raise ImportError(
                f"The {format!r} format needs the `{name}` package: `pip install "
                f'"keras-unet-seg[{extra}]"` (in a clone: `pip install -e ".[{extra}]"`).'
            )
