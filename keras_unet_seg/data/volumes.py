"""Reading and writing volumes: NIfTI files and multi-page TIFF stacks.

Arrays are channels-last `(depth, height, width, channels)` and spacings `(z, y, x)`,
the order of the array's axes. For NIfTI, whose voxel array nibabel gives as
`(i, j, k)` (x, y, z, with k the slice axis), the array is transposed to `(k, j, i)`:
depth is the slice axis, as `SimpleITK.GetArrayFromImage` gives it, and a mask is
written back with the inverse transpose, so that voxel `[d, h, w]` of a prediction
lies where voxel `[d, h, w]` of its input lies.
"""

import gzip
import os
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from keras_unet_seg import _atomic
from keras_unet_seg._errors import DataError, UserError
from keras_unet_seg._validation import check_bool, invalid_value
from keras_unet_seg.data._decoding import InvalidFileError

__all__ = ["Volume", "read_volume", "volume_stem", "write_volume"]

VOLUME_EXTENSIONS = (".nii", ".nii.gz", ".tif", ".tiff")
_DEPTH_AXES = "ZQIT"  # tifffile's names of axes along which pages are stacked
_CHANNEL_AXES = "CS"


@dataclass(frozen=True, eq=False)
class Volume:
    """A volume read from a file, with what writing a mask like it needs.

    Attributes:
        array: the voxels, `(depth, height, width, channels)`, in the file's dtype.
        spacing: `(z, y, x)`, the voxel size along depth, height and width, as floats
            in the file's unit (millimetres for most NIfTI files, the ImageJ unit for
            TIFF stacks); 1.0 where the file does not say.
        path: the file it was read from.
        header: the file's header, which `write_volume` copies: a nibabel NIfTI
            header (affine, qform and sform codes, zooms, units) for NIfTI; a dict
            of the resolution tags and ImageJ metadata for TIFF stacks.
    """

    array: np.ndarray
    spacing: tuple
    path: str
    header: object = field(repr=False)

    @property
    def shape(self):
        """`(depth, height, width)`, the spatial shape."""
        return tuple(self.array.shape[:3])


def volume_extension(path):
    """The volume extension of `path` (`".nii.gz"`, `".tif"`, ...), or `None`."""
    name = os.fspath(path).lower()
    return next((e for e in sorted(VOLUME_EXTENSIONS, key=len)[::-1] if name.endswith(e)), None)


def volume_stem(path):
    """The file name of `path` without its volume extension (``.nii.gz`` whole)."""
    name = os.path.basename(os.fspath(path))
    extension = volume_extension(name)
    return name[: -len(extension)] if extension else os.path.splitext(name)[0]


def import_nibabel():
    """nibabel, or an `ImportError` naming the extra that installs it."""
    try:
        import nibabel
    except ImportError:
        raise ImportError(
            'Reading NIfTI volumes needs nibabel: pip install "keras-unet-seg[volumes]"'
        ) from None
    return nibabel


def _check_path(path):
    path = os.fspath(path)
    extension = volume_extension(path)
    if extension is None:
        raise invalid_value(
            "path", f"a volume file ({', '.join(VOLUME_EXTENSIONS)})", path, received=path
        )
    return path, extension


def read_volume(path):
    """Reads a NIfTI file or a multi-page TIFF stack as a `Volume`.

    NIfTI (``.nii``, ``.nii.gz``, read by nibabel, the `volumes` extra): the array is
    nibabel's `(x, y, z[, channels])` transposed to `(z, y, x, channels)` (see the
    module's docstring), scaled by the header's slope and intercept, and the spacing
    is the header's zooms in that order. A 4-D file's fourth axis (and a 5-D file's
    fifth, its fourth of size 1) holds the channels. TIFF (``.tif``, ``.tiff``, read by
    tifffile): the pages are the depth; the z spacing is the ImageJ metadata's
    `spacing`, the y and x spacings come from the YResolution and XResolution tags
    (pixels per unit); 1.0 where a value is missing.

    Args:
        path: the file.

    Returns:
        A `Volume`: `array` `(depth, height, width, channels)` in the file's dtype (a
        NIfTI with a scale factor as float), `spacing` `(z, y, x)`, `path`, `header`.

    Raises:
        InvalidFileError: the file is missing, cannot be decoded, or is not a
            volume (the message names the file).
        ImportError: a NIfTI file and nibabel is not installed.

    Example:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from keras_unet_seg.data import make_synthetic_volumes
    >>> folder = tempfile.TemporaryDirectory()
    >>> root = make_synthetic_volumes(folder.name, num_train=1, num_val=0)
    >>> volume = read_volume(os.path.join(root, "train", "images", "case_000.nii.gz"))
    >>> volume.array.shape, volume.spacing
    ((24, 32, 32, 1), (2.0, 1.0, 1.0))
    >>> folder.cleanup()
    """
    path, extension = _check_path(path)
    if not os.path.isfile(path):
        raise InvalidFileError(f"Volume file '{path}' does not exist.", path)
    reader = _read_nifti if extension.startswith(".nii") else _read_tiff
    try:
        array, spacing, header = reader(path)
    except (UserError, ImportError, MemoryError):
        raise
    except Exception as error:
        raise InvalidFileError(
            f"Volume file '{path}' cannot be read: {type(error).__name__}: {error}", path
        ) from None
    if array.dtype.kind not in "biuf" or array.size == 0:
        raise InvalidFileError(
            f"Volume file '{path}' holds {array.dtype} values of shape {array.shape}; "
            "expected a non-empty array of numbers.",
            path,
        )
    return Volume(array, tuple(float(s) for s in spacing), path, header)


def _read_nifti(path):
    image = import_nibabel().load(path)
    data = np.asanyarray(image.dataobj)
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0]
    if data.ndim == 3:
        data = data[..., None]
    if data.ndim != 4:
        raise InvalidFileError(
            f"Volume file '{path}' has {data.ndim} axes of shape {data.shape}; expected "
            "(x, y, z) or (x, y, z, channels).",
            path,
        )
    zooms = image.header.get_zooms()[:3]
    array = np.ascontiguousarray(np.transpose(data, (2, 1, 0, 3)))
    # The header's float32 zooms as their shortest decimals (0.8, not 0.800000011920929).
    return array, tuple(float(str(z)) for z in zooms[::-1]), image.header.copy()


def _read_tiff(path):
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        series = tiff.series[0]
        array = _stack_axes(path, series.asarray(), series.axes)
        page = tiff.pages[0]
        imagej = tiff.imagej_metadata or {}
        header = {
            "resolution": tuple(_tag_value(page, name) for name in ("XResolution", "YResolution")),
            "spacing": imagej.get("spacing"),
            "unit": imagej.get("unit"),
        }
    x, y = (_per_pixel(value) for value in header["resolution"])
    z = float(header["spacing"]) if header["spacing"] else 1.0
    return array, (z, y, x), header


def _tag_value(page, name):
    tag = page.tags.get(name)
    return None if tag is None else tuple(int(v) for v in tag.value)


def _per_pixel(resolution):
    """The size of a pixel from a resolution tag `(numerator, denominator)` per unit."""
    if not resolution or resolution[0] == 0:
        return 1.0
    return resolution[1] / resolution[0]


def _stack_axes(path, array, axes):
    """A tifffile series `(array, axes)` as `(depth, height, width, channels)`."""
    kept = [i for i, a in enumerate(axes) if array.shape[i] > 1 or a in "YX"]
    array = array.reshape([array.shape[i] for i in kept])
    axes = "".join(axes[i] for i in kept)
    depth = [a for a in axes if a in _DEPTH_AXES]
    channels = [a for a in axes if a in _CHANNEL_AXES]
    if len(depth) > 1 or len(channels) > 1 or len(depth) + len(channels) + 2 != len(axes):
        raise InvalidFileError(
            f"Volume file '{path}' has axes {axes!r} of shape {array.shape}; expected a "
            "stack of pages (Z or pages) of one or more channels.",
            path,
        )
    if not depth:
        array, axes = array[None], "Z" + axes
    if not channels:
        array, axes = array[..., None], axes + "C"
    order = [axes.index(a) for a in (*(depth or "Z"), "Y", "X", *(channels or "C"))]
    return np.ascontiguousarray(np.transpose(array, order))


def write_volume(path, mask, like, *, overwrite=False):
    """Writes a label volume (a predicted mask) with the header of the volume it is of.

    The file is written under a temporary name in its folder, then renamed, so that
    it never holds half a volume. NIfTI: the mask, transposed back to nibabel's
    `(x, y, z)`, as uint8 with `like`'s header (affine, qform and sform with their
    codes, zooms, units; no intensity scaling). TIFF: an ImageJ stack of uint8 pages
    with `like`'s resolution tags and z spacing. The format is that of `path`'s
    extension, which may differ from `like`'s; the header then carries the spacing
    alone.

    Args:
        path: the file to write (``.nii``, ``.nii.gz``, ``.tif`` or ``.tiff``).
        mask: integer or bool array `(depth, height, width)` or `(..., 1)` of `like`'s
            spatial shape, values in [0, 255].
        like: the `Volume` the mask is of (from `read_volume`).
        overwrite: bool, default `False`. An existing file at `path` is refused
            unless `True`.

    Returns:
        `path`, as a `str`.

    Raises:
        ValueError: the mask's shape or values do not fit, or `path` exists and
            `overwrite` is `False`.

    Example:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from keras_unet_seg.data import make_synthetic_volumes
    >>> folder = tempfile.TemporaryDirectory()
    >>> root = make_synthetic_volumes(folder.name, num_train=1, num_val=0)
    >>> volume = read_volume(os.path.join(root, "train", "images", "case_000.nii.gz"))
    >>> mask = (volume.array[..., 0] > 0.5).astype("uint8")
    >>> out = write_volume(os.path.join(folder.name, "mask.nii.gz"), mask, like=volume)
    >>> read_volume(out).spacing == volume.spacing
    True
    >>> folder.cleanup()
    """
    path, extension = _check_path(path)
    mask = _check_mask(mask, like)
    check_bool("overwrite", overwrite)
    if os.path.exists(path) and not overwrite:
        raise DataError(f"File '{path}' exists; pass overwrite=True to replace it.")
    with _atomic.atomic_path(path) as temporary:
        if extension.startswith(".nii"):
            _write_nifti(temporary, mask, like, compress=extension == ".nii.gz")
        else:
            _write_tiff(temporary, mask, like)
    return path


def _check_mask(mask, like):
    if not isinstance(like, Volume):
        raise invalid_value("like", "a Volume (from read_volume)", like)
    mask = np.asarray(mask)
    if mask.ndim == 4 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.shape != like.shape:
        raise invalid_value(
            "mask",
            f"an array of the volume's shape {like.shape} (or {(*like.shape, 1)})",
            received=f"mask.shape={mask.shape}",
        )
    if mask.dtype.kind not in "biu" or (mask.size and (mask.min() < 0 or mask.max() > 255)):
        values = f" of values in [{mask.min()}, {mask.max()}]" if mask.size else ""
        raise invalid_value(
            "mask",
            "an integer or bool array of values in [0, 255]",
            received=f"{mask.dtype} array{values}",
        )
    return mask.astype(np.uint8)


def _write_nifti(temporary, mask, like, compress):
    nibabel = import_nibabel()
    data = np.ascontiguousarray(np.transpose(mask, (2, 1, 0)))
    if isinstance(like.header, nibabel.Nifti1Header):
        image = _nifti_like(nibabel, data, like.header)
    else:  # a TIFF's volume written as NIfTI: the spacing alone
        image = nibabel.Nifti1Image(data, np.diag([*like.spacing[::-1], 1.0]))
    image.set_data_dtype(np.uint8)
    content = image.to_bytes()
    with open(temporary, "wb") as f:
        f.write(gzip.compress(content, compresslevel=6, mtime=0) if compress else content)


def _nifti_like(nibabel, data, header):
    """A NIfTI image of `data` whose header is `header` (with its qform, sform, codes)."""
    header = header.copy()
    image_class = nibabel.Nifti2Image if isinstance(header, nibabel.Nifti2Header) else None
    image_class = image_class or nibabel.Nifti1Image
    image = image_class(data, None, header=header)  # no affine: the header's forms kept
    image.header.set_slope_inter(1.0, 0.0)
    image.header["cal_min"] = image.header["cal_max"] = 0
    return image


def _write_tiff(temporary, mask, like):
    import tifffile

    header = like.header if isinstance(like.header, dict) else {}
    z, y, x = like.spacing
    resolution = header.get("resolution") or (None, None)
    if None in resolution:
        resolution = tuple(_rational(1.0 / value) for value in (x, y))
    metadata = {"axes": "ZYX", "spacing": z}
    if header.get("unit"):
        metadata["unit"] = header["unit"]
    tifffile.imwrite(temporary, mask, imagej=True, resolution=resolution, metadata=metadata)


def _rational(value):
    fraction = Fraction(value).limit_denominator(1_000_000)
    return fraction.numerator, fraction.denominator
