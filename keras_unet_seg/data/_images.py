"""Reading an image file as the float32 array a model is given: channels, alpha, intensity."""

import numpy as np

from keras_unet_seg._errors import UserError
from keras_unet_seg._validation import check_choice
from keras_unet_seg.data._decoding import InvalidFileError, decode
from keras_unet_seg.data.intensity import check_finite, intensity_spec, normalize_image

COLOR_MODES = ("grayscale", "rgb", "rgba", "native")
_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
# ITU-R 601-2 luma, the weights of Pillow's `convert("L")`.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def channels_for(color_mode):
    """Channels of a color mode; `None` for `"native"` (the files' own)."""
    return _CHANNELS.get(color_mode)


def color_mode_for(channels):
    """The color mode that reads images as `channels` channels; `"native"` for others."""
    return {count: mode for mode, count in _CHANNELS.items()}.get(channels, "native")


def _select_channels(color, path, color_mode):
    """The colour channels of `color_mode` from a file's colour channels (alpha apart)."""
    channels = color.shape[-1]
    if color_mode == "native" or channels == (1 if color_mode == "grayscale" else 3):
        return color
    if channels == 1:  # gray to rgb or rgba: repeat
        return np.repeat(color, 3, axis=-1)
    if channels == 3 and color_mode == "grayscale":
        luma = color.astype(np.float32) @ _LUMA
        if color.dtype.kind in "iu":  # as Pillow's convert("L"), in the file's dtype
            return np.rint(luma).astype(color.dtype)[..., None]
        return luma[..., None]
    raise InvalidFileError(
        f"File '{path}' has {channels} channels, which color_mode={color_mode!r} cannot "
        "take (it reads 1 or 3 colour channels). Pass color_mode='native' to keep the "
        "file's own channels (a UNet then needs as many input channels).",
        path,
    )


def read_image(path, color_mode="rgb", intensity="auto"):
    """Reads an image file as the float32 array a model is given.

    The one reader of training, evaluation and prediction: the first frame of PNG,
    JPEG, BMP, GIF or TIFF (8, 16 and 32 bits, float, any channel count), turned
    upright by its EXIF orientation, its colour channels normalised as a whole with
    `normalize_image(image, **intensity_spec(intensity))`.

    Channels follow `color_mode`: `"grayscale"` (RGB to ITU-R 601-2 luma, as
    Pillow's `convert("L")`), `"rgb"` (gray repeated), `"rgba"` (an alpha channel,
    scaled by its dtype's range, or opaque 1.0 when the file has none) or
    `"native"` (the file's own channels, such as 2 or 5 from a fluorescence TIFF).
    Palette images give their colours. A 2-channel PNG is gray and alpha; a TIFF's
    channels are data unless its ExtraSamples tag marks an alpha.

    Args:
        path: the image file.
        color_mode: `"rgb"` (default), `"grayscale"`, `"rgba"` or `"native"`.
        intensity: the intensity normalization: a mode of `normalize_image`
            (default `"auto"`), `None`, or a dict (`intensity_spec`).

    Returns:
        A float32 array `(height, width, channels)`.

    Raises:
        ValueError: (an `InvalidFileError` naming the file) the file cannot be
            decoded, is larger than `PIL.Image.MAX_IMAGE_PIXELS`, holds NaN or
            infinite values, or has channels `color_mode` cannot take.
    """
    spec = intensity_spec(intensity)
    check_choice("color_mode", color_mode, COLOR_MODES)
    array, has_alpha = decode(path, palette="colors")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.dtype.kind not in "biuf":
        raise InvalidFileError(
            f"File '{path}' has shape {array.shape} and dtype {array.dtype}; expected "
            "numbers of shape (height, width) or (height, width, channels).",
            path,
        )
    try:
        check_finite(array)
        color, alpha = (array[..., :-1], array[..., -1:]) if has_alpha else (array, None)
        image = normalize_image(_select_channels(color, path, color_mode), **spec)
    except InvalidFileError:
        raise
    except UserError as error:
        raise InvalidFileError(f"File '{path}': {error}", path) from None
    if color_mode in ("rgba", "native") and (alpha is not None or color_mode == "rgba"):
        image = np.concatenate([image, _alpha_channel(alpha, image.shape[:2])], axis=-1)
    return np.ascontiguousarray(image, dtype=np.float32)


def _alpha_channel(alpha, size):
    """A file's alpha scaled to [0, 1] by its dtype's range, or opaque 1.0 without one."""
    if alpha is None:
        return np.ones((*size, 1), np.float32)
    full = np.iinfo(alpha.dtype).max if alpha.dtype.kind in "iu" else 1.0
    return alpha.astype(np.float32) / full
