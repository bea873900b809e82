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

COLOR_MODES = ("grayscale", "rgb", "rgba")
_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
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


def channels_for(color_mode):
    return _CHANNELS[color_mode]


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
    image_groups, _ = _group_by_key(images_dir, list_image_files(images_dir))
    mask_groups, unsuffixed = _group_by_key(masks_dir, list_image_files(masks_dir), mask_suffix)
    problems = []
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
    return samples, problems, num_found


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
        size = os.path.getsize(path)
    except OSError as error:
        raise InvalidFileError(f"File '{path}' cannot be read: {error}.", path) from None
    if size == 0:
        raise InvalidFileError(f"File '{path}' is empty (0 bytes).", path)
    try:
        with Image.open(path) as image:
            header = Header(path, image.format, image.mode, image.height, image.width)
    except Exception as error:  # Pillow raises many types for bad files.
        header = _tifffile_header(path)
        if header is not None:
            return header
        raise InvalidFileError(
            f"File '{path}' is not a readable image: {type(error).__name__}: {error}.",
            path,
        ) from None
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
            shape = page.shape
            planar = page.planarconfig == 2 and len(shape) == 3
            height, width = (shape[1], shape[2]) if planar else (shape[0], shape[1])
    except Exception:
        return None
    return Header(path, "TIFF", "tifffile", int(height), int(width))


def _read_png_16(path):
    tf = import_tf()

    with open(path, "rb") as f:
        data = f.read()
    return tf.io.decode_png(data, channels=0, dtype=tf.uint16).numpy()


def _read_tiff_full_depth(path):
    try:
        import tifffile
    except ImportError:
        raise InvalidFileError(
            f"File '{path}' is a multi-channel TIFF of more than 8 bits a channel, which "
            "Pillow cannot read without losing precision. Install tifffile to read it: "
            "`pip install tifffile`.",
            path,
        ) from None
    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[0]
        array = np.asarray(page.asarray())
        if page.planarconfig == 2 and array.ndim == 3:
            array = np.moveaxis(array, 0, -1)  # planar (channels first) to channels last
    return array


def _decode(path, palette):
    """Decodes the first frame of `path` to a NumPy array with its native dtype.

    Palette images give their indices (`palette="indices"`, for masks: class ids) or
    their colours (`palette="colors"`, for images).
    """
    Image = _import_pil()
    try:
        image = Image.open(path)
    except Exception as error:
        if _tifffile_header(path) is not None:  # a TIFF only tifffile reads
            return _read_tiff_full_depth(path)
        raise InvalidFileError(
            f"File '{path}' is not a readable image: {type(error).__name__}: {error}.",
            path,
        ) from None
    try:
        with image:
            if _needs_full_depth_reader(image):
                if image.format == "PNG":
                    return _read_png_16(path)
                return _read_tiff_full_depth(path)
            image.load()
            mode = image.mode
            if mode in ("P", "PA") and palette == "indices":
                indices = image if mode == "P" else image.getchannel(0)
                return np.asarray(indices)
            if mode in ("P", "PA"):
                has_alpha = mode == "PA" or "transparency" in image.info
                return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
            if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                return np.asarray(image.convert("RGB"))
            array = np.asarray(image)
            if array.dtype.byteorder not in ("=", "|"):
                array = array.astype(array.dtype.newbyteorder("="))
            return array
    except InvalidFileError:
        raise
    except Exception as error:
        raise InvalidFileError(
            f"File '{path}' cannot be decoded (truncated or corrupt?): "
            f"{type(error).__name__}: {error}.",
            path,
        ) from None


def _scale_to_unit(array, path):
    """Scales an image array to float32 [0, 1] by the range of its dtype."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if array.dtype.kind in "iu":
        # Pillow's mode "I" (32-bit integers) holds 16-bit data in practice.
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise InvalidFileError(
                f"File '{path}' holds integers outside [0, 65535] "
                f"(min {array.min()}, max {array.max()}); only 8- and 16-bit images can "
                "be scaled by their dtype range.",
                path,
            )
        return array.astype(np.float32) / 65535.0
    # Floating point images (32-bit TIFF) are taken as they are.
    return array.astype(np.float32)


def read_image(path, color_mode="rgb"):
    """Reads an image as float32 `(height, width, channels)` scaled to [0, 1].

    8-bit files are divided by 255 and 16-bit files by 65535; floating point files are
    kept as they are. Channels follow `color_mode`: grayscale to RGB repeats the gray
    value, RGB to grayscale uses ITU-R 601-2 luma, RGB to RGBA adds an opaque alpha and
    RGBA to RGB drops the alpha. Palette images are converted to their colours.

    Raises:
        InvalidFileError: the file cannot be decoded or has an unusable channel count.
    """
    array = _decode(path, palette="colors")
    unit = _scale_to_unit(array, path)
    if unit.ndim == 2:
        unit = unit[..., None]
    channels = unit.shape[-1]
    if unit.ndim != 3 or channels > 4:
        raise InvalidFileError(
            f"File '{path}' has shape {array.shape}; expected (height, width) or "
            "(height, width, channels) with 1 to 4 channels.",
            path,
        )
    if channels == 2:  # gray + alpha
        gray, alpha = unit[..., :1], unit[..., 1:]
    elif channels == 1:
        gray, alpha = unit, None
    else:
        gray, alpha = None, unit[..., 3:] if channels == 4 else None
    if color_mode == "grayscale":
        if gray is None:
            gray = (unit[..., :3] @ _LUMA)[..., None]
        return np.ascontiguousarray(gray, dtype=np.float32)
    rgb = np.repeat(gray, 3, axis=-1) if gray is not None else unit[..., :3]
    if color_mode == "rgb":
        return np.ascontiguousarray(rgb, dtype=np.float32)
    if alpha is None:
        alpha = np.ones_like(rgb[..., :1])
    return np.ascontiguousarray(np.concatenate([rgb, alpha], axis=-1), dtype=np.float32)


def read_mask_values(path):
    """Reads a mask as a 2-D integer array of its raw values.

    Palette (indexed) PNG and GIF masks give their palette indices, as Pascal VOC
    expects, not colours. RGB masks are accepted when their three channels are equal
    (a gray mask saved as RGB); alpha channels are ignored.

    Raises:
        InvalidFileError: the file cannot be decoded, is a colour mask, or holds
            non-integer values.
    """
    array = _decode(path, palette="indices")
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


def check_sample(sample, color_mode, num_classes, mask_threshold, ignore_class, verify):
    """Checks one pair; returns its `(height, width)` or raises `InvalidFileError`."""
    image = read_header(sample.image_path)
    mask = read_header(sample.mask_path)
    if (image.height, image.width) != (mask.height, mask.width):
        raise InvalidFileError(
            f"Image '{sample.image_path}' and mask '{sample.mask_path}' have different "
            f"sizes: image (height, width) = ({image.height}, {image.width}), mask "
            f"(height, width) = ({mask.height}, {mask.width}).",
            sample.mask_path,
        )
    if verify:
        read_image(sample.image_path, color_mode)
        read_mask(sample.mask_path, num_classes, mask_threshold, ignore_class)
    return image.height, image.width
