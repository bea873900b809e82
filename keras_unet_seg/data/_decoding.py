"""Decoding image and mask files: headers, EXIF orientation, full-depth readers.

Plain Python, NumPy and Pillow (and tifffile for the TIFFs Pillow cannot read), so
that the checks run before any `tf.data` pipeline exists and the pipeline decodes
with exactly the code that the checks ran. TensorFlow is imported lazily, only to
read 16-bit multi-channel PNG files, which Pillow truncates to 8 bits.
"""

import os
from dataclasses import dataclass

import numpy as np

from keras_unet_seg.data._tensorflow import import_tf

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff")

# Pillow's `Image.format` values accepted for each extension.
_FORMATS_BY_EXTENSION = {
    ".bmp": ("BMP", "DIB"),
    ".gif": ("GIF",),
    ".jpeg": ("JPEG", "MPO"),
    ".jpg": ("JPEG", "MPO"),
    ".png": ("PNG",),
    ".tif": ("TIFF",),
    ".tiff": ("TIFF",),
}

# Channels of Pillow's modes once decoded (palette images give their colours).
_MODE_CHANNELS = {"LA": 2, "La": 2, "PA": 4, "RGBA": 4, "RGBa": 4}
_MODE_CHANNELS.update(dict.fromkeys(("RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"), 3))
# The EXIF orientation tag, and the orientations that swap height and width.
_ORIENTATION = 0x0112
_TRANSPOSING = (5, 6, 7, 8)


class InvalidFileError(ValueError):
    """A file that cannot be used as an image or a mask; the message names it.

    `path` is the file at fault (for a pair of different sizes, the mask).
    """

    def __init__(self, message, path=None):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Header:
    """What Pillow's header says about a file (no pixel decoded)."""

    path: str
    format: str
    mode: str
    height: int
    width: int
    channels: int = 1
    orientation: int = 1


def max_image_pixels():
    """The largest image, in pixels, any decoder here accepts: Pillow's limit.

    Set `PIL.Image.MAX_IMAGE_PIXELS` to change it (`None`: no limit).
    """
    return _import_pil().MAX_IMAGE_PIXELS


def _check_pixels(path, height, width):
    limit = max_image_pixels()
    if limit is not None and height * width > limit:
        raise InvalidFileError(
            f"File '{path}' is {height}x{width} = {height * width} pixels, more than the "
            f"limit of {limit} (PIL.Image.MAX_IMAGE_PIXELS), so it is not decoded: it could "
            "be a decompression bomb. If you trust it, raise PIL.Image.MAX_IMAGE_PIXELS "
            "(None removes the limit).",
            path,
        )


def _orientation(image):
    """The EXIF orientation of a Pillow image, 1 (upright) when it has none."""
    try:
        value = image.getexif().get(_ORIENTATION, 1)
    except Exception:  # a damaged EXIF block is no orientation
        return 1
    return value if value in range(1, 9) else 1


def apply_orientation(array, orientation):
    """Turns a decoded `(height, width, ...)` array upright by its EXIF orientation.

    The same transposition as Pillow's `ImageOps.exif_transpose`, on arrays of any
    dtype and channel count (16-bit files decoded without Pillow included).
    """
    if orientation in (2, 3):
        array = array[:, ::-1]
    if orientation in (3, 4):
        array = array[::-1]
    if orientation in _TRANSPOSING:
        array = np.swapaxes(array, 0, 1)
        if orientation in (6, 7):
            array = array[:, ::-1]
        if orientation in (7, 8):
            array = array[::-1]
    return np.ascontiguousarray(array)


def _import_pil():
    from PIL import Image

    return Image


def read_header(path):
    """Opens `path` with Pillow (header only) and checks size, format and extension.

    Raises:
        InvalidFileError: the file is empty, not an image, or its content does not
            match its extension (a BMP named `.jpg`).
    """
    _check_regular_file(path)
    Image = _import_pil()
    try:
        with Image.open(path) as image:
            header = _pillow_header(path, image)
    except Image.DecompressionBombError as error:
        raise InvalidFileError(
            f"File '{path}' is not decoded: {error}. Raise PIL.Image.MAX_IMAGE_PIXELS "
            "(None removes the limit) if you trust it.",
            path,
        ) from None
    except Exception as error:  # Pillow raises many types for bad files.
        header = _tifffile_header(path)
        if header is not None:
            _check_pixels(path, header.height, header.width)
            return header
        raise InvalidFileError(
            f"File '{path}' is not a readable image: {type(error).__name__}: {error}.",
            path,
        ) from None
    _check_pixels(path, header.height, header.width)
    _check_extension(path, header.format)
    return header


def _check_regular_file(path):
    """Raises unless `path` is a regular, non-empty file."""
    try:
        regular = os.path.isfile(path)
        size = os.path.getsize(path)
    except OSError as error:
        raise InvalidFileError(f"File '{path}' cannot be read: {error}.", path) from None
    if not regular:
        raise InvalidFileError(f"'{path}' is not a regular file (a pipe or a device?).", path)
    if size == 0:
        raise InvalidFileError(f"File '{path}' is empty (0 bytes).", path)


def _pillow_header(path, image):
    """The `Header` of an opened Pillow image, its size upright."""
    orientation = _orientation(image)
    height, width = image.height, image.width
    if orientation in _TRANSPOSING:
        height, width = width, height
    channels = _MODE_CHANNELS.get(image.mode, 1)
    if image.mode == "P":
        channels = 4 if "transparency" in image.info else 3
    return Header(path, image.format, image.mode, height, width, channels, orientation)


def _check_extension(path, file_format):
    """Raises unless the extension is an image extension of the file's format."""
    extension = os.path.splitext(path)[1].lower()
    expected = _FORMATS_BY_EXTENSION.get(extension)
    if expected is None:
        raise InvalidFileError(
            f"File '{path}' has the extension '{extension}', which is not one of the "
            f"supported image extensions ({', '.join(IMAGE_EXTENSIONS)}).",
            path,
        )
    if file_format not in expected:
        raise InvalidFileError(
            f"File '{path}' has the extension '{extension}' but contains "
            f"{file_format} data. Rename it with the extension of its format, or "
            f"re-save it as {expected[0]}.",
            path,
        )


def _tile_rawmode(image):
    tile = getattr(image, "tile", None) or []
    if not tile:
        return ""
    args = tile[0][3] if len(tile[0]) > 3 else tile[0].args
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return args if isinstance(args, str) else ""


def _needs_full_depth_reader(image):
    """True for multi-channel files of more than 8 bits a channel, which Pillow would
    truncate to 8 bits (16-bit RGB PNG) or misread (16-bit planar RGB TIFF)."""
    if image.mode not in ("RGB", "RGBA", "RGBX", "CMYK", "LAB", "YCbCr"):
        return False
    if image.format == "TIFF":
        bits = getattr(image, "tag_v2", {}).get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return any(b > 8 for b in bits)
    return ";16" in _tile_rawmode(image)


def _tifffile_header(path):
    """Header of a TIFF that Pillow cannot open (such as 2 or 5 channels), if tifffile can."""
    if os.path.splitext(path)[1].lower() not in (".tif", ".tiff"):
        return None
    try:
        import tifffile

        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages[0]
            height, width = page.imagelength, page.imagewidth
            channels = page.samplesperpixel
    except Exception:
        return None
    return Header(path, "TIFF", "tifffile", int(height), int(width), int(channels))


def _read_png_16(path):
    tf = import_tf()

    with open(path, "rb") as f:
        data = f.read()
    return tf.io.decode_png(data, channels=0, dtype=tf.uint16).numpy()


def _read_tiff_full_depth(path):
    """A TIFF through tifffile: `(array, has_alpha)`, channels last."""
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[0]
        array = np.asarray(page.asarray())
        if page.planarconfig == 2 and array.ndim == 3:
            array = np.moveaxis(array, 0, -1)  # planar (channels first) to channels last
        # ExtraSamples 1 and 2 are associated and unassociated alpha; other extra
        # channels (0, unspecified) are data, as microscopes write them.
        extra = page.extrasamples or ()
        has_alpha = array.ndim == 3 and any(int(v) in (1, 2) for v in extra)
    return array, has_alpha


def decode(path, palette):
    """Decodes the first frame of `path`, upright: `(array, has_alpha)`, native dtype.

    Palette images give their indices (`palette="indices"`, for masks: class ids) or
    their colours (`palette="colors"`, for images). The header is checked first
    (`read_header`: the pixel limit included), and the EXIF orientation applied.
    """
    Image = _import_pil()
    header = read_header(path)
    if header.mode == "tifffile":  # a TIFF only tifffile reads
        return _read_tiff_full_depth(path)
    try:
        with Image.open(path) as image:
            if _needs_full_depth_reader(image):
                if image.format == "PNG":
                    array = _read_png_16(path)
                    has_alpha = array.shape[-1] in (2, 4)
                else:
                    array, has_alpha = _read_tiff_full_depth(path)
            else:
                array, has_alpha = _pillow_array(image, palette)
    except InvalidFileError:
        raise
    except Exception as error:
        raise InvalidFileError(
            f"File '{path}' cannot be decoded (truncated or corrupt?): "
            f"{type(error).__name__}: {error}.",
            path,
        ) from None
    return apply_orientation(array, header.orientation), has_alpha


def _pillow_array(image, palette):
    image.load()
    mode = image.mode
    if mode in ("P", "PA") and palette == "indices":
        indices = image if mode == "P" else image.getchannel(0)
        return np.asarray(indices), False
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        return np.asarray(image.convert("RGBA" if has_alpha else "RGB")), has_alpha
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(image.convert("RGB")), False
    array = np.asarray(image)
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    return array, mode in ("LA", "La", "RGBA", "RGBa")
