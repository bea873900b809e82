"""The JSON file written beside an export: what a consumer needs to reproduce `predict`."""

import os

import keras

from keras_unet_seg._validation import invalid_value

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
    spec,
    class_names,
    class_colors,
    quantization,
):
    """The dict of `<filepath>.json`, for `model` exported as `format` to run by `spec`
    (`quantization`: its int8 quantization, or `None`)."""
    from keras_unet_seg._version import __version__

    classes = _classes(num_classes, class_names, class_colors)
    activation = getattr(model, "_resolved_output_activation", lambda: None)()
    height, width = image_size or (None, None)
    return {
        "format": format,
        "file": os.path.basename(filepath.rstrip("/")),
        "exported_by": f"keras-unet-seg {__version__}, Keras {keras.__version__}",
        "model": type(model).__name__,
        "batch_normalization_folded": fold,
        "precision": quantization.method if quantization else precision,
        "input": _input(image_size, channels, spec.color_mode),
        "intensity": {
            **spec.intensity,
            "formula": _INTENSITY_FORMULAS[spec.intensity["mode"]],
            "applied_to": (
                "each whole image, before tiling or resizing, in float32 (float64 for "
                "float64 data and integers beyond 2**24)"
            ),
        },
        "inference": spec.get_config(),
        "steps": _steps(spec, image_size),
        "output": {
            "shape": [None, height, width, num_classes],
            "activation": activation,
            "values": "probabilities" if activation in ("sigmoid", "softmax") else "scores",
        },
        "mask": (
            f"one class: foreground where output >= threshold ({spec.threshold})"
            if num_classes == 1
            else "several classes: the argmax over the last axis (class ids)"
        ),
        "threshold": spec.threshold,
        "classes": classes,
        "parity": parity,
    }


def _steps(spec, image_size):
    """What a consumer does to reproduce `keras-unet-seg predict` with `spec` (`inference`)."""
    shorter = (
        "padded with zeros at the bottom and right up to the tile, and the padding cropped"
        if image_size
        else "the tile shrinks to it"
    )
    flips = (
        f"average the outputs of the tile flipped {', '.join(spec.tta)} (each flipped back) "
        "with the unflipped one; "
        if spec.tta
        else ""
    )
    return [
        f"read the image as {spec.color_mode} (upright: apply its EXIF orientation)",
        "normalise the whole image as `intensity` says, in float64, then cast it to float32",
        "unless both `inference.scale` factors (height, width) are 1, resize the image to "
        "round(height * scale[0]) x round(width * scale[1]) pixels (at least 1): bilinear, "
        "half-pixel centres (source = (i + 0.5) * old / new - 0.5, clipped to [0, old - 1]), "
        "no antialiasing (tf.image.resize's 'bilinear'), height then width, in float32",
        "cut it into tiles of `inference.tile_size` (a side shorter than the tile: "
        f"{shorter}); the tiles' starts along a side of length L for a tile of length T are "
        "numpy.round(numpy.linspace(0, L - T, n)) with n = ceil((L - T) / s) + 1 and "
        "s = max(1, int(T * (1 - overlap))), rows of tiles top to bottom",
        f"run the model on each tile; {flips}blend the tiles' outputs with a weight map "
        "(`blend` 'gaussian': the outer product of exp(-0.5 * ((i - (T - 1) / 2) / "
        "(sigma_scale * T)) ** 2) along each side, divided by its maximum, at least 1e-12; "
        "'constant': ones): the sum of weight * output over the tiles divided by the sum "
        "of the weights, in float32",
        "resize the probabilities back to the image's size as above (if it was resized)",
        "make the mask as `mask` says, with `threshold`",
    ]


def _input(image_size, channels, color_mode):
    """The `"input"` entry: layout, shape, size, colour mode and channel order."""
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
        raise invalid_value(
            ("class_names", "class_colors"),
            f"{labels} of each (one per mask value)",
            received=f"class_names={class_names!r}, class_colors={class_colors!r}",
        )
    return [
        {"id": i, "name": name, "color": [int(c) for c in color]}
        for i, (name, color) in enumerate(zip(class_names, class_colors, strict=True))
    ]
