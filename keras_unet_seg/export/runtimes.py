"""Running exported models in their own runtimes: ONNX Runtime, LiteRT, TensorFlow, OpenVINO."""

import os

import keras
import numpy as np

from keras_unet_seg._validation import check_choice

__all__ = ["load_exported"]

EXPORT_FORMATS = ("onnx", "litert", "saved_model", "openvino")
# The runtime package of each format, with its install hint.
_RUNTIMES = {
    "onnx": ("onnxruntime", "pip install onnxruntime tf2onnx"),
    "litert": ("ai_edge_litert", "pip install ai-edge-litert"),
    "saved_model": ("tensorflow", "pip install tensorflow"),
    "openvino": ("openvino", "pip install openvino"),
}


def load_exported(filepath, format):
    """Loads an exported model in its own runtime, as a NumPy function.

    Args:
        filepath: str, the file (or SavedModel folder) that `export_model`
            wrote.
        format: one of `"onnx"`, `"litert"`, `"saved_model"`, `"openvino"`.

    Returns:
        A function mapping a float32 array `(batch, height, width, channels)`
        to the float32 array of the model's outputs. It runs ONNX Runtime on
        the CPU, the LiteRT interpreter (resizing its input to each batch's
        shape), the SavedModel's `serve` signature, or OpenVINO on the CPU in
        float32 (its default on bfloat16-capable CPUs is bfloat16).

    Raises:
        ImportError: if the format's runtime is not installed.
    """
    check_choice("format", format, EXPORT_FORMATS)
    require(format, runtime_only=True)
    filepath = os.fspath(filepath)
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(filepath, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda images: session.run(None, {name: _as_input(images)})[0]
    if format == "litert":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=filepath)
        index = interpreter.get_input_details()[0]["index"]

        def run_litert(images):
            images = _as_input(images)
            interpreter.resize_tensor_input(index, images.shape)
            interpreter.allocate_tensors()
            interpreter.set_tensor(index, images)
            interpreter.invoke()
            return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()

        return run_litert
    if format == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(filepath)  # owns the variables `serve` reads
        return lambda images: np.asarray(loaded.serve(tf.constant(_as_input(images))))
    import openvino

    compiled = openvino.Core().compile_model(filepath, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda images: np.asarray(compiled(_as_input(images))[0])


def _as_input(images):
    return np.ascontiguousarray(images, dtype=np.float32)


def require(format, runtime_only=False):
    """Raises an `ImportError` with its install hint if `format` lacks a package."""
    import importlib.util

    package, hint = _RUNTIMES[format]
    needed = [package]
    if format == "onnx" and not runtime_only and keras.backend.backend() != "torch":
        needed.append("tf2onnx")
    for name in needed:
        if importlib.util.find_spec(name) is None:
            raise ImportError(
                f"The {format!r} format needs the `{name}` package: `{hint}` (or "
                "`pip install keras-unet-seg[export]` for every format)."
            )
