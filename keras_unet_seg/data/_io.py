"""Private file helpers: listing, pairing, inspecting and decoding images and masks.

Everything here is plain Python, NumPy and Pillow, so that the checks run before any
`tf.data` pipeline exists and the pipeline decodes with exactly the code that the
checks ran. TensorFlow is imported lazily, only to read 16-bit multi-channel PNG files,
which Pillow truncates to 8 bits.
"""

import os
from dataclasses import dataclass

import numpy as np

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

COLOR_MODES = ("grayscale", "rgb", "rgba", "native")
_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
# Channels of Pillow's modes once decoded (palette images give their colours).
_MODE_CHANNELS = {"LA": 2, "La": 2, "PA": 4, "RGBA": 4, "RGBa": 4}
_MODE_CHANNELS.update(dict.fromkeys(("RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"), 3))
# The EXIF orientation tag, and the orientations that swap height and width.
_ORIENTATION = 0x0112
_TRANSPOSING = (5, 6, 7, 8)
# ITU-R 601-2 luma, the weights of Pillow's `convert("L")`.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class InvalidFileError(ValueError):
    """A file that cannot be used as an image or a mask; the message names it.

    `path` is the file at fault (for a pair of different sizes, the mask).
    """

    def __init__(self, message, path=None):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Sample:
    """One image/mask pair found on disk, keyed by its relative path without extension."""

    key: str
    image_path: str
    mask_path: str


@dataclass(frozen=True)
class Problem:
    """A sample that cannot be used: the file at fault and why."""

    key: str
    path: str
    reason: str


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


def channels_for(color_mode):
    """Channels of a color mode; `None` for `"native"` (the files' own)."""
    return _CHANNELS.get(color_mode)


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


def list_image_files(directory):
    """Every supported image file below `directory` (recursive, sorted).

    Hidden files and folders (name starting with ".") and files whose extension is not
    an image extension are not images and are left out, as
    `keras.utils.image_dataset_from_directory` does.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(os.path.join(dirpath, name))
    return sorted(found)


def _key(directory, path):
    relative = os.path.relpath(path, directory)
    return os.path.splitext(relative)[0].replace(os.sep, "/")


def _group_by_key(directory, paths, strip_suffix=""):
    """Maps each key to the files that have it; files without the suffix go to `bad`."""
    groups, bad = {}, []
    for path in paths:
        key = _key(directory, path)
        if strip_suffix:
            if not key.endswith(strip_suffix):
                bad.append((key, path))
                continue
            key = key[: -len(strip_suffix)]
        groups.setdefault(key, []).append(path)
    return groups, bad


def pair_files(images_dir, masks_dir, mask_suffix=""):
    """Pairs images and masks by relative path without extension (plus `mask_suffix`).

    Returns:
        `(samples, problems, num_found)`: the pairs, one `Problem` for every key that
        cannot be paired, and the number of distinct keys found in both folders, so
        that `len(samples) + len(problems) == num_found`.
    """
    images, masks = list_image_files(images_dir), list_image_files(masks_dir)
    unreadable = [path for path in images + masks if not _is_utf8(path)]
    problems = [
        Problem(
            "\0" + path,
            path,
            f"File {path!r} has a name that is not valid UTF-8 (shown with \\udcXX "
            "escapes), which the tf.data pipeline cannot read; rename it.",
        )
        for path in unreadable
    ]
    images = [p for p in images if _is_utf8(p)]
    masks = [p for p in masks if _is_utf8(p)]
    image_groups, _ = _group_by_key(images_dir, images)
    mask_groups, unsuffixed = _group_by_key(masks_dir, masks, mask_suffix)
    for key, path in unsuffixed:
        # A mask whose name lacks the suffix pairs with nothing: report it under its own
        # name, prefixed so that it cannot collide with the key of a real pair.
        problems.append(
            Problem(
                "\0" + key,
                path,
                f"Mask file '{path}' has no matching image: its name does not end with "
                f"mask_suffix={mask_suffix!r}.",
            )
        )
    samples = []
    for key in sorted(set(image_groups) | set(mask_groups)):
        images = image_groups.get(key, [])
        masks = mask_groups.get(key, [])
        if len(images) > 1 or len(masks) > 1:
            files = images if len(images) > 1 else masks
            kind = "images" if len(images) > 1 else "masks"
            listed = ", ".join(f"'{p}'" for p in files)
            problems.append(
                Problem(
                    key,
                    files[0],
                    f"Found {len(files)} {kind} with the same name '{key}' and different "
                    f"extensions: {listed}. Each name must be unique so that images and "
                    "masks pair unambiguously.",
                )
            )
        elif not masks:
            problems.append(
                Problem(
                    key,
                    images[0],
                    f"Image file '{images[0]}' has no matching mask in '{masks_dir}' "
                    f"(expected a file named '{key}{mask_suffix}' with one of the "
                    f"extensions {', '.join(IMAGE_EXTENSIONS)}).",
                )
            )
        elif not images:
            problems.append(
                Problem(
                    key,
                    masks[0],
                    f"Mask file '{masks[0]}' has no matching image in '{images_dir}' "
                    f"(expected a file named '{key}' with one of the extensions "
                    f"{', '.join(IMAGE_EXTENSIONS)}).",
                )
            )
        else:
            samples.append(Sample(key, images[0], masks[0]))
    num_found = len(set(image_groups) | set(mask_groups)) + len(unsuffixed)
    num_found += len(unreadable)
    return samples, problems, num_found


def _is_utf8(path):
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def import_tf():
    """Imports TensorFlow, which the `tf.data` pipeline needs, with an install hint."""
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - tensorflow is a dependency
        raise ImportError(
            "keras_unet_seg.data needs TensorFlow for its tf.data pipeline: "
            "`pip install tensorflow`."
        ) from None
    return tf


def _import_pil():
    from PIL import Image

    return Image


def read_header(path):
    """Opens `path` with Pillow (header only) and checks size, format and extension.

    Raises:
        InvalidFileError: the file is empty, not an image, or its content does not
            match its extension (a BMP named `.jpg`).
    """
    Image = _import_pil()
    try:
        regular = os.path.isfile(path)
        size = os.path.getsize(path)
    except OSError as error:
        raise InvalidFileError(f"File '{path}' cannot be read: {error}.", path) from None
    if not regular:
        raise InvalidFileError(f"'{path}' is not a regular file (a pipe or a device?).", path)
    if size == 0:
        raise InvalidFileError(f"File '{path}' is empty (0 bytes).", path)
    try:
        with Image.open(path) as image:
            orientation = _orientation(image)
            height, width = image.height, image.width
            if orientation in _TRANSPOSING:
                height, width = width, height
            channels = _MODE_CHANNELS.get(image.mode, 1)
            if image.mode == "P":
                channels = 4 if "transparency" in image.info else 3
            header = Header(path, image.format, image.mode, height, width, channels, orientation)
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
    extension = os.path.splitext(path)[1].lower()
    expected = _FORMATS_BY_EXTENSION.get(extension)
    if expected is None:
        raise InvalidFileError(
            f"File '{path}' has the extension '{extension}', which is not one of the "
            f"supported image extensions ({', '.join(IMAGE_EXTENSIONS)}).",
            path,
        )
    if header.format not in expected:
        raise InvalidFileError(
            f"File '{path}' has the extension '{extension}' but contains "
            f"{header.format} data. Rename it with the extension of its format, or "
            f"re-save it as {expected[0]}.",
            path,
        )
    return header


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


def _decode(path, palette):
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
    from keras_unet_seg.data.intensity import check_finite, intensity_spec, normalize_image

    spec = intensity_spec(intensity)
    if color_mode not in COLOR_MODES:
        raise ValueError(
            f"Invalid value for argument `color_mode`. Expected one of {COLOR_MODES}. "
            f"Received: color_mode={color_mode!r}"
        )
    array, has_alpha = _decode(path, palette="colors")
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
    except ValueError as error:
        raise InvalidFileError(f"File '{path}': {error}", path) from None
    if color_mode in ("rgba", "native") and (alpha is not None or color_mode == "rgba"):
        if alpha is None:
            alpha = np.ones((*image.shape[:2], 1), np.float32)
        else:
            full = np.iinfo(alpha.dtype).max if alpha.dtype.kind in "iu" else 1.0
            alpha = alpha.astype(np.float32) / full
        image = np.concatenate([image, alpha], axis=-1)
    return np.ascontiguousarray(image, dtype=np.float32)


def read_mask_values(path):
    """Reads a mask as a 2-D integer array of its raw values.

    Palette (indexed) PNG and GIF masks give their palette indices, as Pascal VOC
    expects, not colours. RGB masks are accepted when their three channels are equal
    (a gray mask saved as RGB); alpha channels are ignored.

    Raises:
        InvalidFileError: the file cannot be decoded, is a colour mask, or holds
            non-integer values.
    """
    array, _ = _decode(path, palette="indices")
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


def check_mask_values(values, path, num_classes, mask_threshold=None, ignore_class=None):
    """Checks raw mask values against the binary or class-id rule; see `convert_mask`."""
    distinct = _distinct_values(values)
    if num_classes == 1:
        if mask_threshold is not None:
            return
        foreground = distinct[distinct != 0]
        if len(foreground) > 1 or (len(foreground) == 1 and foreground[0] < 0):
            raise InvalidFileError(
                f"Mask '{path}' is not binary: it holds {len(distinct)} distinct values "
                f"({_preview(distinct)}). With num_classes=1 a mask must hold 0 for "
                "background and one positive value for foreground (such as 0/1 or "
                "0/255). Pass mask_threshold=... to binarise it by value, or "
                "num_classes=... if its values are class ids.",
                path,
            )
        return
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


def convert_mask(values, path, num_classes, mask_threshold=None, ignore_class=None):
    """Turns raw mask values into the training target, `(height, width, 1)`.

    With `num_classes == 1`: float32 0/1, foreground where the value is > 0 (the mask
    must then hold at most one value besides 0), or > `mask_threshold` when given
    (any values allowed). With `num_classes > 1`: int32 class ids, each in
    `[0, num_classes)` or equal to `ignore_class`.
    """
    check_mask_values(values, path, num_classes, mask_threshold, ignore_class)
    if num_classes == 1:
        threshold = 0 if mask_threshold is None else mask_threshold
        return (values > threshold).astype(np.float32)[..., None]
    return values.astype(np.int32)[..., None]


def read_mask(path, num_classes=1, mask_threshold=None, ignore_class=None):
    """Reads and converts a mask file; see `convert_mask`."""
    return convert_mask(read_mask_values(path), path, num_classes, mask_threshold, ignore_class)


def check_sample(
    sample, color_mode, num_classes, mask_threshold, ignore_class, verify, intensity="auto"
):
    """Checks one pair; returns its `(height, width, channels)` or raises `InvalidFileError`.

    Sizes are compared upright (after EXIF orientation). `channels` are those of the
    image as `color_mode` reads it (decoded when `verify`, else from the header).
    """
    image = read_header(sample.image_path)
    mask = read_header(sample.mask_path)
    if (image.height, image.width) != (mask.height, mask.width):
        exif = ""
        if image.orientation != mask.orientation:
            exif = (
                f" The sizes are upright, after the files' EXIF orientations (image "
                f"{image.orientation}, mask {mask.orientation}; 1 is upright, 5-8 swap "
                "height and width): save both upright, or with the same orientation."
            )
        raise InvalidFileError(
            f"Image '{sample.image_path}' and mask '{sample.mask_path}' have different "
            f"sizes: image (height, width) = ({image.height}, {image.width}), mask "
            f"(height, width) = ({mask.height}, {mask.width}).{exif}",
            sample.mask_path,
        )
    channels = channels_for(color_mode) or image.channels
    if verify:
        channels = read_image(sample.image_path, color_mode, intensity).shape[-1]
        read_mask(sample.mask_path, num_classes, mask_threshold, ignore_class)
    return image.height, image.width, channels
