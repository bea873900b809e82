"""Patches of volumes in NumPy: where they start, cutting them out, 3D augmentation.

Volumes are `(depth, height, width, channels)` and masks `(depth, height, width, 1)`;
a patch size is `(depth, height, width)`. Every random choice comes from the
`numpy.random.Generator` passed in, so a pipeline that seeds one a patch is
deterministic whatever order its workers run in.
"""

import itertools
from dataclasses import dataclass

import numpy as np

from keras_unet_seg._validation import check_bool, check_non_negative, invalid_value

_AUGMENT_DEFAULTS = {"flip": True, "rotate90": True, "scale": 0.1, "shift": 0.1, "noise": 0.05}


def is_foreground_patch(position, fraction):
    """Whether patch `position` of an epoch is centred on foreground.

    Exactly `floor(n * fraction)` of the first `n` positions are, spread evenly (with
    `fraction=1/3`, positions 2, 5, 8, ...): each batch gets its share, as nnU-Net
    forces the last third of each batch onto foreground.
    """
    return int((position + 1) * fraction) > int(position * fraction)


def random_start(shape, patch_size, rng, centre=None):
    """The start of a patch inside a volume of `shape` (already padded to fit).

    Uniform over the positions where the patch lies inside; with `centre`, the patch
    centred on that voxel, moved inside where the voxel is near a border (as MONAI's
    `RandCropByPosNegLabel` does), so that the voxel is always in the patch.
    """
    start = []
    for axis, (size, patch) in enumerate(zip(shape, patch_size, strict=True)):
        room = size - patch
        if centre is None:
            start.append(int(rng.integers(0, room + 1)))
        else:
            start.append(int(np.clip(centre[axis] - patch // 2, 0, room)))
    return tuple(start)


def grid_starts(shape, patch_size):
    """The starts of patches that tile a volume of `shape` (padded to fit): a regular
    grid of steps `patch_size`, the last patch of each axis moved back inside."""
    axes = []
    for size, patch in zip(shape, patch_size, strict=True):
        starts = list(range(0, max(size - patch, 0) + 1, patch))
        if starts[-1] + patch < size:
            starts.append(size - patch)
        axes.append(starts)
    return list(itertools.product(*axes))


def pad_to(array, patch_size, fill):
    """Pads `array` (spatial axes first) with `fill`, centred, to at least `patch_size`."""
    widths = [
        ((p - s) // 2, p - s - (p - s) // 2) if s < p else (0, 0)
        for s, p in zip(array.shape[:3], patch_size, strict=True)
    ]
    if not any(any(w) for w in widths):
        return array
    widths += [(0, 0)] * (array.ndim - 3)
    return np.pad(array, widths, constant_values=fill)


def crop(array, start, patch_size):
    """The patch of `array` at `start` (a view)."""
    return array[tuple(slice(s, s + p) for s, p in zip(start, patch_size, strict=True))]


def check_augment(augment):
    """The `Augmentation` of a dataset's `augment` argument, or `None`."""
    if augment is None or augment is False:
        return None
    if augment is True:
        return Augmentation(**_AUGMENT_DEFAULTS)
    if not isinstance(augment, dict) or set(augment) - set(_AUGMENT_DEFAULTS):
        raise invalid_value(
            "augment",
            f"None, a bool, or a dict with any of the keys {list(_AUGMENT_DEFAULTS)}",
            augment,
        )
    options = {**_AUGMENT_DEFAULTS, **augment}
    for name in ("flip", "rotate90"):
        check_bool(f"augment['{name}']", options[name])
    for name in ("scale", "shift", "noise"):
        check_non_negative(f"augment['{name}']", options[name])
    return Augmentation(**options)


@dataclass(frozen=True)
class Augmentation:
    """Joint 3D augmentation of a patch and its mask (see `from_volumes`' `augment`)."""

    flip: bool
    rotate90: bool
    scale: float
    shift: float
    noise: float

    def __call__(self, image, mask, rng):
        """`(image, mask)` flipped and rotated alike; the image's intensity changed."""
        if self.flip:
            axes = tuple(axis for axis in range(3) if rng.random() < 0.5)
            image, mask = np.flip(image, axes), np.flip(mask, axes)
        if self.rotate90:
            # In plane (height, width) only: slices keep their spacing. A patch that is
            # not square in plane turns by 0 or 180 degrees, which keep its shape.
            square = image.shape[1] == image.shape[2]
            turns = int(rng.integers(0, 4 if square else 2)) * (1 if square else 2)
            image, mask = np.rot90(image, turns, (1, 2)), np.rot90(mask, turns, (1, 2))
        factor = rng.uniform(1 - self.scale, 1 + self.scale)
        offset = rng.uniform(-self.shift, self.shift)
        image = image * np.float32(factor) + np.float32(offset)
        if self.noise:
            image = image + rng.normal(0, self.noise, image.shape).astype(np.float32)
        return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(mask)
