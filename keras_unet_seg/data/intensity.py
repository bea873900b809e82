"""Intensity normalization: one rule for every path that reads an image.

Training (`SegmentationDataset`), evaluation, prediction and the command all call
`normalize_image` on whole images, before any resizing or tiling, with the spec a
model was trained with (`intensity_spec`), so the model sees the same values
everywhere.
"""

import warnings

import numpy as np

from keras_unet_seg._errors import DataError
from keras_unet_seg._validation import invalid_value, is_real

__all__ = ["intensity_spec", "normalize_image", "normalize_volume"]

INTENSITY_MODES = ("auto", "scale", "percentile", "minmax", "standardize", "window", None)
_OPTIONS = ("mode", "low", "high", "per_channel", "epsilon", "center", "width")
_DEFAULTS = {"low": 1.0, "high": 99.8, "per_channel": False, "epsilon": 1e-6}
# A file under "scale" whose values span less than this fraction of its dtype's range
# arrives near zero: a 12-bit camera's 0-4095 in a 16-bit file is 1/16.
_LOW_RANGE_FRACTION = 1 / 64


def intensity_spec(intensity="auto"):
    """Validates an intensity option and returns it as a complete dict.

    Args:
        intensity: a mode name (`"auto"`, `"scale"`, `"percentile"`, `"minmax"`,
            `"standardize"`), `None` (values as stored), or a dict with the key
            `"mode"` and any of `low`, `high`, `per_channel`, `epsilon` (the
            arguments of `normalize_image`); a window (such as a CT window in
            Hounsfield units) is `{"mode": "window", "center": 40, "width": 400}`.

    Returns:
        A dict with every key of `normalize_image`'s options (`center` and `width`
        under `"window"` only), JSON-serializable: what a run's `config.json`
        stores so that prediction repeats it.

    Example:

    >>> intensity_spec("percentile")
    {'mode': 'percentile', 'low': 1.0, 'high': 99.8, 'per_channel': False, 'epsilon': 1e-06}
    """
    expected = f"one of {INTENSITY_MODES} or a dict with a 'mode' key and any of {_OPTIONS[1:]}"
    if isinstance(intensity, dict):
        unknown = sorted(set(intensity) - set(_OPTIONS))
        if "mode" not in intensity or unknown:
            raise invalid_value("intensity", expected, intensity)
        spec = {**_DEFAULTS, **intensity}
    else:
        spec = {**_DEFAULTS, "mode": intensity}
    if spec["mode"] not in INTENSITY_MODES:
        raise invalid_value("intensity", expected, intensity)
    low, high = spec["low"], spec["high"]
    if not (is_real(low) and is_real(high) and 0 <= low < high <= 100):
        raise invalid_value("intensity", "percentiles with 0 <= low < high <= 100", intensity)
    if not isinstance(spec["per_channel"], bool):
        raise invalid_value("intensity", "per_channel to be a bool", intensity)
    epsilon = spec["epsilon"]
    if not (is_real(epsilon) and epsilon > 0):
        raise invalid_value("intensity", "a positive epsilon", intensity)
    checked = {
        "mode": spec["mode"],
        "low": float(low),
        "high": float(high),
        "per_channel": spec["per_channel"],
        "epsilon": float(epsilon),
    }
    return {**checked, **_window(spec, intensity)}


def _window(spec, intensity):
    """`{"center": ..., "width": ...}` of a `"window"` spec (checked), else `{}`."""
    given = [key for key in ("center", "width") if spec.get(key) is not None]
    if spec["mode"] != "window":
        if given:
            raise invalid_value("intensity", f"{given} with mode 'window' only", intensity)
        return {}
    center, width = spec.get("center"), spec.get("width")
    if not (is_real(center) and is_real(width) and width > 0):
        raise invalid_value(
            "intensity", "a 'window' with a number 'center' and a positive 'width'", intensity
        )
    return {"center": float(center), "width": float(width)}


def _dtype_range(dtype):
    """The value a full-scale pixel of `dtype` has under "scale" (None for floats)."""
    if dtype == np.bool_:
        return 1.0
    if dtype == np.uint8:
        return 255.0
    if dtype.kind in "iu":
        # Pillow's mode "I" (32-bit integers) holds 16-bit data in practice.
        return 65535.0
    return None


def _work_dtype(image):
    """float32 where it holds every value of `image` exactly, else float64."""
    if image.dtype.itemsize <= 2 or image.dtype == np.float32:
        return np.float32
    exact = -(2**24) <= image.min() and image.max() <= 2**24  # float32's integers
    return np.float32 if image.dtype.kind in "iu" and exact else np.float64


def _rescale(image, low, high, epsilon):
    """`(image - low) / (high - low)` in `_work_dtype`; zeros where `high - low` is below
    `epsilon`. One array the size of the image is made (in place from there)."""
    dtype = _work_dtype(image)
    span = np.asarray(high - low, np.float64)
    flat = span <= epsilon
    values = image.astype(dtype)
    values -= np.asarray(low, dtype)
    values /= np.where(flat, 1.0, span).astype(dtype)
    if np.any(flat):
        values *= np.logical_not(flat)
    return values


def check_finite(image):
    """Raises a `ValueError` if a floating point image holds NaN or infinite values."""
    if image.dtype.kind == "f" and not np.all(np.isfinite(image)):
        bad = int(np.size(image) - np.count_nonzero(np.isfinite(image)))
        raise DataError(
            f"The image holds {bad} NaN or infinite values of {image.size}; an image must "
            "hold finite numbers."
        )


def normalize_image(
    image,
    mode="auto",
    *,
    low=1.0,
    high=99.8,
    per_channel=False,
    epsilon=1e-6,
    center=None,
    width=None,
):
    """Maps an image's stored values to the float32 values a model sees.

    Normalise whole images, before resizing or tiling: statistics of a tile are not
    those of its image. The modes:

    - `"auto"` (default): 8-bit images divided by 255 (bool by 1); every other
      dtype (16- and 32-bit integers, floats) as `"percentile"`. For a folder of
      any files: photos, 16-bit and float microscopy.
    - `"scale"`: divided by the dtype's range: 8-bit by 255, 16- and 32-bit
      integers by 65535, floats as stored. For data whose absolute level matters
      (calibrated intensities).
    - `"percentile"`: the `low` percentile to 0 and the `high` one to 1, not
      clipped (the convention of CSBDeep, StarDist and Cellpose). For 12/16-bit or
      float images that use a small part of their range.
    - `"minmax"`: minimum to 0, maximum to 1. For images without outliers.
    - `"standardize"`: zero mean and unit standard deviation (`epsilon` added to
      it). For images whose contrast varies a lot.
    - `"window"`: the values from `center - width / 2` to `center + width / 2` to
      [0, 1], clipped: a CT window in Hounsfield units (such as center 40, width
      400 for soft tissue), whose absolute levels carry the meaning.
    - `None`: the stored values, as float32. For values already normalised.

    A flat image (or a flat channel with `per_channel=True`), whose range is below
    `epsilon`, becomes zeros; under `"percentile"`, an image whose two percentiles
    meet (a sparse image) falls back to `"minmax"`.

    Args:
        image: array `(height, width)` or `(height, width, channels)`, any real
            dtype, finite values.
        mode: one of the modes above. Default `"auto"`.
        low: float, default 1.0. Low percentile of `"percentile"` (and `"auto"`).
        high: float, default 99.8. High percentile of `"percentile"` (and `"auto"`).
        per_channel: bool, default `False`. Statistics of each channel apart
            (`"percentile"`, `"minmax"`, `"standardize"`) rather than of all channels
            together, which keeps colours.
        epsilon: float, default 1e-6. Added to the standard deviation; the smallest
            range that is not flat.
        center: float, the centre of `"window"` (required by it, else `None`).
        width: float > 0, the width of `"window"` (required by it, else `None`).

    Returns:
        A float32 array of the image's shape.

    Raises:
        ValueError: a bad argument, a non-numeric array, or NaN or infinite values.

    Example:

    >>> import numpy as np
    >>> image = np.array([[100, 600], [1100, 600]], dtype="uint16")
    >>> normalize_image(image, "minmax").tolist()
    [[0.0, 0.5], [1.0, 0.5]]
    >>> normalize_image(np.array([[0, 255]], dtype="uint8")).tolist()
    [[0.0, 1.0]]
    """
    options = {"low": low, "high": high, "per_channel": per_channel, "epsilon": epsilon}
    spec = intensity_spec({"mode": mode, **options, "center": center, "width": width})
    image = np.asarray(image)
    if image.dtype.kind not in "biuf" or image.ndim not in (2, 3):
        raise invalid_value(
            "image",
            "a numeric array (height, width) or (height, width, channels)",
            f"array of dtype {image.dtype} and shape {image.shape}",
        )
    check_finite(image)
    return _normalize(image, spec)


def _normalize(image, spec):
    """`normalize_image` of a checked image and a checked spec."""
    mode = spec["mode"]
    if mode == "auto":
        mode = "scale" if image.dtype in (np.uint8, np.bool_) else "percentile"
    if mode is None:
        return image.astype(np.float32)
    if mode == "scale":
        return _scale(image, warn_low_range=spec["mode"] == "scale")
    if mode == "window":
        low = spec["center"] - spec["width"] / 2
        values = _rescale(image, np.float64(low), np.float64(low + spec["width"]), spec["epsilon"])
        return np.clip(values, 0, 1).astype(np.float32, copy=False)
    axes = (0, 1) if spec["per_channel"] and image.ndim == 3 else None
    if mode == "standardize":
        values = image.astype(_work_dtype(image))
        mean = values.mean(axis=axes, keepdims=axes is not None, dtype=np.float64)
        std = values.std(axis=axes, keepdims=axes is not None)
        values -= mean.astype(values.dtype)
        values /= (std + spec["epsilon"]).astype(values.dtype)
        return values.astype(np.float32, copy=False)
    return _percentile_or_minmax(image, mode, axes, spec).astype(np.float32, copy=False)


def _scale(image, warn_low_range):
    """The image divided by its dtype's range (floats as stored)."""
    scale = _dtype_range(image.dtype)
    if scale is None:
        return image.astype(np.float32)
    if image.dtype.kind in "iu" and image.size:
        if image.dtype not in (np.uint8, np.uint16) and (image.min() < 0 or image.max() > 65535):
            raise DataError(
                f"The image holds {image.dtype} values outside [0, 65535] (min "
                f"{image.min()}, max {image.max()}), which intensity 'scale' cannot map "
                "to [0, 1]; use intensity 'auto', 'percentile' or 'minmax'."
            )
        span = float(image.max()) - float(image.min())
        if warn_low_range and span < scale * _LOW_RANGE_FRACTION:
            warnings.warn(
                f"An image under intensity 'scale' uses less than 1/64 of the range of "
                f"its dtype ({image.dtype}), so its values arrive close to 0 and "
                "photometric augmentation can drown them. Use intensity 'auto' "
                "(percentiles of each image) unless absolute levels matter.",
                UserWarning,
                stacklevel=3,
            )
    values = image.astype(np.float32)  # exact: integers up to 65535 (checked above)
    values /= np.float32(scale)
    return values


def _percentile_or_minmax(image, mode, axes, spec):
    """`"minmax"`, or `"percentile"` falling back to the range where the percentiles meet.

    The statistics are those of the stored values (no float copy of an integer image).
    """
    epsilon = spec["epsilon"]
    if image.dtype == np.bool_:
        image = image.view(np.uint8)
    minimum = image.min(axis=axes, keepdims=axes is not None).astype(np.float64)
    maximum = image.max(axis=axes, keepdims=axes is not None).astype(np.float64)
    if mode == "minmax":
        return _rescale(image, minimum, maximum, epsilon)
    lower, upper = np.percentile(
        image, [spec["low"], spec["high"]], axis=axes, keepdims=axes is not None
    ).astype(np.float64)
    sparse = (upper - lower) <= epsilon
    lower = np.where(sparse, minimum, lower)
    upper = np.where(sparse, maximum, upper)
    return _rescale(image, lower, upper, epsilon)


def normalize_volume(volume, intensity="auto"):
    """Normalises a whole volume as `normalize_image` does an image.

    The statistics (percentiles, range, mean) are those of the whole volume, not of
    each slice; `per_channel` keeps the channels apart. Normalise before cutting
    patches or sliding a window, as for images before tiling.

    Args:
        volume: array `(depth, height, width, channels)` (a `Volume`'s `array`), any
            real dtype, finite values.
        intensity: an intensity option (see `intensity_spec`): `"auto"` (default:
            8-bit volumes / 255, others from their 1st to their 99.8th percentile),
            a mode name, `None`, or a dict such as `{"mode": "window", "center": 40,
            "width": 400}` (a CT window).

    Returns:
        A float32 array of the volume's shape.

    Example:

    >>> import numpy as np
    >>> ct = np.array([-1000, -160, 40, 240, 3000], "int16").reshape(1, 1, 5, 1)
    >>> window = {"mode": "window", "center": 40, "width": 400}
    >>> normalize_volume(ct, window).ravel().tolist()
    [0.0, 0.0, 0.5, 1.0, 1.0]
    """
    volume = np.asarray(volume)
    if volume.ndim != 4:
        raise invalid_value(
            "volume", "an array (depth, height, width, channels)", f"shape {volume.shape}"
        )
    if volume.dtype.kind not in "biuf":
        raise invalid_value("volume", "a numeric array", f"array of dtype {volume.dtype}")
    spec = intensity_spec(intensity)
    check_finite(volume)
    depth, height, width, channels = volume.shape
    flat = volume.reshape(depth * height, width, channels)  # the same statistics
    return _normalize(flat, spec).reshape(volume.shape)
