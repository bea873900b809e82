"""Synthetic datasets written to disk, images or volumes: the embedded default, no download."""

import gzip
import os

import numpy as np

from keras_unet_seg import _atomic, _outputs
from keras_unet_seg._errors import DataError
from keras_unet_seg._validation import (
    check_non_negative_int,
    check_positive_int,
    invalid_value,
    is_int,
    is_pair,
    is_real,
)
from keras_unet_seg.data.volumes import import_nibabel

_SPLITS = (("train", 0), ("val", 1))


def _class_palette():
    """A 256-colour palette of the overlays' class colours (`viz.class_color`)."""
    from keras_unet_seg.viz import class_color

    return [value for class_id in range(256) for value in class_color(class_id)]


def _smooth_field(rng, height, width, cells, channels=1):
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bicubically."""
    from PIL import Image

    coarse = rng.random((channels, max(cells, 2), max(cells, 2))).astype(np.float32)
    planes = [
        np.asarray(Image.fromarray(plane, mode="F").resize((width, height), Image.BICUBIC))
        for plane in coarse
    ]
    return np.clip(np.stack(planes, axis=-1), 0.0, 1.0)


def _draw_shape(rng, height, width):
    """One random ellipse, polygon or blob as a boolean mask."""
    from PIL import Image, ImageDraw, ImageFilter

    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    size = min(height, width)
    cy, cx = rng.uniform(0.15, 0.85) * height, rng.uniform(0.15, 0.85) * width
    radius = rng.uniform(0.08, 0.2) * size
    kind = rng.integers(3)
    if kind == 0:  # ellipse, axis-aligned or rotated by drawing a polygon
        ry = radius * rng.uniform(0.5, 1.5)
        rx = radius * rng.uniform(0.5, 1.5)
        angle = rng.uniform(0, np.pi)
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        x, y = rx * np.cos(t), ry * np.sin(t)
        xs = cx + x * np.cos(angle) - y * np.sin(angle)
        ys = cy + x * np.sin(angle) + y * np.cos(angle)
        draw.polygon(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=255)
    elif kind == 1:  # star-shaped polygon with 3 to 8 vertices
        count = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = radius * rng.uniform(0.6, 1.4, count)
        xs = cx + radii * np.cos(angles)
        ys = cy + radii * np.sin(angles)
        draw.polygon(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=255)
    else:  # blob: overlapping discs, smoothed and thresholded
        for _ in range(int(rng.integers(3, 7))):
            r = radius * rng.uniform(0.4, 0.8)
            x = cx + rng.normal(0, radius * 0.5)
            y = cy + rng.normal(0, radius * 0.5)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        canvas = canvas.filter(ImageFilter.GaussianBlur(radius=max(size / 32, 1)))
    return np.asarray(canvas) > 127


# Foreground colours of classes 2, 3, ... (class 1 is orange-ish): green, purple,
# yellow, cyan, each jittered per image.
_CLASS_COLORS = ((0.3, 0.68, 0.28), (0.55, 0.3, 0.7), (0.85, 0.8, 0.25), (0.2, 0.7, 0.75))


def _make_pair(rng, height, width, max_shapes, num_classes=1):
    """One textured RGB image (uint8) and its mask (uint8): 0/255 for one class, else
    class ids, each shape drawn over the earlier ones with a random class."""
    labels = np.zeros((height, width), dtype=np.uint8)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        shape = _draw_shape(rng, height, width)
        labels[shape] = 1 if num_classes == 1 else int(rng.integers(1, num_classes))
    mask = labels > 0

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cells = max(height, width) // 8
    # Background: a bluish-grey colour with blotchy low-frequency texture.
    background = rng.uniform([0.22, 0.28, 0.38], [0.38, 0.45, 0.58]).astype(np.float32)
    background = background + 0.2 * (_smooth_field(rng, height, width, cells, 3) - 0.5)
    # Foreground: an orange-ish colour with stripes at a random angle and period.
    foreground = rng.uniform([0.62, 0.42, 0.12], [0.85, 0.6, 0.3]).astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(4, 9)
    stripes = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    foreground = foreground + 0.08 * stripes[..., None]
    image = np.where(mask[..., None], foreground, background)
    for class_id in range(2, num_classes):
        base = np.asarray(_CLASS_COLORS[(class_id - 2) % len(_CLASS_COLORS)], np.float32)
        color = base + rng.uniform(-0.06, 0.06, 3).astype(np.float32)
        image = np.where((labels == class_id)[..., None], color + 0.08 * stripes[..., None], image)
    # Uneven lighting: a smooth multiplicative gradient in [0.65, 1.25].
    gy, gx = rng.normal(0, 1, 2)
    ramp = (gx * (xx / width - 0.5) + gy * (yy / height - 0.5)) / (abs(gx) + abs(gy) + 1e-6)
    lighting = 0.95 + 0.3 * ramp + 0.15 * (_smooth_field(rng, height, width, 3)[..., 0] - 0.5)
    image = image * lighting[..., None]
    # Sensor noise.
    image = image + rng.normal(0, 0.04, image.shape)
    image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return image, (mask * 255).astype(np.uint8) if num_classes == 1 else labels


def _check_args(num_train, num_val, image_size, seed, max_shapes, num_classes):
    check_positive_int("num_train", num_train)
    check_non_negative_int("num_val", num_val)
    check_positive_int("max_shapes", max_shapes)
    check_positive_int("num_classes", num_classes)
    if not is_pair(image_size, lambda v: is_int(v) and v >= 16):
        raise invalid_value("image_size", "a tuple `(height, width)` of ints >= 16", image_size)
    check_non_negative_int("seed", seed)


def make_synthetic_dataset(
    root,
    num_train=64,
    num_val=16,
    image_size=(64, 64),
    seed=0,
    *,
    max_shapes=4,
    num_classes=1,
    overwrite=False,
):
    """Writes a synthetic segmentation dataset of PNG files, ready to train on.

    Each image is an RGB picture of one to `max_shapes` random shapes (rotated
    ellipses, star-shaped polygons and smooth blobs) filled with a striped
    orange-ish texture, on a blotchy bluish-grey background, under uneven lighting
    (a smooth gradient of about +-30%) and with Gaussian noise. Its mask is the union
    of the shapes. The task is easy for a U-Net but not for a single threshold, and
    a small one (`base_filters=8, depth=3`) learns it to a validation Dice above 0.9
    in a few epochs on 64x64 images.

    Layout, as `SegmentationDataset.from_directory` reads it with `subset="train"` or
    `subset="val"`:

    ```
    root/train/images/00000.png   RGB, uint8
    root/train/masks/00000.png    grayscale, 0 (background) / 255 (foreground)
    root/val/images/...           root/val/masks/...
    ```

    The masks hold 0 and 255 so that they can be looked at; `from_directory` reads
    them as 0/1 (foreground is value > 0). With `num_classes > 1`, each shape gets a
    random class in `[1, num_classes)` and a colour of its class (orange, green,
    purple, ...), and the masks are palette PNGs whose indices are the class ids
    (read with `from_directory(..., num_classes=num_classes)`), coloured as the
    overlays colour them. Output is a pure function of the
    arguments: sample `i` of a split depends only on `seed`, the split and `i`, so a
    larger `num_train` keeps the first samples as they were. NumPy and Pillow only.

    Args:
        root: folder to write to (created if needed).
        num_train: int >= 1, default 64. Number of training pairs.
        num_val: int >= 0, default 16. Number of validation pairs.
        image_size: `(height, width)`, default `(64, 64)`, each at least 16.
        seed: int >= 0, default 0.
        max_shapes: int >= 1, default 4. Most shapes in one image.
        num_classes: int >= 1, default 1 (binary). The classes of the masks,
            background included.
        overwrite: bool, default `False`. If the four folders already hold files, a
            `ValueError` is raised unless `overwrite=True`, which first deletes the
            files an earlier call wrote there (recorded in `root`'s
            `.keras-unet-seg.sha256`); a file it did not write is never deleted, and
            one where it writes is refused.

    Returns:
        `root`, as a `str`.

    Raises:
        ValueError: an argument is invalid, or the folders are not empty and
            `overwrite` is `False`, or hold a file this function did not write
            where it writes.

    Example:

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     root = make_synthetic_dataset(
    ...         folder, num_train=3, num_val=1, image_size=(32, 32), seed=0
    ...     )
    ...     sorted(os.listdir(os.path.join(root, "train", "masks")))
    ['00000.png', '00001.png', '00002.png']
    """
    _check_args(num_train, num_val, image_size, seed, max_shapes, num_classes)
    root = os.fspath(root)
    counts = {"train": int(num_train), "val": int(num_val)}
    size = (int(image_size[0]), int(image_size[1]))
    with _outputs.recording(root):
        _clear_folders(root, overwrite, counts, "make_synthetic_dataset", ".png")
        _write_pairs(root, counts, size, int(seed), int(max_shapes), int(num_classes))
    return root


def _write_pairs(root, counts, size, seed, max_shapes, num_classes):
    for split, split_id in _SPLITS:
        for index in range(counts[split]):
            rng = np.random.default_rng([seed, split_id, index])
            image, mask = _make_pair(rng, *size, max_shapes, num_classes)
            _save_pair(os.path.join(root, split), f"{index:05d}.png", image, mask, num_classes)


def _clear_folders(root, overwrite, counts, writer, extension):
    """Refuses folders that hold files; with `overwrite`, deletes the files an earlier
    call wrote there, and refuses a file it did not write where it writes."""
    folders = [
        os.path.join(root, split, kind) for split, _ in _SPLITS for kind in ("images", "masks")
    ]
    existing = [
        os.path.join(folder, name)
        for folder in folders
        if os.path.isdir(folder)
        for name in sorted(os.listdir(folder))
    ]
    if existing and not overwrite:
        raise DataError(
            f"Folder '{root}' already holds {len(existing)} files in its train/ and val/ "
            f"folders (such as '{existing[0]}'). Pass an empty or new folder, or "
            "overwrite=True to delete the files an earlier call wrote there first."
        )
    listed = _outputs.recorded(root)
    ours = [path for path in existing if _outputs.written_by_library(path, root, listed)]
    targets = {
        os.path.join(root, split, kind, _file_name(writer, index, extension))
        for split, count in counts.items()
        for kind in ("images", "masks")
        for index in range(count)
    }
    foreign = sorted(targets.intersection(existing).difference(ours))
    if foreign:
        raise DataError(
            f"Folder '{root}' holds files that {writer} did not write where it "
            f"writes (such as '{foreign[0]}'); they are never replaced: pass an empty or new "
            "folder."
        )
    for path in ours:
        os.remove(path)
    for folder in folders:
        os.makedirs(folder, exist_ok=True)


def _file_name(writer, index, extension):
    if writer == "make_synthetic_volumes":
        return f"case_{index:03d}{extension}"
    return f"{index:05d}{extension}"


def _save_pair(split_dir, name, image, mask, num_classes):
    """Writes an RGB image and its mask (a palette PNG of class ids when multi-class)."""
    from PIL import Image

    mask_file = Image.fromarray(mask, mode="L")
    if num_classes > 1:
        mask_file = mask_file.convert("P")
        mask_file.putpalette(_class_palette())
    for kind, file in (("images", Image.fromarray(image, mode="RGB")), ("masks", mask_file)):
        with _atomic.atomic_path(os.path.join(split_dir, kind, name)) as temporary:
            file.save(temporary, format="PNG")


def make_synthetic_volumes(
    root,
    num_train=4,
    num_val=2,
    shape=(24, 32, 32),
    spacing=(2.0, 1.0, 1.0),
    seed=0,
    *,
    max_shapes=3,
    overwrite=False,
):
    """Writes a synthetic volume dataset of NIfTI files, ready to train a 3D U-Net on.

    Each volume holds one to `max_shapes` random ellipsoids, sized in physical units
    (so flatter in voxels along an axis of larger spacing), brighter than a noisy
    background, as int16 values like a CT's (background about 0, ellipsoids about
    200, noise of standard deviation 60, a smooth gradient). Its mask (uint8 0/1) is
    the union of the ellipsoids. The header holds `spacing` as zooms and a diagonal
    affine (qform and sform codes 1, millimetres).

    Layout, as `SegmentationDataset.from_volumes` reads it with `subset="train"` or
    `subset="val"`:

    ```
    root/train/images/case_000.nii.gz   int16, (x, y, z) = shape reversed
    root/train/masks/case_000.nii.gz    uint8 0/1
    root/val/images/...                 root/val/masks/...
    ```

    Output is a pure function of the arguments, as for `make_synthetic_dataset`.
    Needs nibabel (the `volumes` extra).

    Args:
        root: folder to write to (created if needed).
        num_train: int >= 1, default 4. Number of training volumes.
        num_val: int >= 0, default 2. Number of validation volumes.
        shape: `(depth, height, width)`, default `(24, 32, 32)`, each at least 8.
        spacing: `(z, y, x)` positive floats, default `(2.0, 1.0, 1.0)`: voxel size
            in millimetres.
        seed: int >= 0, default 0.
        max_shapes: int >= 1, default 3. Most ellipsoids in one volume.
        overwrite: bool, default `False`: as for `make_synthetic_dataset`.

    Returns:
        `root`, as a `str`.

    Raises:
        ValueError: an argument is invalid, or the folders hold files (see
            `overwrite`).

    Example:

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     root = make_synthetic_volumes(folder, num_train=2, num_val=1)
    ...     sorted(os.listdir(os.path.join(root, "train", "masks")))
    ['case_000.nii.gz', 'case_001.nii.gz']
    """
    _check_volume_args(num_train, num_val, shape, spacing, seed, max_shapes)
    nibabel = import_nibabel()
    root = os.fspath(root)
    counts = {"train": int(num_train), "val": int(num_val)}
    shape = tuple(int(v) for v in shape)
    spacing = tuple(float(v) for v in spacing)
    with _outputs.recording(root):
        _clear_folders(root, overwrite, counts, "make_synthetic_volumes", ".nii.gz")
        for split, split_id in _SPLITS:
            for index in range(counts[split]):
                rng = np.random.default_rng([int(seed), split_id, index, 3])
                image, mask = _make_volume(rng, shape, spacing, int(max_shapes))
                name = _file_name("make_synthetic_volumes", index, ".nii.gz")
                for kind, array in (("images", image), ("masks", mask)):
                    path = os.path.join(root, split, kind, name)
                    _save_nifti(nibabel, path, array, spacing)
    return root


def _check_volume_args(num_train, num_val, shape, spacing, seed, max_shapes):
    check_positive_int("num_train", num_train)
    check_non_negative_int("num_val", num_val)
    check_positive_int("max_shapes", max_shapes)
    check_non_negative_int("seed", seed)
    if not (isinstance(shape, (tuple, list)) and len(shape) == 3):
        raise invalid_value("shape", "a tuple `(depth, height, width)` of ints >= 8", shape)
    if not all(is_int(v) and v >= 8 for v in shape):
        raise invalid_value("shape", "a tuple `(depth, height, width)` of ints >= 8", shape)
    if not (isinstance(spacing, (tuple, list)) and len(spacing) == 3):
        raise invalid_value("spacing", "a tuple `(z, y, x)` of positive numbers", spacing)
    if not all(is_real(v) and v > 0 for v in spacing):
        raise invalid_value("spacing", "a tuple `(z, y, x)` of positive numbers", spacing)


def _make_volume(rng, shape, spacing, max_shapes):
    """An int16 volume `(depth, height, width)` of ellipsoids in noise, and its mask."""
    axes = [np.arange(n) * s for n, s in zip(shape, spacing, strict=True)]
    grid = np.meshgrid(*axes, indexing="ij")
    extent = [n * s for n, s in zip(shape, spacing, strict=True)]
    mask = np.zeros(shape, bool)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        radii = [rng.uniform(0.17, 0.37) * min(extent) for _ in extent]
        centre = [rng.uniform(r, e - r) for r, e in zip(radii, extent, strict=True)]
        distance = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True))
        mask |= distance <= 1
    gradient = sum(rng.uniform(-30, 30) * g / e for g, e in zip(grid, extent, strict=True))
    image = 200.0 * mask + gradient + rng.normal(0, 60, shape)
    return np.round(image).astype(np.int16), mask.astype(np.uint8)


def _save_nifti(nibabel, path, array, spacing):
    """Writes `(depth, height, width)` as a NIfTI `(x, y, z)` with `spacing`'s affine."""
    affine = np.diag([*spacing[::-1], 1.0])
    image = nibabel.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), affine)
    image.header.set_qform(affine, 1)
    image.header.set_sform(affine, 1)
    image.header.set_xyzt_units("mm")
    with _atomic.atomic_path(path) as temporary, open(temporary, "wb") as f:
        f.write(gzip.compress(image.to_bytes(), mtime=0))
