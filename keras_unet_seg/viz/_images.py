"""Images and masks in the forms that the overlays and figures draw."""

import numpy as np

from keras_unet_seg._arrays import to_numpy


def shape_of(x):
    """The shape of an array, a tensor or a nested list, as a tuple of ints."""
    return tuple(int(d) for d in x.shape) if hasattr(x, "shape") else np.shape(x)


def as_list(items, name):
    """A batch or a list of arrays as a list of arrays (the batch's first axis)."""
    if isinstance(items, (list, tuple)):
        return list(items)
    array = to_numpy(items)
    if array.ndim < 3:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a batch (batch, height, width[, "
            f"channels]) or a list of arrays. Received: {name}.shape={array.shape}"
        )
    return list(array)


def image_to_uint8_rgb(image):
    """A new uint8 (H, W, 3) copy of an image; float images must be in [0, 1]."""
    array = to_numpy(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or 0 in array.shape:
        raise ValueError(
            "Invalid value for argument `image`. Expected an image of shape (height, width), "
            "(height, width, 1), (height, width, 3) or (height, width, 4). "
            f"Received: image.shape={shape_of(image)}"
        )
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
            raise ValueError(
                "Invalid value for argument `image`. Expected integer values in [0, 255]. "
                f"Received: image with values in [{array.min()}, {array.max()}]"
            )
        return array.astype("uint8")
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(np.min(array)), float(np.max(array))
        if not (np.isfinite(low) and np.isfinite(high) and low >= 0 and high <= 1):
            raise ValueError(
                "Invalid value for argument `image`. Expected a float image in [0, 1] (or uint8 "
                f"in [0, 255]). Received: image.dtype={array.dtype} with values in "
                f"[{low:g}, {high:g}]"
            )
        scaled = array * np.float32(255)  # float32 (no float64 copy of a large image)
        return np.round(scaled, out=scaled).astype("uint8")
    raise ValueError(
        "Invalid value for argument `image`. Expected a uint8 or float image. "
        f"Received: image.dtype={array.dtype}"
    )


def mask_to_class_ids(mask, threshold, ignore_class):
    """A new int32 (H, W) array of class ids, 0 for background and ignored pixels."""
    array = to_numpy(mask)
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
            f"Received: mask.shape={shape_of(mask)}"
        )
    if array.dtype == bool:
        return array.astype("int32")
    if np.issubdtype(array.dtype, np.floating):
        return _threshold(array, threshold)
    return _class_ids(array, ignore_class)


def _threshold(array, threshold):
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    if low < 0 or high > 1:
        raise ValueError(
            "Invalid value for argument `mask`. Expected probabilities in [0, 1] for a "
            "float mask (cast class ids to an integer dtype). "
            f"Received: mask.dtype={array.dtype} with values in [{low:g}, {high:g}]"
        )
    return (array >= threshold).astype("int32")


def _class_ids(array, ignore_class):
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            "Invalid value for argument `mask`. Expected a bool, integer or float mask. "
            f"Received: mask.dtype={array.dtype}"
        )
    ids = array.astype("int64")
    if ignore_class is not None:
        ids = np.where(ids == ignore_class, 0, ids)
    if ids.min() < 0:
        raise ValueError(
            "Invalid value for argument `mask`. Expected non-negative class ids (set "
            f"`ignore_class` for a void label). Received: a mask with minimum {ids.min()}"
        )
    return ids.astype("int32")
