"""Checking every image/mask pair before a pipeline is built: sizes, channels, decoding.

`from_directory` refuses a bad file up front, with a message naming it, or leaves it
out with `on_error="skip"`, listing it in a warning: nothing is left out silently.
"""

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from keras_unet_seg.data._decoding import InvalidFileError, read_header
from keras_unet_seg.data._images import channels_for, read_image
from keras_unet_seg.data._layout import Problem
from keras_unet_seg.data._masks import check_mask_values, read_mask_values


class PairFacts(NamedTuple):
    """What checking a pair found: its upright size, channels, and mask rule."""

    height: int
    width: int
    channels: int
    label_mask: bool  # a binary mask read as a label image (`is_label_image`)


def check_sample(
    sample, color_mode, num_classes, mask_threshold, ignore_class, verify, intensity="auto"
):
    """Checks one pair; returns its `PairFacts` or raises `InvalidFileError`.

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
    label_mask = False
    if verify:
        channels = read_image(sample.image_path, color_mode, intensity).shape[-1]
        values = read_mask_values(sample.mask_path)
        label_mask = check_mask_values(
            values, sample.mask_path, num_classes, mask_threshold, ignore_class
        )
    return PairFacts(image.height, image.width, channels, label_mask)


def check_samples(samples, on_error, **checks):
    """Checks every pair in parallel threads (Pillow decodes without the GIL).

    Returns `(kept, shapes, bad)`: the good pairs, their `PairFacts`
    and a `Problem` for each bad one; with `on_error="raise"` the first bad pair
    raises instead. `checks` are the keyword arguments of `check_sample`.
    """

    def check(sample):
        try:
            return check_sample(sample, **checks), None
        except InvalidFileError as error:
            path = error.path or sample.image_path
            return None, Problem(sample.key, path, str(error))

    workers = min(8, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(check, samples))
    kept, shapes, bad = [], [], []
    for sample, (shape, problem) in zip(samples, results, strict=True):
        if problem is None:
            kept.append(sample)
            shapes.append(shape)
        else:
            if on_error == "raise":
                raise InvalidFileError(problem.reason)
            bad.append(problem)
    return kept, shapes, bad


def report_skipped(problems, num_found, num_kept, images_dir, masks_dir):
    """Warns with every skipped sample and its reason; returns them as `(path, reason)`.

    Raises:
        ValueError: every sample was skipped.
    """
    skipped = [(p.path, p.reason) for p in sorted(problems, key=lambda p: p.key)]
    if skipped:
        listing = "\n".join(f"  {path}: {reason}" for path, reason in skipped)
        warnings.warn(
            f"Skipped {len(skipped)} of {num_found} samples found in '{images_dir}' "
            f"and '{masks_dir}' (on_error='skip'); kept {num_kept}:\n{listing}",
            UserWarning,
            stacklevel=4,
        )
    if not num_kept:
        raise ValueError(
            f"No usable image/mask pairs in '{images_dir}' and '{masks_dir}': "
            f"all {num_found} samples were skipped."
        )
    return skipped


def common_channels(samples, shapes):
    """The images' one channel count, or a `ValueError` naming two that differ."""
    by_channels = {}
    for sample, shape in zip(samples, shapes, strict=True):
        by_channels.setdefault(shape[2], sample.image_path)
    if len(by_channels) > 1:
        examples = "; ".join(f"'{p}' has {c}" for c, p in list(by_channels.items())[:3])
        raise ValueError(
            f"The images have different channel counts ({examples}), which "
            "color_mode='native' keeps: a model takes one count. Pick a color_mode "
            "('grayscale', 'rgb', 'rgba') or give files with the same channels."
        )
    return next(iter(by_channels))


def check_batchable(samples, shapes, image_size, batch_size):
    """Raises if pairs kept at their own size (`image_size=None`) differ but are batched."""
    sizes = {}
    for sample, shape in zip(samples, shapes, strict=True):
        sizes.setdefault(shape[:2], sample.image_path)
    if image_size is None and batch_size is not None and len(sizes) > 1:
        examples = "; ".join(f"'{p}' is {s}" for s, p in list(sizes.items())[:3])
        raise ValueError(
            "With image_size=None every pair must have the same size to be batched, "
            f"but they differ: {examples} (height, width). Pass image_size=(height, "
            "width) to resize them, or batch_size=None."
        )
