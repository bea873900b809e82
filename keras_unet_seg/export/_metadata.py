"""The JSON file written beside an export: what a consumer needs to reproduce `predict`."""

import os

import keras

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


def metadata(
    model,
    filepath,
    channels,
    num_classes,
    parity,
    *,
    format,
    fold,
    precision,
    image_size,
    intensity,
    color_mode,
    threshold,
    class_names,
    class_colors,
):
    """The dict of `<filepath>.json`, for `model` exported as `format`."""
    from keras_unet_seg import __version__

    classes = _classes(num_classes, class_names, class_colors)
    activation = getattr(model, "_resolved_output_activation", lambda: None)()
    height, width = image_size or (None, None)
    return {
        "format": format,
        "file": os.path.basename(filepath.rstrip("/")),
        "exported_by": f"keras-unet-seg {__version__}, Keras {keras.__version__}",
        "model": type(model).__name__,
        "batch_normalization_folded": fold,
        "precision": precision,
        "input": _input(image_size, channels, color_mode),
        "intensity": {
            **intensity,
            "formula": _INTENSITY_FORMULAS[intensity["mode"]],
            "applied_to": (
                "each whole image, before tiling or resizing, in float32 (float64 for "
                "float64 data and integers beyond 2**24)"
            ),
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
        "classes": classes,
        "parity": parity,
    }


def _input(image_size, channels, color_mode):
    """The `"input"` entry: layout, shape, size, colour mode and channel order."""
    color_mode = color_mode or {1: "grayscale", 3: "rgb", 4: "rgba"}.get(channels, "native")
    height, width = image_size or (None, None)
    return {
        "layout": "NHWC: (batch, height, width, channels), float32",
        "shape": [None, height, width, channels],
        "size": "any height and width" if image_size is None else "fixed",
        "color_mode": color_mode,
        "channel_order": {"rgb": "R, G, B", "rgba": "R, G, B, A", "grayscale": "luma"}.get(
            color_mode, "the file's own channels"
        ),
    }


def _classes(num_classes, class_names, class_colors):
    """The `"classes"` entry: each mask value's id, name and colour."""
    from keras_unet_seg.viz import class_color

    labels = 2 if num_classes == 1 else num_classes
    if class_names is None:
        class_names = (
            ["background", "foreground"]
            if num_classes == 1
            else [f"class_{i}" for i in range(num_classes)]
        )
    if class_colors is None:
        class_colors = [class_color(k) for k in range(labels)]
    if len(class_names) != labels or len(class_colors) != labels:
        raise ValueError(
            f"Invalid value for argument `class_names` or `class_colors`. Expected {labels} "
            f"of each (one per mask value). Received: class_names={class_names!r}, "
            f"class_colors={class_colors!r}"
        )
    return [
        {"id": i, "name": name, "color": [int(c) for c in color]}
        for i, (name, color) in enumerate(zip(class_names, class_colors, strict=True))
    ]
