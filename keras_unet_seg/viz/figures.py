"""Figures: prediction grids and training curves, with matplotlib.

Figures are built with `matplotlib.figure.Figure` directly, never through
`pyplot`, so the user's backend and pyplot's figure list are left alone and
nothing needs a display. matplotlib is imported only inside the functions
that draw figures (`pip install "keras-unet-seg[viz]"`).
"""

import csv
import os

import keras
import numpy as np

from keras_unet_seg import _atomic
from keras_unet_seg._arrays import to_numpy
from keras_unet_seg._validation import check_positive_int, invalid_value
from keras_unet_seg.viz._images import as_list, image_to_uint8_rgb, mask_to_class_ids
from keras_unet_seg.viz.overlays import overlay_mask

__all__ = ["plot_history", "plot_predictions"]

_COLUMNS = ("image", "ground truth", "prediction", "overlay")


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
    >>> images, masks = np.zeros((2, 16, 16, 3), "uint8"), np.zeros((2, 16, 16, 1), "uint8")
    >>> figure = plot_predictions(images, masks, np.full((2, 16, 16, 1), 0.7, "float32"))
    >>> len(figure.axes)
    8
    """
    figure_class = _import_matplotlib_figure()
    images, masks, predictions = _same_length_lists(images, masks, predictions)
    if max_images is not None:
        check_positive_int("max_images", max_images)
    rows = len(images) if max_images is None else min(len(images), int(max_images))
    titles = [title for title in _COLUMNS if masks is not None or title != "ground truth"]
    if figsize is None:
        height, width = to_numpy(images[0]).shape[:2]
        figsize = (3 * len(titles), rows * (3 * height / width + 0.3))
    figure = figure_class(figsize=figsize, layout="constrained")
    axes = figure.subplots(rows, len(titles), squeeze=False)
    options = {"threshold": threshold, "color": color, "color_mapping": color_mapping}
    for row in range(rows):
        image = image_to_uint8_rgb(images[row])
        panels = [_Panel(image)]
        if masks is not None:
            panels.append(_mask_panel(masks[row], **options))
        panels.append(_mask_panel(predictions[row], **options))
        panels.append(
            _Panel(overlay_mask(image, predictions[row], alpha=alpha, mode=mode, **options))
        )
        _draw_row(axes[row], row, image, panels, titles)
    return figure


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
    names = _quantities(logs, metrics, history)
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


def _import_matplotlib_figure():
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            'Plotting needs matplotlib. Install it with `pip install "keras-unet-seg[viz]"` '
            "or `pip install matplotlib`."
        ) from error
    return Figure


def _same_length_lists(images, masks, predictions):
    """The three inputs of `plot_predictions` as lists of one non-zero length."""
    images = as_list(images, "images")
    predictions = as_list(predictions, "predictions")
    masks = None if masks is None else as_list(masks, "masks")
    lengths = {"images": len(images), "predictions": len(predictions)}
    if masks is not None:
        lengths["masks"] = len(masks)
    if len(set(lengths.values())) != 1 or not images:
        expected = "the same non-zero number of items"
        raise invalid_value(
            ("images", "masks", "predictions"), expected, received=f"lengths {lengths}"
        )
    return images, masks, predictions


def _draw_row(axes, row, image, panels, titles):
    """Shows one image's panels on its row of axes, titled on the first row."""
    for ax, panel, title in zip(axes, panels, titles, strict=True):
        if panel.data.shape[:2] != image.shape[:2]:
            argument = "masks" if title == "ground truth" else "predictions"
            expected = f"the height and width of image {row}, {image.shape[:2]}"
            raise invalid_value(argument, expected, received=f"shape {panel.data.shape[:2]}")
        ax.imshow(panel.data, interpolation="nearest", **panel.kwargs)
        ax.set_axis_off()
        if row == 0:
            ax.set_title(title)


def _mask_panel(mask, threshold, color, color_mapping):
    """A panel showing a mask: probabilities in gray, class ids in colour."""
    array = to_numpy(mask)
    squeezed = array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array
    if squeezed.ndim == 2 and np.issubdtype(squeezed.dtype, np.floating):
        mask_to_class_ids(squeezed, threshold, None)  # validates the range
        return _Panel(squeezed, cmap="gray", vmin=0.0, vmax=1.0)
    ids = mask_to_class_ids(array, threshold, None)
    if ids.max(initial=0) <= 1 and color_mapping is None:
        return _Panel(ids, cmap="gray", vmin=0, vmax=1)
    black = np.zeros((*ids.shape, 3), dtype="uint8")
    return _Panel(overlay_mask(black, ids, color=color, alpha=1.0, color_mapping=color_mapping))


def _quantities(logs, metrics, history):
    """The names to plot: `loss` first, then the others as logged, or `metrics`."""
    names = list(dict.fromkeys(key.removeprefix("val_") for key in logs))
    if "loss" in names:
        names.remove("loss")
        names.insert(0, "loss")
    if metrics is not None:
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        if not metrics or any(m not in names for m in metrics):
            raise invalid_value("metrics", f"names among {names}", metrics)
        names = metrics
    if not names:
        received = f"a history with no values ({_describe(history)})"
        raise invalid_value("history", "logged losses or metrics", received=received)
    return names


def _read_history(history):
    """(dict of name -> list of floats, list of 0-based epochs) from any history form."""
    if isinstance(history, (str, os.PathLike)):
        return _read_csv_log(os.fspath(history))
    if isinstance(history, keras.callbacks.History) or hasattr(history, "history"):
        logs = dict(history.history)
        epochs = list(getattr(history, "epoch", None) or [])
    elif isinstance(history, dict):
        logs = dict(history)
        epochs = []
    else:
        expected = "a keras.callbacks.History, its `history` dict or the path of a CSV log"
        raise invalid_value("history", expected, received=_describe(history))
    length = max((len(v) for v in logs.values()), default=0)
    if len(epochs) != length:
        epochs = list(range(length))
    return {k: [float(x) for x in v] for k, v in logs.items()}, epochs


def _read_csv_log(path):
    """(logs, epochs) of a `CSVLogger` file."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        expected = (
            "a CSV log with a header and at least one epoch, as written by "
            "keras.callbacks.CSVLogger"
        )
        raise invalid_value("history", expected, received=repr(path))
    logs = {}
    for key in rows[0]:
        if key is None or key == "epoch":
            continue
        try:
            logs[key] = [_parse_float(row[key]) for row in rows]
        except ValueError as error:
            expected = f"numbers in column {key!r} of {path!r}"
            raise invalid_value("history", expected, received=str(error)) from None
    if "epoch" in rows[0]:
        epochs = [int(float(row["epoch"])) for row in rows]
    else:
        epochs = list(range(len(rows)))
    return logs, epochs


def _parse_float(text):
    if text is None or text.strip() in ("", "NA", "nan", "NaN"):
        return float("nan")
    return float(text)


def _describe(value):
    return f"history={value!r}" if isinstance(value, dict) else f"{type(value).__name__}"
