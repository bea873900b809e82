"""Decoding image and mask files: headers, EXIF orientation, full-depth readers.

Plain Python, NumPy and Pillow (and tifffile for the TIFFs Pillow cannot read), so
that the checks run before any `tf.data` pipeline exists and the pipeline decodes
with exactly the code that the checks ran. TensorFlow is imported lazily, only to
read 16-bit multi-channel PNG files, which Pillow truncates to 8 bits.
"""

import os
import struct
from dataclasses import dataclass, replace

import numpy as np

from keras_unet_seg._errors import DataError
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
# Pillow's default pixel limit is "around a quarter gigabyte for a 24-bit (3 bpp) image".
_BYTES_PER_LIMIT_PIXEL = 3


class InvalidFileError(DataError):
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
    bytes_per_sample: int = 1


def max_image_pixels():
    """The largest image, in pixels, any decoder here accepts: Pillow's limit.

    Set `PIL.Image.MAX_IMAGE_PIXELS` to change it (`None`: no limit).
    """
    return _import_pil().MAX_IMAGE_PIXELS


def max_decoded_bytes():
    """The most bytes an image may decode to: 3 a pixel of `max_image_pixels()`.

    Pillow's pixel limit is meant as a quarter gigabyte of 8-bit RGB; the same bytes
    bound every other depth and channel count (16-bit RGBA, 300-channel TIFFs).
    `None` when `PIL.Image.MAX_IMAGE_PIXELS` is `None`.
    """
    pixels = max_image_pixels()
    return None if pixels is None else _BYTES_PER_LIMIT_PIXEL * pixels


def size_excess(height, width, channels, bytes_per_sample):
    """What makes an image of this size too large to decode, in words; `None` if nothing.

    An image is too large when it has more than `max_image_pixels()` pixels or
    decodes to more than `max_decoded_bytes()` bytes (all channels, all bytes).
    """
    pixels, limit = height * width, max_image_pixels()
    nbytes = pixels * channels * bytes_per_sample
    if limit is None or (pixels <= limit and nbytes <= max_decoded_bytes()):
        return None
    return (
        f"{height}x{width} pixels x {channels} channels x {bytes_per_sample} "
        f"byte{'s' if bytes_per_sample > 1 else ''} = "
        f"{nbytes:,} bytes, more than the limit of {limit:,} pixels and "
        f"{max_decoded_bytes():,} bytes (PIL.Image.MAX_IMAGE_PIXELS and 3 bytes a pixel "
        "of it)"
    )


def _check_size(header):
    excess = size_excess(header.height, header.width, header.channels, header.bytes_per_sample)
    if excess is not None:
        raise InvalidFileError(
            f"File '{header.path}' would decode to {excess}, so it is not decoded: it could "
            "be a decompression bomb. If you trust it, raise PIL.Image.MAX_IMAGE_PIXELS "
            "(None removes the limit).",
            header.path,
        )


def _orientation(image):
    """The EXIF orientation of a Pillow image, 1 (upright) when it has none."""
    try:
        if image.format == "PNG" and "exif" not in image.info:
            # Pillow would decode every pixel to look for an eXIf chunk after the data.
            exif = _png_exif_after_data(image.filename)
        else:
            exif = image.getexif()
        value = exif.get(_ORIENTATION, 1)
    except Exception:  # a damaged EXIF block is no orientation
        return 1
    return value if value in range(1, 9) else 1


def _png_exif_after_data(path):
    """The `PIL.Image.Exif` of a PNG's eXIf chunk found by skipping chunks (empty if none)."""
    exif = _import_pil().Exif()
    with open(path, "rb") as f:
        f.seek(8)  # the signature
        while len(head := f.read(8)) == 8:
            length, kind = struct.unpack(">I4s", head)
            if kind == b"eXIf":
                exif.load(b"Exif\x00\x00" + f.read(length))
                break
            if kind == b"IEND":
                break
            f.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
    return exif


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

    The size is checked before any pixel is decoded: the pixels and the decoded bytes
    (height x width x channels x bytes a sample) against `size_excess`'s limits.

    Raises:
        InvalidFileError: the file is empty, not an image, larger than the limits, or
            its content does not match its extension (a BMP named `.jpg`).
    """
    _check_regular_file(path)
    Image = _import_pil()
    try:
        with Image.open(path) as image:
            header = _pillow_header(path, image)
    except InvalidFileError:
        raise
    except Image.DecompressionBombError as error:
        raise InvalidFileError(
            f"File '{path}' is not decoded: {error}. Raise PIL.Image.MAX_IMAGE_PIXELS "
            "(None removes the limit) if you trust it.",
            path,
        ) from None
    except Exception as error:  # Pillow raises many types for bad files.
        header = _tifffile_header(path)
        if header is not None:
            _check_size(header)
            return header
        raise InvalidFileError(
            f"File '{path}' is not a readable image: {type(error).__name__}: {error}.",
            path,
        ) from None
    _check_size(header)
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
    """The `Header` of an opened Pillow image, its size upright, checked (`_check_size`)."""
    channels = _MODE_CHANNELS.get(image.mode, 1)
    if image.mode == "P":
        channels = 4 if "transparency" in image.info else 3
    header = Header(
        path, image.format, image.mode, image.height, image.width, channels, 1, _sample_bytes(image)
    )
    _check_size(header)  # before the EXIF, which some formats decode pixels to find
    orientation = _orientation(image)
    if orientation in _TRANSPOSING:
        return replace(header, height=image.width, width=image.height, orientation=orientation)
    return replace(header, orientation=orientation)


def _sample_bytes(image):
    """Bytes of one decoded sample of an opened Pillow image (2 for 16-bit RGB PNG)."""
    from PIL import ImageMode

    if _needs_full_depth_reader(image):
        return -(-max(_tiff_bits(image)) // 8) if image.format == "TIFF" else 2
    try:
        return np.dtype(ImageMode.getmode(image.mode).typestr).itemsize
    except (KeyError, TypeError):  # a mode NumPy has no dtype for: Pillow's widest
        return 4


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
        return any(b > 8 for b in _tiff_bits(image))
    return ";16" in _tile_rawmode(image)


def _tiff_bits(image):
    """The BitsPerSample of a TIFF opened by Pillow, as a tuple."""
    bits = getattr(image, "tag_v2", {}).get(258, (8,))
    return bits if isinstance(bits, tuple) else (bits,)


def _tifffile_header(path):
    """Header of a TIFF that Pillow cannot open (such as 2 or 5 channels), if tifffile can."""
    if os.path.splitext(path)[1].lower() not in (".tif", ".tiff"):
        return None
    try:
        import tifffile

        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages[0]
            height, width = int(page.imagelength), int(page.imagewidth)
            # Channels as decoded: every sample of the page (its depth included).
            channels = int(np.prod(page.shape)) // max(height * width, 1)
            sample_bytes = np.dtype(page.dtype).itemsize
    except Exception:
        return None
    return Header(path, "TIFF", "tifffile", height, width, channels, 1, sample_bytes)


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
