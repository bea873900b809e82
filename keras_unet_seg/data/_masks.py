"""Reading mask files and turning their values into training targets, with checks."""

import numpy as np

from keras_unet_seg._naming import option
from keras_unet_seg.data._decoding import InvalidFileError, decode


def read_mask_values(path):
    """Reads a mask as a 2-D integer array of its raw values.

    Palette (indexed) PNG and GIF masks give their palette indices, as Pascal VOC
    expects, not colours. RGB masks are accepted when their three channels are equal
    (a gray mask saved as RGB); alpha channels are ignored.

    Raises:
        InvalidFileError: the file cannot be decoded, is a colour mask, or holds
            non-integer values.
    """
    array, _ = decode(path, palette="indices")
    if array.ndim == 3:
        channels = array.shape[-1]
        if channels == 2:
            array = array[..., 0]
        elif channels in (3, 4):
            rgb = array[..., :3]
            if not (
                np.array_equal(rgb[..., 0], rgb[..., 1])
                and np.array_equal(rgb[..., 0], rgb[..., 2])
            ):
                raise InvalidFileError(
                    f"Mask '{path}' is a colour image whose channels differ. A mask must "
                    "hold one value a pixel: save it as a grayscale image of class ids, "
                    "or as a palette (indexed) PNG whose indices are the class ids.",
                    path,
                )
            array = rgb[..., 0]
        else:
            raise InvalidFileError(
                f"Mask '{path}' has shape {array.shape}; expected (height, width).",
                path,
            )
    return integer_values(array, path)


def integer_values(array, path):
    """A mask's values as integers: whole floats as int64, bools as uint8.

    The one rule of image and volume masks (`read_mask_values` and
    `SegmentationDataset.from_volumes`).

    Raises:
        InvalidFileError: the mask `path` holds non-integer or non-finite floats.
    """
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise InvalidFileError(
                f"Mask '{path}' holds non-integer floating point values; masks must hold "
                "class ids (integers) or binary values.",
                path,
            )
        array = array.astype(np.int64)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    return array


def _distinct_values(array):
    if array.dtype in (np.uint8, np.uint16) and array.size:
        counts = np.bincount(array.ravel(), minlength=1)
        return np.flatnonzero(counts)
    return np.unique(array)


def _preview(values, limit=10):
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def is_label_image(distinct, dtype):
    """Whether a binary mask's `distinct` values are those of a label image.

    A label image (as StarDist, Cellpose and QuPath write) holds 0 for background and
    the ids 1..N of its objects: several positive values, none of them the maximum of
    its integer `dtype`. A mask that reaches that maximum besides other positive
    values (0/128/255, or a 0/255 mask with JPEG artefacts) is not one.
    """
    foreground = distinct[distinct != 0]
    if len(foreground) < 2 or foreground[0] < 0:
        return False
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else None
    return top is None or foreground[-1] < top


def check_mask_values(values, path, num_classes, mask_threshold=None, ignore_class=None):
    """Checks raw mask values against the binary or class-id rule; see `convert_mask`.

    Returns:
        `True` when a binary mask (`num_classes=1`, no `mask_threshold`) is read as a
        label image (see `is_label_image`), else `False`.
    """
    distinct = _distinct_values(values)
    if num_classes == 1:
        if mask_threshold is not None:
            return False
        if is_label_image(distinct, values.dtype):
            return True
        foreground = distinct[distinct != 0]
        if len(foreground) > 1 or (len(foreground) == 1 and foreground[0] < 0):
            raise InvalidFileError(
                f"Mask '{path}' is not binary: it holds {len(distinct)} distinct values "
                f"({_preview(distinct)}). With num_classes=1 a mask must hold 0 for "
                "background and one positive value for foreground (such as 0/1 or "
                "0/255), or the object ids 1..N of a label image (below its type's "
                f"maximum). Pass {option('mask_threshold', ...)} to binarise it by value, "
                f"or {option('num_classes', ...)} if its values are class ids.",
                path,
            )
        return False
    valid = (distinct >= 0) & (distinct < num_classes)
    if ignore_class is not None:
        valid |= distinct == ignore_class
    bad = distinct[~valid]
    if len(bad):
        hint = ""
        if set(distinct.tolist()) <= {0, 255}:
            hint = " It looks like a binary 0/255 mask: use num_classes=1."
        ignore = "" if ignore_class is None else f" or ignore_class={ignore_class}"
        raise InvalidFileError(
            f"Mask '{path}' holds values ({_preview(bad)}) that are not class ids in "
            f"[0, {num_classes - 1}] (num_classes={num_classes}){ignore}.{hint}",
            path,
        )
    return False


def convert_mask(values, path, num_classes, mask_threshold=None, ignore_class=None):
    """Turns raw mask values into the training target, `(height, width, 1)`.

    With `num_classes == 1`: float32 0/1, foreground where the value is > 0 (the mask
    must then hold one value besides 0, or be a label image: see `is_label_image`),
    or > `mask_threshold` when given (any values allowed). With `num_classes > 1`:
    int32 class ids, each in `[0, num_classes)` or equal to `ignore_class`.
    """
    check_mask_values(values, path, num_classes, mask_threshold, ignore_class)
    if num_classes == 1:
        threshold = 0 if mask_threshold is None else mask_threshold
        return (values > threshold).astype(np.float32)[..., None]
    return values.astype(np.int32)[..., None]


def read_mask(path, num_classes=1, mask_threshold=None, ignore_class=None):
    """Reads and converts a mask file; see `convert_mask`."""
    return convert_mask(read_mask_values(path), path, num_classes, mask_threshold, ignore_class)
