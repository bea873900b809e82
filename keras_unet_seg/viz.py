"""Looking at segmentations: overlays, prediction grids, training curves.

Overlays follow `keras.visualization.draw_segmentation_masks` (argument names
`alpha` and `color_mapping`, class ids, the same blend
`image * (1 - alpha) + color * alpha`) and call it for the blending, after
bringing the inputs to the form it needs: it wants batched images in
`[0, 255]` and integer masks of shape `(batch, height, width, 1)`, infers
`num_classes` as the largest id (then leaves that class undrawn), paints
class 0 unless `ignore_index=0`, and needs `color_mapping` to hold every id
from 0. `overlay_mask` takes care of all of this, so one image, a float
image in `[0, 1]`, a probability mask or a multi-class mask just work.

Figures are built with `matplotlib.figure.Figure` directly, never through
`pyplot`, so the user's backend and pyplot's figure list are left alone and
nothing needs a display. matplotlib is imported only inside the functions
that draw figures (`pip install "keras-unet-seg[viz]"`).
"""

import csv
import numbers
import os

import keras
import numpy as np

from keras_unet_seg import _atomic

_MODES = ("fill", "contour")

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
    ignore_index=None,
    thickness=1,
):
    """Draws a segmentation mask over an image.

    Pixels of class 0 (background) are left as they are; pixels of class
    `k > 0` become `image * (1 - alpha) + color_k * alpha`, truncated to
    uint8, the blend of `keras.visualization.draw_segmentation_masks`, which
    does the drawing. In `"contour"` mode only the outline of each region is
    drawn: the pixels of the region with a 4-neighbour of another class, or
    on the image border (a region is closed there), widened inwards to
    `thickness` pixels.

    Masks may be:

    - binary: bool, 0/1 integers, or float probabilities in `[0, 1]`
      (foreground where `mask >= threshold`), of shape `(height, width)` or
      `(height, width, 1)`;
    - class ids: an integer array of shape `(height, width)` or
      `(height, width, 1)`, 0 for the background;
    - per-class scores: shape `(height, width, num_classes)` with
      `num_classes > 1` (softmax probabilities or one-hot), reduced with an
      argmax, channel 0 being the background.

    Neither the image nor the mask is modified.

    Args:
        image: `(height, width)`, `(height, width, 1)`, `(height, width, 3)`
            or `(height, width, 4)` (alpha dropped) image, uint8 in
            `[0, 255]` (or another integer type in that range) or float in
            `[0, 1]`; NumPy array or backend tensor.
        mask: the mask, as above, with the image's height and width.
        color: RGB tuple of ints in `[0, 255]`, the colour of class 1 (the
            foreground of a binary mask). Defaults to `(255, 0, 0)`.
        alpha: float in `[0, 1]`, opacity of the mask colour. Defaults to
            `0.5`; use `1.0` for opaque contours.
        mode: `"fill"` to colour the regions, `"contour"` to draw their
            outlines. Defaults to `"fill"`.
        threshold: float, probability at or above which a float mask is
            foreground. Defaults to `0.5`.
        color_mapping: dict mapping class ids to RGB tuples, as in
            `draw_segmentation_masks`. When given it must name every class
            present in the mask (0 is never drawn). Defaults to `None`:
            `color` for class 1, a fixed palette for classes 2 and up.
        ignore_index: int or `None`, a class id not to draw (such as 255 for
            "void"). Defaults to `None`.
        thickness: int >= 1, contour width in pixels. Defaults to `1`.

    Returns:
        A new uint8 NumPy array of shape `(height, width, 3)` (RGB).

    Raises:
        ValueError: if an argument is invalid: an image or mask of an
            unsupported shape or value range, a mask whose height and width
            differ from the image's (the message quotes both shapes), a bad
            colour, `alpha`, `mode` or `thickness`, or a `color_mapping`
            missing a class present in the mask.

    Example:

    >>> import numpy as np
    >>> image = np.zeros((4, 4, 3), dtype="uint8")
    >>> mask = np.zeros((4, 4), dtype=bool)
    >>> mask[1:3, 1:3] = True
    >>> out = overlay_mask(image, mask, color=(255, 0, 0), alpha=0.5)
    >>> out.shape, out.dtype
    ((4, 4, 3), dtype('uint8'))
    >>> out[1, 1].tolist(), out[0, 0].tolist()
    ([127, 0, 0], [0, 0, 0])

    Multi-class masks take a `color_mapping`:

    >>> classes = np.array([[0, 1], [2, 2]])
    >>> overlay_mask(np.zeros((2, 2), "float32"), classes, alpha=1.0,
    ...              color_mapping={1: (0, 0, 255), 2: (0, 255, 0)})[..., 1:].tolist()
    [[[0, 0], [0, 255]], [[255, 0], [255, 0]]]
    """
    color = _validate_color(color, "color")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(
            "Invalid value for argument `alpha`. Expected a float in [0, 1]. "
            f"Received: alpha={alpha!r}"
        )
    if mode not in _MODES:
        raise ValueError(
            f"Invalid value for argument `mode`. Expected one of {_MODES}. Received: mode={mode!r}"
        )
    if isinstance(thickness, bool) or not isinstance(thickness, numbers.Integral) or thickness < 1:
        raise ValueError(
            "Invalid value for argument `thickness`. Expected a positive integer. "
            f"Received: thickness={thickness!r}"
        )
    if color_mapping is not None:
        if not isinstance(color_mapping, dict):
            raise ValueError(
                "Invalid value for argument `color_mapping`. Expected a dict mapping class ids "
                f"to RGB tuples. Received: color_mapping={color_mapping!r}"
            )
        color_mapping = {
            int(k): _validate_color(v, f"color_mapping[{k!r}]") for k, v in color_mapping.items()
        }

    rgb = _image_to_uint8_rgb(image)
    ids = _mask_to_class_ids(mask, threshold, ignore_index)
    if ids.shape != rgb.shape[:2]:
        raise ValueError(
            "Invalid value for argument `mask`. Expected a mask with the image's height and "
            f"width {rgb.shape[:2]}. Received: mask.shape={_shape(mask)} for "
            f"image.shape={_shape(image)}"
        )
    if mode == "contour":
        ids = np.where(_boundary(ids, thickness), ids, 0)

    present = [int(k) for k in np.unique(ids) if k != 0]
    if not present:
        return rgb  # already a new array
    colors = {}
    for k in present:
        if color_mapping is not None:
            if k not in color_mapping:
                missing = sorted(set(present) - set(color_mapping))
                raise ValueError(
                    "Invalid value for argument `color_mapping`. Expected a colour for every "
                    f"class in the mask; missing class ids {missing}. "
                    f"Received: color_mapping={color_mapping!r}"
                )
            colors[k] = color_mapping[k]
        else:
            colors[k] = color if k == 1 else class_color(k)

    # Compact ids 1..n so that draw_segmentation_masks' one-hot stays small
    # whatever the ids (e.g. 255), and spell out every id it looks up.
    compact = np.searchsorted(np.array([0, *present]), ids).astype("int32")
    mapping = {0: (0, 0, 0), **{i + 1: colors[k] for i, k in enumerate(present)}}
    drawn = keras.visualization.draw_segmentation_masks(
        rgb[None].astype("float32"),
        compact[None, :, :, None],
        num_classes=len(present) + 1,
        color_mapping=mapping,
        alpha=float(alpha),
        ignore_index=0,
    )
    return np.asarray(keras.ops.convert_to_numpy(drawn)[0], dtype="uint8")


def plot_predictions(
    images,
    masks,
    predictions,
    threshold=0.5,
    color=(255, 0, 0),
    alpha=0.5,
    mode="fill",
    color_mapping=None,
    max_images=None,
    figsize=None,
):
    """Plots images, ground truths, predictions and overlays in a grid.

    One row per image, with the columns "image", "ground truth",
    "prediction" (the probability map, in gray from 0 to 1, for a one-channel
    float prediction; the coloured classes otherwise) and "overlay" (the
    prediction drawn over the image with `overlay_mask`). Without ground
    truth (`masks=None`) the column is left out.

    Args:
        images: a batch `(batch, height, width[, channels])` or a list of
            images, uint8 or float in `[0, 1]` (see `overlay_mask`).
        masks: ground-truth masks of the same images (any form that
            `overlay_mask` accepts), or `None`.
        predictions: predicted masks or probabilities of the same images,
            such as `predict_tiled` outputs.
        threshold: float, probability at or above which a pixel is
            foreground. Defaults to `0.5`.
        color: RGB tuple, colour of class 1. Defaults to `(255, 0, 0)`.
        alpha: float in `[0, 1]`, overlay opacity. Defaults to `0.5`.
        mode: overlay mode, `"fill"` or `"contour"`. Defaults to `"fill"`.
        color_mapping: dict of class colours for multi-class masks, see
            `overlay_mask`. Defaults to `None`.
        max_images: int or `None`, plot only the first `max_images`.
            Defaults to `None` (all).
        figsize: `(width, height)` in inches, or `None` for panels 3 inches
            wide with the first image's aspect ratio. Defaults to `None`.

    Returns:
        A `matplotlib.figure.Figure` with `rows x columns` axes (not
        registered with pyplot; display it in a notebook or save it with
        `figure.savefig(...)`).

    Raises:
        ImportError: if matplotlib is not installed.
        ValueError: if the inputs are empty, have different lengths, or an
            image and its masks differ in size.

    Example:

    >>> import numpy as np
    >>> images = np.zeros((2, 16, 16, 3), dtype="uint8")
    >>> masks = np.zeros((2, 16, 16, 1), dtype="uint8")
    >>> predictions = np.full((2, 16, 16, 1), 0.7, dtype="float32")
    >>> figure = plot_predictions(images, masks, predictions)
    >>> len(figure.axes)
    8
    """
    figure_class = _import_matplotlib_figure()
    images = _as_list(images, "images")
    predictions = _as_list(predictions, "predictions")
    masks = None if masks is None else _as_list(masks, "masks")
    lengths = {"images": len(images), "predictions": len(predictions)}
    if masks is not None:
        lengths["masks"] = len(masks)
    if len(set(lengths.values())) != 1 or not images:
        raise ValueError(
            "Invalid value for arguments `images`, `masks` and `predictions`. Expected the "
            f"same non-zero number of items. Received: lengths {lengths}"
        )
    if max_images is not None:
        if isinstance(max_images, bool) or not isinstance(max_images, numbers.Integral):
            raise ValueError(
                "Invalid value for argument `max_images`. Expected a positive integer or None. "
                f"Received: max_images={max_images!r}"
            )
        if max_images < 1:
            raise ValueError(
                "Invalid value for argument `max_images`. Expected a positive integer or None. "
                f"Received: max_images={max_images!r}"
            )
    rows = len(images) if max_images is None else min(len(images), int(max_images))
    titles = ["image", "ground truth", "prediction", "overlay"]
    if masks is None:
        titles.remove("ground truth")
    cols = len(titles)
    if figsize is None:
        height, width = _to_numpy(images[0]).shape[:2]
        figsize = (3 * cols, rows * (3 * height / width + 0.3))
    figure = figure_class(figsize=figsize, layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False)
    for row in range(rows):
        image = _image_to_uint8_rgb(images[row])
        panels = [_Panel(image)]
        if masks is not None:
            panels.append(_mask_panel(masks[row], threshold, color, color_mapping))
        panels.append(_mask_panel(predictions[row], threshold, color, color_mapping))
        overlay = overlay_mask(
            image,
            predictions[row],
            color=color,
            alpha=alpha,
            mode=mode,
            threshold=threshold,
            color_mapping=color_mapping,
        )
        panels.append(_Panel(overlay))
        for col, (panel, title) in enumerate(zip(panels, titles, strict=True)):
            if panel.data.shape[:2] != image.shape[:2]:
                argument = "masks" if title == "ground truth" else "predictions"
                raise ValueError(
                    f"Invalid value for argument `{argument}`. "
                    f"Expected the height and width of image {row}, {image.shape[:2]}. "
                    f"Received: shape {panel.data.shape[:2]}"
                )
            ax = axes[row, col]
            ax.imshow(panel.data, interpolation="nearest", **panel.kwargs)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title)
    return figure


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
    `out_dir/<name>.png`. Files are written atomically (to a temporary file
    in `out_dir`, then renamed), so an interrupted run leaves no
    half-written PNG; existing files of the same name are replaced.

    Args:
        images: a batch `(batch, height, width[, channels])` or a list of
            images of any sizes, uint8 or float in `[0, 1]`.
        predictions: masks or probabilities of the same images (see
            `overlay_mask`), such as `predict_tiled` outputs.
        out_dir: path of the folder to write to, created if missing.
        names: list of file names without folder (a `.png` suffix is added
            unless present), one per image, such as the input files' stems.
            Defaults to `None`: `overlay_0000.png`, `overlay_0001.png`, ...
        threshold: float, probability at or above which a pixel is
            foreground. Defaults to `0.5`.
        color: RGB tuple, colour of class 1. Defaults to `(255, 0, 0)`.
        alpha: float in `[0, 1]`, overlay opacity. Defaults to `0.5`.
        mode: `"fill"` or `"contour"`. Defaults to `"fill"`.
        color_mapping: dict of class colours, see `overlay_mask`. Defaults
            to `None`.
        thickness: int, contour width in pixels. Defaults to `1`.
        legend: dict mapping class ids to names, such as `{1: "cell", 2:
            "nucleus"}`, drawn in a strip under each overlay with the classes'
            colours. Defaults to `None` (no legend).

    Returns:
        The list of the written files' paths, as strings, in input order.

    Raises:
        ValueError: if `images`, `predictions` and `names` differ in length,
            a name is empty, repeated or contains a folder, or an overlay
            argument is invalid (see `overlay_mask`).

    Example:

    >>> import os, tempfile
    >>> import numpy as np
    >>> images = np.zeros((2, 8, 8, 3), dtype="uint8")
    >>> predictions = np.ones((2, 8, 8, 1), dtype="float32")
    >>> out_dir = tempfile.mkdtemp()
    >>> paths = save_overlays(images, predictions, out_dir, names=["a", "b"])
    >>> [os.path.basename(p) for p in paths]
    ['a.png', 'b.png']
    """

    images = _as_list(images, "images")
    predictions = _as_list(predictions, "predictions")
    if names is None:
        names = [f"overlay_{i:04d}" for i in range(len(images))]
    elif isinstance(names, (str, bytes)):
        raise ValueError(
            "Invalid value for argument `names`. Expected a list of file names, one per image. "
            f"Received: names={names!r}"
        )
    names = list(names)
    if not len(images) == len(predictions) == len(names):
        raise ValueError(
            "Invalid value for arguments `images`, `predictions` and `names`. Expected the same "
            f"number of items. Received: {len(images)} images, {len(predictions)} predictions "
            f"and {len(names)} names"
        )
    file_names = []
    for name in names:
        name = os.fspath(name)
        if not name or os.path.basename(name) != name or name in (".", ".."):
            raise ValueError(
                "Invalid value for argument `names`. Expected file names without a folder. "
                f"Received: name={name!r}"
            )
        file_names.append(name if name.lower().endswith(".png") else f"{name}.png")
    if len(set(file_names)) != len(file_names):
        raise ValueError(
            "Invalid value for argument `names`. Expected distinct names. "
            f"Received: names={names!r}"
        )

    overlays = [
        overlay_mask(
            image,
            prediction,
            color=color,
            alpha=alpha,
            mode=mode,
            threshold=threshold,
            color_mapping=color_mapping,
            thickness=thickness,
        )
        for image, prediction in zip(images, predictions, strict=True)
    ]
    if legend:
        entries = [
            (
                str(name),
                (color_mapping or {}).get(int(k))
                or (color if int(k) == 1 else class_color(int(k))),
            )
            for k, name in sorted(legend.items())
        ]
        overlays = [_with_legend(overlay, entries) for overlay in overlays]
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for overlay, file_name in zip(overlays, file_names, strict=True):
        path = os.path.join(os.fspath(out_dir), file_name)
        _atomic.save_png(path, overlay)
        paths.append(path)
    return paths


def plot_history(history, metrics=None, figsize=None, filepath=None):
    """Plots training curves from a Keras `History` or a `CSVLogger` file.

    One subplot per quantity (`loss` first, then the metrics in the order
    logged, e.g. `learning_rate` too when logged), with the training curve
    and, when logged, the validation curve (`val_` prefix). Epochs are
    numbered from 1, as in Keras' progress bar; a resumed run's epochs keep
    their numbers (`History.epoch` or the CSV's `epoch` column).

    Args:
        history: a `keras.callbacks.History` (returned by `model.fit`), its
            `history` dict, or the path of a CSV file written by
            `keras.callbacks.CSVLogger` (comma-separated; missing values
            `NA` or empty are skipped).
        metrics: list of quantity names to plot (without `val_`), or `None`
            for all. Defaults to `None`.
        figsize: `(width, height)` in inches, or `None` for 4 x 3 inches per
            subplot. Defaults to `None`.
        filepath: path to save the figure to (format from the extension,
            such as `.png` or `.pdf`), written atomically, or `None`.
            Defaults to `None`.

    Returns:
        A `matplotlib.figure.Figure` with one axes per quantity.

    Raises:
        ImportError: if matplotlib is not installed.
        FileNotFoundError: if the CSV file does not exist.
        ValueError: if there is nothing to plot, the CSV cannot be read, or
            `metrics` names a quantity that was not logged.

    Example:

    >>> history = {"loss": [0.9, 0.5, 0.3], "val_loss": [1.0, 0.6, 0.4],
    ...            "dice": [0.2, 0.6, 0.8]}
    >>> figure = plot_history(history)
    >>> [ax.get_title() for ax in figure.axes]
    ['loss', 'dice']
    """
    figure_class = _import_matplotlib_figure()
    logs, epochs = _read_history(history)
    names = []
    for key in logs:
        name = key[4:] if key.startswith("val_") else key
        if name not in names:
            names.append(name)
    if "loss" in names:
        names.remove("loss")
        names.insert(0, "loss")
    if metrics is not None:
        if isinstance(metrics, str):
            metrics = [metrics]
        unknown = [m for m in metrics if m not in names]
        if unknown or not metrics:
            raise ValueError(
                f"Invalid value for argument `metrics`. Expected names among {names}. "
                f"Received: metrics={metrics!r}"
            )
        names = list(metrics)
    if not names:
        raise ValueError(
            "Invalid value for argument `history`. Expected logged losses or metrics. "
            f"Received: a history with no values ({_describe(history)})"
        )
    cols = min(len(names), 3)
    rows = -(-len(names) // cols)
    figure = figure_class(figsize=figsize or (4 * cols, 3 * rows), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(names) :]:
        figure.delaxes(ax)
    x = np.asarray(epochs, dtype="float64") + 1
    for ax, name in zip(axes, names, strict=False):
        for key, label in ((name, "training"), (f"val_{name}", "validation")):
            if key in logs:
                y = np.asarray(logs[key], dtype="float64")
                ax.plot(x[: len(y)], y, marker="o", markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    if filepath is not None:
        _atomic.save_figure(os.fspath(filepath), figure)
    return figure


# --- helpers -----------------------------------------------------------------


class _Panel:
    def __init__(self, data, **kwargs):
        self.data = data
        self.kwargs = kwargs


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


def _mask_panel(mask, threshold, color, color_mapping):
    """A panel showing a mask: probabilities in gray, class ids in colour."""
    array = _to_numpy(mask)
    squeezed = array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array
    if squeezed.ndim == 2 and np.issubdtype(squeezed.dtype, np.floating):
        _mask_to_class_ids(squeezed, threshold, None)  # validates the range
        return _Panel(squeezed, cmap="gray", vmin=0.0, vmax=1.0)
    ids = _mask_to_class_ids(array, threshold, None)
    if ids.max(initial=0) <= 1 and color_mapping is None:
        return _Panel(ids, cmap="gray", vmin=0, vmax=1)
    black = np.zeros((*ids.shape, 3), dtype="uint8")
    return _Panel(overlay_mask(black, ids, color=color, alpha=1.0, color_mapping=color_mapping))


def _import_matplotlib_figure():
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            'Plotting needs matplotlib. Install it with `pip install "keras-unet-seg[viz]"` '
            "or `pip install matplotlib`."
        ) from error
    return Figure


def _to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    if keras.ops.is_tensor(x):
        return keras.ops.convert_to_numpy(x)
    return np.asarray(x)


def _shape(x):
    return tuple(int(d) for d in x.shape) if hasattr(x, "shape") else np.shape(x)


def _as_list(items, name):
    if isinstance(items, (list, tuple)):
        return list(items)
    array = _to_numpy(items)
    if array.ndim < 3:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a batch (batch, height, width[, "
            f"channels]) or a list of arrays. Received: {name}.shape={array.shape}"
        )
    return list(array)


def _validate_color(color, name):
    valid = (
        isinstance(color, (tuple, list, np.ndarray))
        and len(color) == 3
        and all(
            isinstance(c, numbers.Real)
            and not isinstance(c, bool)
            and 0 <= c <= 255
            and float(c).is_integer()
            for c in color
        )
    )
    if not valid:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected an RGB tuple of three integers in "
            f"[0, 255]. Received: {name}={color!r}"
        )
    return tuple(int(c) for c in color)


def _image_to_uint8_rgb(image):
    """A new uint8 (H, W, 3) copy of an image; float images must be in [0, 1]."""
    array = _to_numpy(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or 0 in array.shape:
        raise ValueError(
            "Invalid value for argument `image`. Expected an image of shape (height, width), "
            "(height, width, 1), (height, width, 3) or (height, width, 4). "
            f"Received: image.shape={_shape(image)}"
        )
    if array.shape[-1] == 4:
        array = array[..., :3]
    if array.dtype == np.uint8:
        array = array.copy()
    elif np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise ValueError(
                "Invalid value for argument `image`. Expected integer values in [0, 255]. "
                f"Received: image with values in [{array.min()}, {array.max()}]"
            )
        array = array.astype("uint8")
    elif np.issubdtype(array.dtype, np.floating):
        low, high = float(np.min(array)), float(np.max(array))
        if not (np.isfinite(low) and np.isfinite(high) and low >= 0 and high <= 1):
            raise ValueError(
                "Invalid value for argument `image`. Expected a float image in [0, 1] (or uint8 "
                f"in [0, 255]). Received: image.dtype={array.dtype} with values in "
                f"[{low:g}, {high:g}]"
            )
        array = np.round(array.astype("float64") * 255).astype("uint8")
    else:
        raise ValueError(
            "Invalid value for argument `image`. Expected a uint8 or float image. "
            f"Received: image.dtype={array.dtype}"
        )
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array


def _mask_to_class_ids(mask, threshold, ignore_index):
    """A new int32 (H, W) array of class ids, 0 for background and ignored pixels."""
    array = _to_numpy(mask)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] > 1:
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ValueError(
                "Invalid value for argument `mask`. Expected a numeric mask. "
                f"Received: mask.dtype={array.dtype}"
            )
        return np.argmax(array, axis=-1).astype("int32")
    if array.ndim != 2:
        raise ValueError(
            "Invalid value for argument `mask`. Expected a mask of shape (height, width), "
            "(height, width, 1) or (height, width, num_classes). "
            f"Received: mask.shape={_shape(mask)}"
        )
    if array.dtype == bool:
        return array.astype("int32")
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        if low < 0 or high > 1:
            raise ValueError(
                "Invalid value for argument `mask`. Expected probabilities in [0, 1] for a "
                "float mask (cast class ids to an integer dtype). "
                f"Received: mask.dtype={array.dtype} with values in [{low:g}, {high:g}]"
            )
        return (array >= threshold).astype("int32")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            "Invalid value for argument `mask`. Expected a bool, integer or float mask. "
            f"Received: mask.dtype={array.dtype}"
        )
    ids = array.astype("int64")
    if ignore_index is not None:
        ids = np.where(ids == ignore_index, 0, ids)
    if ids.min() < 0:
        raise ValueError(
            "Invalid value for argument `mask`. Expected non-negative class ids (set "
            f"`ignore_index` for a void label). Received: a mask with minimum {ids.min()}"
        )
    return ids.astype("int32")


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


def _read_history(history):
    """(dict of name -> list of floats, list of 0-based epochs) from any history form."""
    if isinstance(history, (str, os.PathLike)):
        path = os.fspath(history)
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise ValueError(
                "Invalid value for argument `history`. Expected a CSV log with a header and at "
                f"least one epoch, as written by keras.callbacks.CSVLogger. Received: {path!r}"
            )
        logs = {}
        for key in rows[0]:
            if key is None or key == "epoch":
                continue
            try:
                logs[key] = [_parse_float(row[key]) for row in rows]
            except ValueError as error:
                raise ValueError(
                    f"Invalid value for argument `history`. Expected numbers in column {key!r} "
                    f"of {path!r}. Received: {error}"
                ) from None
        if "epoch" in rows[0]:
            epochs = [int(float(row["epoch"])) for row in rows]
        else:
            epochs = list(range(len(rows)))
        return logs, epochs
    if isinstance(history, keras.callbacks.History) or hasattr(history, "history"):
        logs = dict(history.history)
        epochs = list(getattr(history, "epoch", None) or [])
    elif isinstance(history, dict):
        logs = dict(history)
        epochs = []
    else:
        raise ValueError(
            "Invalid value for argument `history`. Expected a keras.callbacks.History, its "
            f"`history` dict or the path of a CSV log. Received: {_describe(history)}"
        )
    length = max((len(v) for v in logs.values()), default=0)
    if len(epochs) != length:
        epochs = list(range(length))
    return {k: [float(x) for x in v] for k, v in logs.items()}, epochs


def _parse_float(text):
    if text is None or text.strip() in ("", "NA", "nan", "NaN"):
        return float("nan")
    return float(text)


def _describe(value):
    return f"history={value!r}" if isinstance(value, dict) else f"{type(value).__name__}"
