"""Helpers that build image/mask files on disk for the data tests."""

import os
import struct
import zlib

import numpy as np
from PIL import Image

SIZE = 32


def save(path, array, **kwargs):
    """Saves an array with Pillow (format from the extension), creating folders."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path, **kwargs)
    return str(path)


def id_image(index, size=SIZE):
    """An RGB image whose uniform value encodes `index` (0 <= index < 36)."""
    return np.full((size, size, 3), 5 + 7 * index, dtype=np.uint8)


def id_mask(index, size=SIZE):
    """A 0/255 mask whose first `index + 1` rows are foreground."""
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[: index + 1] = 255
    return mask


def decode_ids(images, masks):
    """The indices encoded by a batch of images and of masks (they match if paired)."""
    images = np.asarray(images)
    masks = np.asarray(masks)
    from_images = np.rint((images.mean(axis=(1, 2, 3)) * 255 - 5) / 7).astype(int)
    from_masks = np.rint(masks.sum(axis=(1, 2, 3)) / masks.shape[2] - 1).astype(int)
    return from_images.tolist(), from_masks.tolist()


def write_id_pairs(folder, count, image_ext=".png", mask_ext=".png", mask_suffix=""):
    """Writes `count` id-encoded pairs to `folder/images` and `folder/masks`."""
    for index in range(count):
        save(os.path.join(folder, "images", f"s{index:03d}{image_ext}"), id_image(index))
        save(
            os.path.join(folder, "masks", f"s{index:03d}{mask_suffix}{mask_ext}"),
            id_mask(index),
        )
    return str(folder)


def epoch_ids(dataset):
    """The sample indices of one epoch, checking on the way that pairs match."""
    ids = []
    for images, masks in dataset:
        from_images, from_masks = decode_ids(images, masks)
        assert from_images == from_masks, (from_images, from_masks)
        ids.extend(from_images)
    return ids


def from_dir(root, **kwargs):
    """`SegmentationDataset.from_directory` with the small defaults of these tests."""
    from keras_unet_seg.data import SegmentationDataset

    kwargs.setdefault("image_size", (SIZE, SIZE))
    kwargs.setdefault("batch_size", 4)
    kwargs.setdefault("seed", 0)
    return SegmentationDataset.from_directory(root, **kwargs)


def all_pairs(dataset):
    """Every image and mask of a dataset, concatenated."""
    images, masks = zip(*[(i.numpy(), m.numpy()) for i, m in dataset], strict=True)
    return np.concatenate(images), np.concatenate(masks)


def raises_naming(path, pattern, root, **kwargs):
    """Checks that `from_dir(root, **kwargs)` raises a `ValueError` naming `path`."""
    import re

    import pytest

    with pytest.raises(ValueError, match=re.escape(f"'{path}'") + ".*" + pattern):
        from_dir(root, **kwargs)


ORIENTATION = 0x0112  # the EXIF orientation tag


def save_with_orientation(path, array, orientation, **kwargs):
    """Saves an array with an EXIF orientation tag."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, exif=exif, **kwargs)
    return str(path)


def upright_scene(height, width):
    """An image with a bright rectangle off-centre, and its mask, both upright."""
    image = np.full((height, width, 3), 30, np.uint8)
    mask = np.zeros((height, width), np.uint8)
    image[4:14, 6:30] = 220
    mask[4:14, 6:30] = 255
    return image, mask


def fluorescence(channels, seed=0, size=32):
    """A uint16 image whose channels differ, and the mask of channel 0's bright blob."""
    rng = np.random.default_rng(seed)
    image = rng.integers(100, 300, (size, size, channels)).astype(np.uint16)
    image[8:20, 10:24, 0] += 2000
    mask = np.zeros((size, size), np.uint8)
    mask[8:20, 10:24] = 255
    return image, mask


def zero_png(path, height, width, channels, bit_depth):
    """A PNG of zeros of any depth and channels, compressed row by row: a large image
    in a small file, written without holding its pixels."""
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    row = b"\0" + bytes(width * channels * bit_depth // 8)  # filter byte, then the row
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data))
        f.write(chunk(b"IEND", b""))
    return str(path)
