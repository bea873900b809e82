"""Deployment: batch-normalization folding, export to ONNX / LiteRT / SavedModel / OpenVINO.

At inference, batch normalization is a fixed per-channel affine map
`gamma * (x - mean) / sqrt(variance + epsilon) + beta`. When it directly
follows a convolution, it can be folded into that convolution's kernel and
bias, which removes a pass over every feature map (and, under a mixed
precision policy, the float32 casts around it). `fold_batch_normalization`
returns such an inference-only copy of a model; `export_model` writes a
(folded) model with Keras' own exporters (`model.export`), checks the written
file in its runtime against the Keras model, and writes beside it a JSON file
with what a consumer needs to reproduce `keras-unet-seg predict`: the input
normalization, the output activation, the threshold, class names and colours.
"""

import json
import os

import keras
import numpy as np

__all__ = ["export_model", "fold_batch_normalization", "load_exported"]

EXPORT_FORMATS = ("onnx", "litert", "saved_model", "openvino")
_KERAS_FORMATS = {
    "onnx": "onnx",
    "litert": "litert",
    "saved_model": "tf_saved_model",
    "openvino": "openvino",
}
_PRECISIONS = ("float32", "float16")
# The runtime package of each format, with its install hint.
_RUNTIMES = {
    "onnx": ("onnxruntime", "pip install onnxruntime tf2onnx"),
    "litert": ("ai_edge_litert", "pip install ai-edge-litert"),
    "saved_model": ("tensorflow", "pip install tensorflow"),
    "openvino": ("openvino", "pip install openvino"),
}
# Where Keras' exporter offers float16 weights: LiteRT (float16 quantization of the
# weights). ONNX, SavedModel and OpenVINO are written in float32.
_FLOAT16_FORMATS = ("litert",)
# Under float16, a pixel whose Keras probability is this close to the threshold
# (or whose two best classes are this close) may fall either side.
_FLOAT16_MASK_TOLERANCE = 5e-3
_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)


# ----------------------------------------------------------------------------- folding


def fold_batch_normalization(model):
    """Returns an inference-only copy of a model with batch normalization folded.

    Every `BatchNormalization` that directly follows a `Conv2D` or
    `Conv2DTranspose` (with no activation) whose output feeds nothing else is
    folded into that convolution: with `s = gamma / sqrt(moving_variance +
    epsilon)`, the kernel becomes `kernel * s` (per output channel) and the
    bias `(bias - moving_mean) * s + beta`. The pairs are found by running the
    model once and recording which layer produced and consumed each tensor, so
    any block that calls `conv -> norm` qualifies, not only `ConvBlock`.

    The copy is rebuilt from the model's config with batch normalization
    turned off (every `normalization` option that asks for `"batch"` becomes
    `None`, which gives the library's blocks biased convolutions and no
    normalization layer), so it is a plain model of the same classes that
    saves and loads as `.keras` with `safe_mode=True`. Group, instance and
    layer normalization depend on each input and are left as they are; so is
    a batch normalization that the config cannot turn off (it keeps its
    weights and stays exact).

    The copy computes what the original computes with `training=False`, to
    float32 rounding (about 1e-6); it must not be trained (its normalization
    no longer adapts).

    Args:
        model: a built Keras model, such as a trained `UNet`, of any dtype
            policy.

    Returns:
        A new built model of the same class and policy, or a copy with the
        same layers if nothing could be folded.

    Raises:
        ValueError: if the model is not built, or if its config turned off a
            batch normalization that does not directly follow a convolution
            (which would change its outputs).

    Example:

    >>> from keras_unet_seg import UNet
    >>> model = UNet(base_filters=4, depth=2)
    >>> model.build((None, None, None, 3))
    >>> folded = fold_batch_normalization(model)
    >>> print(folded.normalization)  # biased convolutions, no normalization layers
    None
    >>> x = np.random.default_rng(0).random((1, 36, 20, 3), dtype="float32")
    >>> bool(np.allclose(model(x), folded(x), atol=1e-5))
    True
    """
    if not model.built:
        raise ValueError(
            "Invalid value for argument `model`. Expected a built model (call it on a batch "
            f"or `build` it first). Received: model={model.name!r} (not built)"
        )
    build_config = model.get_build_config()
    pairs = _conv_norm_pairs(model, _sample_input(model))

    config = keras.saving.serialize_keras_object(model)
    folded = keras.saving.deserialize_keras_object(_without_batch_normalization(config))
    if not folded.built:
        folded.build_from_config(build_config)

    old = {_relative_path(v.path, model): v for v in model.weights}
    new = {_relative_path(v.path, folded): v for v in folded.weights}
    # The pairs whose normalization the rebuilt model no longer has, by its path.
    folded_pairs = {
        path: pair
        for path, pair in ((_relative_path(norm.path, model), (conv, norm)) for conv, norm in pairs)
        if not any(p.startswith(path + "/") for p in new)
    }
    for path in sorted(set(old) - set(new)):
        if path.rsplit("/", 1)[0] not in folded_pairs:
            raise ValueError(
                "Invalid value for argument `model`. Expected every batch normalization "
                "that the model's config turns off to directly follow a Conv2D or "
                f"Conv2DTranspose whose output feeds only it. Received: model={model.name!r}, "
                f"whose weight '{path}' has no place in the folded model"
            )
    conv_paths = {
        _relative_path(conv.path, model): (conv, norm) for conv, norm in folded_pairs.values()
    }
    unexpected = sorted(set(new) - set(old) - {path + "/bias" for path in conv_paths})
    missing = sorted(path for path in conv_paths if path + "/bias" not in new)
    if unexpected or missing:
        raise ValueError(
            "Invalid value for argument `model`. Expected the folded model to differ from "
            "it only by biases of the convolutions before folded batch normalizations. "
            f"Received: model={model.name!r}, whose folded copy has the new weights "
            f"{unexpected} and no bias in the convolutions {missing}"
        )
    for path, variable in new.items():
        if path in old:
            variable.assign(old[path])
    for conv_path, (conv, norm) in conv_paths.items():
        kernel, bias = _folded_kernel_and_bias(conv, norm)
        new[conv_path + "/kernel"].assign(kernel)
        new[conv_path + "/bias"].assign(bias)
    return folded


def _input_shape(model):
    """The `(batch, height, width, channels)` a built model was built for."""
    shape = (model.get_build_config() or {}).get("input_shape")
    if shape is None:
        try:
            shape = model.input_shape
        except (AttributeError, ValueError):
            shape = None
    if not isinstance(shape, (tuple, list)) or len(shape) != 4 or shape[-1] is None:
        raise ValueError(
            "Invalid value for argument `model`. Expected a model built on images "
            f"(batch, height, width, channels). Received: a model built on {shape!r}"
        )
    return tuple(shape)


def _sample_input(model):
    """A batch of one image of the build shape (64 pixels where it is unknown)."""
    _, height, width, channels = _input_shape(model)
    shape = (1, height or 64, width or 64, channels)
    return np.random.default_rng(0).random(shape, dtype="float32")


def _leaf_layers(model):
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if not any(True for _ in layer._flatten_layers(include_self=False))
    ]


def _conv_norm_pairs(model, sample):
    """`[(conv, norm)]`: batch normalizations fed by a convolution's output alone.

    Runs `model` once in inference mode with every leaf layer's `call` wrapped,
    recording the tensors each one consumes and produces.
    """
    calls = []  # (layer, input tensors, output tensors); keeps tensors alive for `id`
    leaves = _leaf_layers(model)

    def recording(layer, call):
        def wrapped(*args, **kwargs):
            outputs = call(*args, **kwargs)
            calls.append((layer, keras.tree.flatten(args), keras.tree.flatten(outputs)))
            return outputs

        return wrapped

    for layer in leaves:
        object.__setattr__(layer, "call", recording(layer, layer.call))
    try:
        model(sample, training=False)
    finally:
        for layer in leaves:
            object.__delattr__(layer, "call")

    producer = {}
    consumers = {}
    for layer, inputs, outputs in calls:
        for tensor in outputs:
            producer[id(tensor)] = layer
        for tensor in inputs:
            consumers.setdefault(id(tensor), set()).add(id(layer))

    candidates = {}  # id(norm) -> (conv, norm), None once a call disqualifies it
    for layer, inputs, _ in calls:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        conv = producer.get(id(inputs[0])) if len(inputs) == 1 else None
        pair = (conv, layer) if _foldable(conv, layer, consumers[id(inputs[0])]) else None
        if candidates.get(id(layer), pair) != pair:
            pair = None
        candidates[id(layer)] = pair
    pairs = [pair for pair in candidates.values() if pair is not None]
    # A convolution followed by two normalizations (called twice) cannot take both.
    convs = [id(conv) for conv, _ in pairs]
    return [(conv, norm) for conv, norm in pairs if convs.count(id(conv)) == 1]


def _foldable(conv, norm, consumers):
    return (
        isinstance(conv, _CONVOLUTIONS)
        and consumers == {id(norm)}
        and conv.data_format == "channels_last"
        and conv.activation is keras.activations.linear
        and norm.axis in (-1, 3)
    )


def _folded_kernel_and_bias(conv, norm):
    """The kernel and bias of `conv` followed by `norm` in inference mode, in float64."""
    kernel = np.asarray(conv.kernel, dtype=np.float64)
    channels = (
        kernel.shape[-2] if isinstance(conv, keras.layers.Conv2DTranspose) else kernel.shape[-1]
    )
    bias = np.asarray(conv.bias, dtype=np.float64) if conv.use_bias else np.zeros(channels)
    gamma = np.asarray(norm.gamma, dtype=np.float64) if norm.scale else np.ones(channels)
    beta = np.asarray(norm.beta, dtype=np.float64) if norm.center else np.zeros(channels)
    mean = np.asarray(norm.moving_mean, dtype=np.float64)
    variance = np.asarray(norm.moving_variance, dtype=np.float64)
    scale = gamma / np.sqrt(variance + norm.epsilon)
    if isinstance(conv, keras.layers.Conv2DTranspose):  # kernel (h, w, out, in)
        kernel = kernel * scale[:, None]
    else:  # kernel (h, w, in, out)
        kernel = kernel * scale
    bias = (bias - mean) * scale + beta
    return kernel.astype(np.float32), bias.astype(np.float32)


def _is_batch_spec(value):
    return value == "batch" or (isinstance(value, dict) and value.get("type") == "batch")


def _without_batch_normalization(config):
    """A copy of a serialized config with every `normalization: "batch"` set to `None`."""
    if isinstance(config, dict):
        return {
            key: None
            if key == "normalization" and _is_batch_spec(value)
            else _without_batch_normalization(value)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [_without_batch_normalization(value) for value in config]
    return config


def _relative_path(path, model):
    """A variable's or layer's path without the model's own name in front."""
    prefix = model.name + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


# ----------------------------------------------------------------------------- export


def export_model(
    model,
    filepath,
    format="onnx",
    *,
    fold=True,
    precision="float32",
    image_size=None,
    intensity="auto",
    color_mode=None,
    threshold=0.5,
    class_names=None,
    class_colors=None,
    check_images=None,
    verbose=True,
):
    """Exports a segmentation model for inference outside Keras, and checks the file.

    The model is rebuilt in float32, its batch normalization folded
    (`fold_batch_normalization`) unless `fold=False`, and written with Keras'
    own exporter (`model.export`) for `format`:

    - `"onnx"` (a `.onnx` file, run with ONNX Runtime; needs `tf2onnx` on the
      TensorFlow backend),
    - `"litert"` (a `.tflite` file, run with the LiteRT interpreter of
      `ai-edge-litert`),
    - `"saved_model"` (a TensorFlow SavedModel folder, signature `serve`),
    - `"openvino"` (a `.xml` file and its `.bin`, run with OpenVINO).

    Every format keeps a dynamic batch, height and width unless `image_size`
    fixes them, and a `UNet` pads inside the exported graph as it does in
    Keras, so a `(100, 75)` image gives a `(100, 75)` mask.

    The written file is then loaded in its runtime (`load_exported`) and run
    on `check_images`; the largest absolute difference from the Keras model
    (the original, unfolded one, in float32) is reported, and a `ValueError`
    is raised if a mask differs (the `threshold` for one class, the argmax
    otherwise). Under `precision="float16"`, pixels whose Keras probability
    is within 5e-3 of the threshold (or of the runner-up class) may differ.

    Beside the export, `<filepath>.json` records what a consumer needs to
    reproduce `keras-unet-seg predict`: the input layout, channels and
    normalization (`intensity`, with its formula in words), the output
    activation, the threshold, the class names and colours, and the parity
    figures.

    Args:
        model: a built Keras model mapping `(batch, height, width, channels)`
            images to `(batch, height, width, num_classes)` probabilities,
            such as a trained `UNet`.
        filepath: str, the file (or SavedModel folder) to write. Conventional
            suffixes: `.onnx`, `.tflite`, a folder, `.xml`.
        format: one of `"onnx"`, `"litert"`, `"saved_model"`, `"openvino"`.
            Defaults to `"onnx"`.
        fold: bool, whether to fold batch normalization into the
            convolutions first. Defaults to `True`.
        precision: `"float32"`, or `"float16"` for float16 weights (LiteRT
            only). Defaults to `"float32"`.
        image_size: `None` for any height and width, or `(height, width)` to
            fix them in the exported graph. Defaults to `None`.
        intensity: the intensity normalization the model was trained with
            (a mode of `keras_unet_seg.data.normalize_image`, `None`, or a
            dict from `keras_unet_seg.data.intensity_spec`), written to the
            JSON file. Defaults to `"auto"`.
        color_mode: `"rgb"`, `"grayscale"`, `"rgba"` or `"native"`, how images
            are read, written to the JSON file. Defaults to `None`, meaning
            from the model's input channels (1 gray, 3 RGB, 4 RGBA).
        threshold: float, the probability at or above which a pixel is
            foreground (one class). Defaults to `0.5`.
        class_names: list of `num_classes` names (with one class: the names of
            background and foreground). Defaults to `None`, meaning
            `["background", "foreground"]` for one class and `"class_<id>"`
            otherwise.
        class_colors: list of RGB triples, one per class name. Defaults to
            `None`, meaning the colours of `keras_unet_seg.viz.overlay_mask`.
        check_images: float32 array `(n, height, width, channels)` of
            normalized images for the parity check, or a list of such arrays
            of different sizes. Defaults to `None`: random images of the
            fixed size, or of 64x64 and 100x75 when the size is dynamic.
        verbose: bool, whether to print the parity figures. Defaults to
            `True`.

    Returns:
        The dict written to `<filepath>.json`.

    Raises:
        ValueError: for an invalid argument, or if the exported model's masks
            differ from the Keras model's.
        ImportError: if the format's exporter or runtime is not installed
            (with the `pip install` line that installs it).

    Example:

    ```python
    model = keras.saving.load_model("runs/a/best.keras")
    export_model(model, "model.onnx", intensity={"mode": "percentile"})
    ```
    """
    from keras_unet_seg.data import intensity_spec

    if format not in EXPORT_FORMATS:
        raise ValueError(
            f"Invalid value for argument `format`. Expected one of {EXPORT_FORMATS}. "
            f"Received: format={format!r}"
        )
    if precision not in _PRECISIONS:
        raise ValueError(
            f"Invalid value for argument `precision`. Expected one of {_PRECISIONS}. "
            f"Received: precision={precision!r}"
        )
    if precision == "float16" and format not in _FLOAT16_FORMATS:
        raise ValueError(
            "Invalid value for argument `precision`. Expected 'float32' for format "
            f"{format!r} (float16 weights are offered for {_FLOAT16_FORMATS}). "
            f"Received: precision={precision!r}"
        )
    image_size = _check_image_size(image_size)
    spec = intensity_spec(intensity)
    _require(format)
    if not model.built:
        raise ValueError(
            "Invalid value for argument `model`. Expected a built model. "
            f"Received: model={model.name!r} (not built)"
        )

    reference = _float32(model)
    exported = fold_batch_normalization(reference) if fold else reference
    channels = _input_shape(reference)[-1]
    height, width = image_size or (None, None)
    images = _check_batches(check_images, image_size, channels)
    signature = [keras.InputSpec(shape=(None, height, width, channels), dtype="float32")]
    filepath = os.fspath(filepath)
    exported.export(
        filepath,
        format=_KERAS_FORMATS[format],
        input_signature=signature,
        verbose=False,
        **_precision_kwargs(format, precision),
    )

    expected = [np.asarray(reference(batch, training=False), dtype=np.float32) for batch in images]
    runner = load_exported(filepath, format)
    received = [runner(batch) for batch in images]
    num_classes = expected[0].shape[-1]
    tolerance = _FLOAT16_MASK_TOLERANCE if precision == "float16" else 0.0
    differences, mismatches = [], 0
    for want, got in zip(expected, received, strict=True):
        if got.shape != want.shape:
            raise ValueError(
                f"The exported model's output has shape {got.shape} where the Keras model's "
                f"has {want.shape}: the {format} export does not keep the input size."
            )
        differences.append(float(np.max(np.abs(want - got))))
        mismatches += _mask_mismatches(want, got, threshold, tolerance)
    parity = {
        "image_sizes": [list(batch.shape[1:3]) for batch in images],
        "max_abs_difference": max(differences),
        "mask_pixels_differing": mismatches,
    }
    metadata = _metadata(
        reference,
        format=format,
        filepath=filepath,
        fold=fold,
        precision=precision,
        image_size=image_size,
        channels=channels,
        num_classes=num_classes,
        intensity=spec,
        color_mode=color_mode,
        threshold=threshold,
        class_names=class_names,
        class_colors=class_colors,
        parity=parity,
    )
    with open(filepath + ".json", "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")
    if verbose:
        sizes = ", ".join("x".join(str(s) for s in size) for size in parity["image_sizes"])
        print(
            f"Exported {format} to '{filepath}' (+ '{filepath}.json'); on {sizes} images the "
            f"largest difference from Keras is {parity['max_abs_difference']:.2e}, "
            f"{mismatches} mask pixels differ."
        )
    if mismatches:
        raise ValueError(
            f"The {format} export at '{filepath}' gives {mismatches} mask pixels that differ "
            f"from the Keras model's (largest probability difference "
            f"{parity['max_abs_difference']:.2e})."
        )
    return metadata


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
    if format not in EXPORT_FORMATS:
        raise ValueError(
            f"Invalid value for argument `format`. Expected one of {EXPORT_FORMATS}. "
            f"Received: format={format!r}"
        )
    _require(format, runtime_only=True)
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


def _require(format, runtime_only=False):
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


def _check_image_size(image_size):
    if image_size is None:
        return None
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if (
        not isinstance(image_size, (tuple, list))
        or len(image_size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in image_size)
    ):
        raise ValueError(
            "Invalid value for argument `image_size`. Expected None, a positive int or a "
            f"tuple (height, width) of positive ints. Received: image_size={image_size!r}"
        )
    return tuple(image_size)


def _float32(model):
    """The model itself in float32, or a float32 copy (same weights) of a mixed one."""
    if model.dtype_policy.name == "float32":
        return model
    from keras_unet_seg import performance

    return performance.with_precision(model, "float32")


def _precision_kwargs(format, precision):
    if precision != "float16":
        return {}
    import tensorflow as tf

    return {  # LiteRT's converter options
        "optimizations": [tf.lite.Optimize.DEFAULT],
        "target_spec": {"supported_types": [tf.float16]},
    }


def _check_batches(check_images, image_size, channels):
    if check_images is None:
        sizes = [image_size] if image_size else [(64, 64), (100, 75)]
        rng = np.random.default_rng(0)
        return [rng.random((2, h, w, channels), dtype=np.float32) for h, w in sizes]
    batches = [check_images] if isinstance(check_images, np.ndarray) else list(check_images)
    batches = [np.asarray(batch, dtype=np.float32) for batch in batches]
    height, width = image_size or (None, None)
    for batch in batches:
        if (
            batch.ndim != 4
            or batch.shape[-1] != channels
            or (image_size and batch.shape[1:3] != image_size)
        ):
            raise ValueError(
                "Invalid value for argument `check_images`. Expected float arrays "
                f"(n, {height or 'height'}, {width or 'width'}, {channels}). Received: an "
                f"array of shape {batch.shape}"
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


_INTENSITY_FORMULAS = {
    "auto": "uint8 (and bool) images: as 'scale'; every other dtype: as 'percentile'",
    "scale": "divide by the dtype's full scale: uint8 by 255, 16- and 32-bit integers by "
    "65535, bool by 1; float images as stored",
    "percentile": "lo, hi = the `low` and `high` percentiles of the image (numpy.percentile, "
    "linear interpolation) over all pixels and channels (each channel apart if "
    "`per_channel`); x = (x - lo) / (hi - lo), not clipped; if hi - lo <= epsilon, use the "
    "minimum and maximum instead",
    "minmax": "x = (x - min) / (max - min) over the image (each channel apart if `per_channel`)",
    "standardize": "x = (x - mean) / (std + epsilon) over the image (each channel apart if "
    "`per_channel`)",
    None: "the stored values, as float32",
}


def _metadata(
    model,
    *,
    format,
    filepath,
    fold,
    precision,
    image_size,
    channels,
    num_classes,
    intensity,
    color_mode,
    threshold,
    class_names,
    class_colors,
    parity,
):
    from keras_unet_seg import __version__, viz

    color_mode = color_mode or {1: "grayscale", 3: "rgb", 4: "rgba"}.get(channels, "native")
    labels = 2 if num_classes == 1 else num_classes
    if class_names is None:
        class_names = (
            ["background", "foreground"]
            if num_classes == 1
            else [f"class_{i}" for i in range(num_classes)]
        )
    if class_colors is None:
        class_colors = [viz.class_color(k) for k in range(labels)]
    if len(class_names) != labels or len(class_colors) != labels:
        raise ValueError(
            f"Invalid value for argument `class_names` or `class_colors`. Expected {labels} "
            f"of each (one per mask value). Received: class_names={class_names!r}, "
            f"class_colors={class_colors!r}"
        )
    activation = getattr(model, "_resolved_output_activation", lambda: None)()
    height, width = image_size or (None, None)
    return {
        "format": format,
        "file": os.path.basename(filepath.rstrip("/")),
        "exported_by": f"keras-unet-seg {__version__}, Keras {keras.__version__}",
        "model": type(model).__name__,
        "batch_normalization_folded": fold,
        "precision": precision,
        "input": {
            "layout": "NHWC: (batch, height, width, channels), float32",
            "shape": [None, height, width, channels],
            "size": "any height and width" if image_size is None else "fixed",
            "color_mode": color_mode,
            "channel_order": {"rgb": "R, G, B", "rgba": "R, G, B, A", "grayscale": "luma"}.get(
                color_mode, "the file's own channels"
            ),
        },
        "intensity": {
            **intensity,
            "formula": _INTENSITY_FORMULAS[intensity["mode"]],
            "applied_to": "each whole image, before tiling or resizing, in float64",
        },
        "output": {
            "shape": [None, height, width, num_classes],
            "activation": activation,
            "values": "probabilities" if activation in ("sigmoid", "softmax") else "scores",
        },
        "mask": (
            f"one class: foreground where output >= threshold ({threshold})"
            if num_classes == 1
            else "several classes: the argmax over the last axis (class ids)"
        ),
        "threshold": threshold,
        "tiling": (
            "`keras-unet-seg predict` runs tiles of 256x256 (overlap 0.25, Gaussian "
            "blending with sigma 0.125 x tile) to bound memory; the model takes any size, "
            "and a whole image in one call gives nearly the same masks (they can differ "
            "near tile seams and borders)"
        ),
        "classes": [
            {"id": i, "name": name, "color": [int(c) for c in color]}
            for i, (name, color) in enumerate(zip(class_names, class_colors, strict=True))
        ],
        "parity": parity,
    }
