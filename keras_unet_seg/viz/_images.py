"""Images and masks in the forms that the overlays and figures draw."""

import numpy as np

from keras_unet_seg._arrays import to_numpy
from keras_unet_seg._validation import invalid_value


def shape_of(x):
    """The shape of an array, a tensor or a nested list, as a tuple of ints."""
    return tuple(int(d) for d in x.shape) if hasattr(x, "shape") else np.shape(x)


def as_list(items, name):
    """A batch or a list of arrays as a list of arrays (the batch's first axis)."""
    if isinstance(items, (list, tuple)):
        return list(items)
    array = to_numpy(items)
    if array.ndim < 3:
        expected = "a batch (batch, height, width[, channels]) or a list of arrays"
        raise invalid_value(name, expected, received=f"{name}.shape={array.shape}")
    return list(array)


def image_to_uint8_rgb(image):
    """A new uint8 (H, W, 3) copy of an image; float images must be in [0, 1]."""
    array = to_numpy(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or 0 in array.shape:
        expected = (
            "an image of shape (height, width), (height, width, 1), (height, width, 3) or "
            "(height, width, 4)"
        )
        raise invalid_value("image", expected, received=f"image.shape={shape_of(image)}")
    array = _to_uint8(array[..., :3])
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array


def _to_uint8(array):
    """A new uint8 copy of an integer image in [0, 255] or a float image in [0, 1]."""
    if array.dtype == np.uint8:
        return array.copy()
    if np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            received = f"image with values in [{array.min()}, {array.max()}]"
            raise invalid_value("image", "integer values in [0, 255]", received=received)
        return array.astype("uint8")
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(np.min(array)), float(np.max(array))
        if not (np.isfinite(low) and np.isfinite(high) and low >= 0 and high <= 1):
            received = f"image.dtype={array.dtype} with values in [{low:g}, {high:g}]"
            expected = "a float image in [0, 1] (or uint8 in [0, 255])"
            raise invalid_value("image", expected, received=received)
        scaled = array * np.float32(255)  # float32 (no float64 copy of a large image)
        return np.round(scaled, out=scaled).astype("uint8")
    raise invalid_value("image", "a uint8 or float image", received=f"image.dtype={array.dtype}")


def mask_to_class_ids(mask, threshold, ignore_class):
    """A new int32 (H, W) array of class ids, 0 for background and ignored pixels."""
    array = to_numpy(mask)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] > 1:
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise invalid_value("mask", "a numeric mask", received=f"mask.dtype={array.dtype}")
        return np.argmax(array, axis=-1).astype("int32")
    if array.ndim != 2:
        expected = (
            "a mask of shape (height, width), (height, width, 1) or (height, width, num_classes)"
        )
        raise invalid_value("mask", expected, received=f"mask.shape={shape_of(mask)}")
    if array.dtype == bool:
        return array.astype("int32")
    if np.issubdtype(array.dtype, np.floating):
        return _threshold(array, threshold)
    return _class_ids(array, ignore_class)


def _threshold(array, threshold):
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    if low < 0 or high > 1:
        expected = "probabilities in [0, 1] for a float mask (cast class ids to an integer dtype)"
        received = f"mask.dtype={array.dtype} with values in [{low:g}, {high:g}]"
        raise invalid_value("mask", expected, received=received)
    return (array >= threshold).astype("int32")


def _class_ids(array, ignore_class):
    if not np.issubdtype(array.dtype, np.integer):
        expected = "a bool, integer or float mask"
        raise invalid_value("mask", expected, received=f"mask.dtype={array.dtype}")
    ids = array.astype("int64")
    if ignore_class is not None:
        ids = np.where(ids == ignore_class, 0, ids)
    if ids.min() < 0:
        expected = "non-negative class ids (set `ignore_class` for a void label)"
        raise invalid_value("mask", expected, received=f"a mask with minimum {ids.min()}")
    return ids.astype("int32")
