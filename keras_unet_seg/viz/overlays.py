"""Overlays: segmentation masks drawn over images, as NumPy arrays and PNG files.

Overlays follow `keras.visualization.draw_segmentation_masks` (argument names
`alpha` and `color_mapping`, class ids, the same blend
`image * (1 - alpha) + color * alpha`) and call it for the blending, after
bringing the inputs to the form it needs: it wants batched images in
`[0, 255]` and integer masks of shape `(batch, height, width, 1)`, infers
`num_classes` as the largest id (then leaves that class undrawn), paints
class 0 unless `ignore_index=0`, and needs `color_mapping` to hold every id
from 0. `overlay_mask` takes care of all of this, so one image, a float
image in `[0, 1]`, a probability mask or a multi-class mask just work.

The masks that `overlay_mask` (and every function drawing masks) accepts:

- binary: bool, 0/1 integers, or float probabilities in `[0, 1]`
  (foreground where `mask >= threshold`), of shape `(height, width)` or
  `(height, width, 1)`;
- class ids: an integer array of shape `(height, width)` or
  `(height, width, 1)`, 0 for the background;
- per-class scores: shape `(height, width, num_classes)` with
  `num_classes > 1` (softmax probabilities or one-hot), reduced with an
  argmax, channel 0 being the background.

In `"contour"` mode only the outline of each region is drawn: the pixels of
the region with a 4-neighbour of another class, or on the image border (a
region is closed there), widened inwards to `thickness` pixels.

Nothing here needs matplotlib: the overlays are NumPy arrays, written as PNG
files with Pillow.
"""

import os

import keras
import numpy as np

from keras_unet_seg import _atomic
from keras_unet_seg._validation import (
    check_choice,
    check_positive_int,
    check_unit_interval,
    invalid_value,
    is_real,
    renamed_argument,
)
from keras_unet_seg.viz._images import as_list, image_to_uint8_rgb, mask_to_class_ids, shape_of

__all__ = ["class_color", "overlay_mask", "save_overlays"]

_MODES = ("fill", "contour")
# Rows blended at a time: about 25 MB of float copies for an 8000-pixel-wide image.
_BAND_ROWS = 256

# Colours of classes 2, 3, ... when no `color_mapping` is given (Tableau 10
# without its red, which is the default `color` of class 1).
_PALETTE = (
    (31, 119, 180),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (23, 190, 207),
    (227, 119, 194),
    (188, 189, 34),
    (140, 86, 75),
    (127, 127, 127),
)


def class_color(class_id):
    """The default colour of a class id in overlays: red for 1, then Tableau 10.

    Example:

    >>> class_color(1), class_color(2)
    ((255, 0, 0), (31, 119, 180))
    """
    if class_id == 0:
        return (0, 0, 0)
    if class_id == 1:
        return (255, 0, 0)
    return _PALETTE[(class_id - 2) % len(_PALETTE)]


def overlay_mask(
    image,
    mask,
    color=(255, 0, 0),
    alpha=0.5,
    mode="fill",
    threshold=0.5,
    color_mapping=None,
    ignore_class=None,
    thickness=1,
    *,
    ignore_index=None,
):
    """Draws a segmentation mask over an image.

    Pixels of class 0 (background) are left as they are; pixels of class
    `k > 0` become `image * (1 - alpha) + color_k * alpha`, truncated to
    uint8 (`"contour"` mode: see `keras_unet_seg.viz.overlays`). Neither the image
    nor the mask is modified.

    Args:
        image: `(height, width[, 1 | 3 | 4])` image (alpha dropped), uint8
            (or other integers) in `[0, 255]` or float in `[0, 1]`.
        mask: a binary mask, class ids or per-class scores (the forms are
            listed in `keras_unet_seg.viz.overlays`), with the image's
            height and width.
        color: RGB tuple of ints in `[0, 255]`, the colour of class 1 (the
            foreground of a binary mask). Defaults to `(255, 0, 0)`.
        alpha: float in `[0, 1]`, opacity of the mask colour. Defaults to
            `0.5`; use `1.0` for opaque contours.
        mode: `"fill"` to colour the regions, `"contour"` to draw their
            outlines. Defaults to `"fill"`.
        threshold: float, probability at or above which a float mask is
            foreground. Defaults to `0.5`.
        color_mapping: dict of RGB tuples by class id, naming every class
            of the mask but 0. Defaults to `None`: `color` for class 1,
            then `class_color`.
        ignore_class: int or `None`, a class id not to draw (such as 255 for
            "void"). Defaults to `None`.
        thickness: int >= 1, contour width in pixels. Defaults to `1`.
        ignore_index: deprecated name of `ignore_class`.

    Returns:
        A new uint8 NumPy array of shape `(height, width, 3)` (RGB).

    Raises:
        ValueError: for an image or mask of an unsupported shape or value
            range, a mask of another height and width than the image's, a
            bad option, or a `color_mapping` missing a class of the mask.

    Example:

    >>> import numpy as np
    >>> image, mask = np.zeros((4, 4, 3), dtype="uint8"), np.zeros((4, 4), dtype=bool)
    >>> mask[1:3, 1:3] = True
    >>> out = overlay_mask(image, mask, color=(255, 0, 0), alpha=0.5)
    >>> out.shape, out.dtype, out[1, 1].tolist(), out[0, 0].tolist()
    ((4, 4, 3), dtype('uint8'), [127, 0, 0], [0, 0, 0])

    Multi-class masks take a `color_mapping`:

    >>> classes = np.array([[0, 1], [2, 2]])
    >>> overlay_mask(np.zeros((2, 2), "float32"), classes, alpha=1.0,
    ...              color_mapping={1: (0, 0, 255), 2: (0, 255, 0)})[..., 1:].tolist()
    [[[0, 0], [0, 255]], [[255, 0], [255, 0]]]
    """
    ignore_class = renamed_argument("ignore_index", ignore_index, "ignore_class", ignore_class)
    color, alpha, color_mapping = _check_drawing(color, alpha, mode, thickness, color_mapping)
    rgb, ids = _image_and_class_ids(image, mask, threshold, ignore_class)
    if mode == "contour":
        ids = np.where(_boundary(ids, thickness), ids, 0)
    present = [int(k) for k in np.flatnonzero(np.bincount(ids.ravel())) if k != 0]
    if not present:
        return rgb  # already a new array
    return _draw(rgb, ids, _class_colors(present, color, color_mapping), alpha)


def save_overlays(
    images,
    predictions,
    out_dir,
    names=None,
    threshold=0.5,
    color=(255, 0, 0),
    alpha=0.5,
    mode="fill",
    color_mapping=None,
    thickness=1,
    legend=None,
):
    """Writes one overlay PNG per image, with Pillow.

    Each image gets `overlay_mask(image, prediction, ...)` written to
    `out_dir/<name>.png`, atomically (an interrupted run leaves no
    half-written PNG); files of the same name are replaced.

    Args:
        images: a batch or a list of images of any sizes (see `overlay_mask`).
        predictions: masks or probabilities of the same images (see
            `overlay_mask`), such as `predict_tiled` outputs.
        out_dir: path of the folder to write to, created if missing.
        names: file names without folder, one per image (`.png` added
            unless present). Defaults to `None`: `overlay_0000.png`, ...
        threshold: float, probability at or above which a pixel is
            foreground. Defaults to `0.5`.
        color: RGB tuple, colour of class 1. Defaults to `(255, 0, 0)`.
        alpha: float in `[0, 1]`, overlay opacity. Defaults to `0.5`.
        mode: `"fill"` or `"contour"`. Defaults to `"fill"`.
        color_mapping: dict of class colours, see `overlay_mask`. Defaults
            to `None`.
        thickness: int, contour width in pixels. Defaults to `1`.
        legend: dict of class names by id, such as `{1: "cell"}`, drawn
            under each overlay in the classes' colours. Defaults to `None`.

    Returns:
        The list of the written files' paths, as strings, in input order.

    Raises:
        ValueError: if `images`, `predictions` and `names` differ in length,
            a name is empty, repeated or has a folder, or an overlay
            argument is invalid.

    Example:

    >>> import os, tempfile, numpy as np
    >>> images = np.zeros((2, 8, 8, 3), dtype="uint8")
    >>> predictions = np.ones((2, 8, 8, 1), dtype="float32")
    >>> paths = save_overlays(images, predictions, tempfile.mkdtemp(), names=["a", "b"])
    >>> [os.path.basename(p) for p in paths]
    ['a.png', 'b.png']
    """
    images = as_list(images, "images")
    predictions = as_list(predictions, "predictions")
    file_names = _png_names(names, len(images), len(predictions))
    options = {"color": color, "alpha": alpha, "mode": mode, "threshold": threshold}
    options.update(color_mapping=color_mapping, thickness=thickness)
    overlays = [overlay_mask(*pair, **options) for pair in zip(images, predictions, strict=True)]
    if legend:
        entries = [
            (str(name), _legend_color(int(k), color, color_mapping))
            for k, name in sorted(legend.items())
        ]
        overlays = [_with_legend(overlay, entries) for overlay in overlays]
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(os.fspath(out_dir), file_name) for file_name in file_names]
    for overlay, path in zip(overlays, paths, strict=True):
        _atomic.save_png(path, overlay)
    return paths


# --- helpers -----------------------------------------------------------------


def _image_and_class_ids(image, mask, threshold, ignore_class):
    """The uint8 RGB image and the mask's class ids, of one height and width."""
    rgb = image_to_uint8_rgb(image)
    ids = mask_to_class_ids(mask, threshold, ignore_class)
    if ids.shape != rgb.shape[:2]:
        expected = f"a mask with the image's height and width {rgb.shape[:2]}"
        received = f"mask.shape={shape_of(mask)} for image.shape={shape_of(image)}"
        raise invalid_value("mask", expected, received=received)
    return rgb, ids


def _check_drawing(color, alpha, mode, thickness, color_mapping):
    """The checked `(color, alpha, color_mapping)` of an overlay."""
    color = _check_color("color", color)
    alpha = check_unit_interval("alpha", alpha)
    check_choice("mode", mode, _MODES)
    check_positive_int("thickness", thickness)
    if color_mapping is not None:
        if not isinstance(color_mapping, dict):
            raise invalid_value(
                "color_mapping", "a dict mapping class ids to RGB tuples", color_mapping
            )
        color_mapping = {
            int(k): _check_color(f"color_mapping[{k!r}]", v) for k, v in color_mapping.items()
        }
    return color, alpha, color_mapping


def _check_color(name, color):
    valid = (
        isinstance(color, (tuple, list, np.ndarray))
        and len(color) == 3
        and all(is_real(c) and 0 <= c <= 255 and float(c).is_integer() for c in color)
    )
    if not valid:
        raise invalid_value(name, "an RGB tuple of three integers in [0, 255]", color)
    return tuple(int(c) for c in color)


def _class_colors(present, color, color_mapping):
    """`{class id: RGB}` of the classes present, from `color_mapping` or the defaults."""
    if color_mapping is None:
        return {k: color if k == 1 else class_color(k) for k in present}
    missing = sorted(set(present) - set(color_mapping))
    if missing:
        expected = f"a colour for every class in the mask; missing class ids {missing}"
        raise invalid_value("color_mapping", expected, color_mapping)
    return {k: color_mapping[k] for k in present}


def _legend_color(class_id, color, color_mapping):
    return (color_mapping or {}).get(class_id) or _class_colors([class_id], color, None)[class_id]


def _draw(rgb, ids, colors, alpha):
    """`rgb` with the classes of `ids` blended in by `draw_segmentation_masks`.

    A band of rows at a time (the blend is pixel by pixel), so that its float copies
    and one-hot maps stay small whatever the image's size.
    """
    present = sorted(colors)
    mapping = {0: (0, 0, 0), **{i + 1: colors[k] for i, k in enumerate(present)}}
    drawn = np.empty_like(rgb)
    for top in range(0, rgb.shape[0], _BAND_ROWS):
        rows = slice(top, top + _BAND_ROWS)
        # Compact ids 1..n so that draw_segmentation_masks' one-hot stays small
        # whatever the ids (e.g. 255), and spell out every id it looks up.
        compact = np.searchsorted(np.array([0, *present]), ids[rows]).astype("int32")
        band = keras.visualization.draw_segmentation_masks(
            rgb[None, rows].astype("float32"),
            compact[None, :, :, None],
            num_classes=len(present) + 1,
            color_mapping=mapping,
            alpha=alpha,
            ignore_index=0,
        )
        drawn[rows] = keras.ops.convert_to_numpy(band)[0]
    return drawn


def _png_names(names, num_images, num_predictions):
    """The checked file names of `save_overlays`, with their `.png` suffix."""
    if names is None:
        names = [f"overlay_{i:04d}" for i in range(num_images)]
    elif isinstance(names, (str, bytes)):
        raise invalid_value("names", "a list of file names, one per image", names)
    names = list(names)
    if not num_images == num_predictions == len(names):
        received = f"{num_images} images, {num_predictions} predictions and {len(names)} names"
        raise invalid_value(
            ("images", "predictions", "names"), "the same number of items", received=received
        )
    file_names = []
    for name in names:
        name = os.fspath(name)
        if not name or os.path.basename(name) != name or name in (".", ".."):
            expected = "file names without a folder"
            raise invalid_value("names", expected, received=f"name={name!r}")
        file_names.append(name if name.lower().endswith(".png") else f"{name}.png")
    if len(set(file_names)) != len(file_names):
        raise invalid_value("names", "distinct names", names)
    return file_names


def _with_legend(image, entries):
    """`image` with a white strip under it naming each `(name, colour)` entry."""
    from PIL import Image, ImageDraw

    line = 14
    strip = Image.new("RGB", (image.shape[1], line * len(entries) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for row, (name, rgb) in enumerate(entries):
        top = 2 + row * line
        draw.rectangle((4, top + 2, 13, top + 11), fill=tuple(int(c) for c in rgb))
        draw.text((18, top), name, fill=(0, 0, 0))
    return np.concatenate([image, np.asarray(strip)], axis=0)


def _boundary(ids, thickness):
    """Pixels of each non-zero region within `thickness` pixels of its outline."""
    padded = np.pad(ids, 1, constant_values=0)  # outside the image counts as background
    center = padded[1:-1, 1:-1]
    edge = (
        (padded[:-2, 1:-1] != center)
        | (padded[2:, 1:-1] != center)
        | (padded[1:-1, :-2] != center)
        | (padded[1:-1, 2:] != center)
    )
    edge &= ids != 0
    for _ in range(thickness - 1):
        grown = np.pad(edge, 1, constant_values=False)
        grown = (
            grown[:-2, 1:-1]
            | grown[2:, 1:-1]
            | grown[1:-1, :-2]
            | grown[1:-1, 2:]
            | grown[1:-1, 1:-1]
        )
        edge = grown & (ids != 0)
    return edge
