"""The JSON file written beside an export: what a consumer needs to reproduce `predict`.

The input, output and steps are those of images `(batch, height, width, channels)`,
or of volumes `(batch, depth, height, width, channels)` for a model built on them.
"""

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
_ANY_SIZE = {2: "height and width", 3: "depth, height and width"}
# Where the normalization applies, by the model's spatial rank.
_PRECISION = "in float32 (float64 for float64 data and integers beyond 2**24)"
_APPLIED_TO = {
    2: f"each whole image, before tiling or resizing, {_PRECISION}",
    3: "each whole volume (its statistics over every voxel, not slice by slice), before "
    f"tiling, {_PRECISION}",
}
# The words both kinds of steps share: where tiles start along an axis, and how their
# outputs are blended (`inference/_tiles.py`).
_STARTS = (
    "numpy.round(numpy.linspace(0, L - T, n)) with n = ceil((L - T) / s) + 1 and "
    "s = max(1, int(T * (1 - overlap)))"
)
_GAUSSIAN = "exp(-0.5 * ((i - (T - 1) / 2) / (sigma_scale * T)) ** 2)"
_BLENDED = (
    "'constant': ones): the sum of weight * output over the tiles divided by the sum of the "
    "weights, in float32"
)


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
    rank,
    spec,
    class_names,
    class_colors,
    quantization,
):
    """The dict of `<filepath>.json`, for `model` of `rank` spatial axes exported as
    `format` to run by `spec` (`quantization`: its int8 quantization, or `None`)."""
    from keras_unet_seg._version import __version__

    classes = _classes(num_classes, class_names, class_colors)
    activation = getattr(model, "_resolved_output_activation", lambda: None)()
    spatial = list(image_size or (None,) * rank)
    return {
        "format": format,
        "file": os.path.basename(filepath.rstrip("/")),
        "exported_by": f"keras-unet-seg {__version__}, Keras {keras.__version__}",
        "model": type(model).__name__,
        "batch_normalization_folded": fold,
        "precision": quantization.method if quantization else precision,
        "input": _input(image_size, channels, spec.color_mode, rank),
        "intensity": {
            **spec.intensity,
            "formula": _INTENSITY_FORMULAS[spec.intensity["mode"]],
            "applied_to": _APPLIED_TO[rank],
        },
        "inference": spec.get_config(),
        "steps": _steps(spec, image_size) if rank == 2 else _volume_steps(spec, image_size),
        "output": {
            "shape": [None, *spatial, num_classes],
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
    return [
        f"read the image as {spec.color_mode} (upright: apply its EXIF orientation)",
        "normalise the whole image as `intensity` says, in float64, then cast it to float32",
        "unless both `inference.scale` factors (height, width) are 1, resize the image to "
        "round(height * scale[0]) x round(width * scale[1]) pixels (at least 1): bilinear, "
        "half-pixel centres (source = (i + 0.5) * old / new - 0.5, clipped to [0, old - 1]), "
        "no antialiasing (tf.image.resize's 'bilinear'), height then width, in float32",
        "cut it into tiles of `inference.tile_size` (a side shorter than the tile: "
        f"{shorter}); the tiles' starts along a side of length L for a tile of length T are "
        f"{_STARTS}, rows of tiles top to bottom",
        f"run the model on each tile; {_flips(spec)}blend the tiles' outputs with a weight "
        f"map (`blend` 'gaussian': the outer product of {_GAUSSIAN} along each side, each "
        f"divided by its maximum and at least 1e-6; {_BLENDED}",
        "resize the probabilities back to the image's size as above (if it was resized)",
        "make the mask as `mask` says, with `threshold`",
    ]


def _volume_steps(spec, image_size):
    """What a consumer does to reproduce `keras-unet-seg predict` on a volume file."""
    shorter = (
        "padded with zeros at its end up to the tile, and the padding cropped"
        if image_size
        else "the tile shrinks to it"
    )
    return [
        "read the volume as (depth, height, width, channels): a NIfTI file's (x, y, z[, "
        "channels]) array transposed to (z, y, x[, channels]) and scaled by its header's "
        "slope and intercept, a TIFF stack's pages as the depth "
        "(keras_unet_seg.data.read_volume)",
        "normalise the whole volume as `intensity` says, in float64, then cast it to "
        "float32 (keras_unet_seg.data.normalize_volume)",
        "no resizing: a volume is predicted at its own size (`inference.scale` is 1)",
        "cut it into tiles of `inference.tile_size` (depth, height, width; a side shorter "
        f"than the tile: {shorter}); the tiles' starts along each of the three axes, of "
        f"length L for a tile of length T, are {_STARTS}, every combination of the three",
        f"run the model on each tile; {_flips(spec)}blend the tiles' outputs with a weight "
        f"map (`blend` 'gaussian': the outer product along the three axes of {_GAUSSIAN}, "
        f"each divided by its maximum and at least 1e-6; {_BLENDED}",
        "make the mask as `mask` says, with `threshold`, as uint8 class ids; write it with "
        "the input's header (NIfTI: transposed back to (x, y, z), with the input's affine, "
        "qform, sform and units; TIFF: its resolution and spacing)",
    ]


def _flips(spec):
    """The flip test-time augmentation in words (`horizontal` flips the width, `vertical`
    the height; a volume's depth is never flipped)."""
    if not spec.tta:
        return ""
    return (
        f"average the outputs of the tile flipped {', '.join(spec.tta)} (each flipped back) "
        "with the unflipped one; "
    )


def _input(image_size, channels, color_mode, rank):
    """The `"input"` entry: layout, shape, size, colour mode and channel order."""
    return {
        "layout": {
            2: "NHWC: (batch, height, width, channels), float32",
            3: "NDHWC: (batch, depth, height, width, channels), float32",
        }[rank],
        "shape": [None, *(image_size or (None,) * rank), channels],
        "size": f"any {_ANY_SIZE[rank]}" if image_size is None else "fixed",
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
