"""Checking every image/mask pair before a pipeline is built: sizes, channels, decoding.

`from_directory` refuses bad files up front, every one in one message naming each, or
leaves them out with `on_error="skip"`, listing them (printed, or in a warning when
not verbose): nothing is left out silently.
"""

import contextlib
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from keras_unet_seg._errors import DataError
from keras_unet_seg._naming import option
from keras_unet_seg.data._decoding import InvalidFileError, max_decoded_bytes, read_header
from keras_unet_seg.data._images import channels_for, read_image
from keras_unet_seg.data._layout import Problem
from keras_unet_seg.data._masks import check_mask_values, read_mask_values


class PairFacts(NamedTuple):
    """What checking a pair found: its upright size, channels, and mask rule."""

    height: int
    width: int
    channels: int
    label_mask: bool  # a binary mask read as a label image (`is_label_image`)


# The decoded bytes the checking threads hold at once when Pillow's limit is off.
_DEFAULT_BUDGET = 3 * 89_478_485


class _ByteBudget:
    """Decoded bytes that threads may hold at once: a file waits until its bytes are free
    (one larger than the whole budget waits for every other to finish)."""

    def __init__(self, total):
        self._total = self._free = total
        self._condition = threading.Condition()

    @contextlib.contextmanager
    def hold(self, nbytes):
        nbytes = min(nbytes, self._total)
        with self._condition:
            self._condition.wait_for(lambda: self._free >= nbytes)
            self._free -= nbytes
        try:
            yield
        finally:
            with self._condition:
                self._free += nbytes
                self._condition.notify_all()


def _decoded_bytes(header):
    return header.height * header.width * header.channels * header.bytes_per_sample


def check_sample(
    sample,
    color_mode,
    num_classes,
    mask_threshold,
    ignore_class,
    verify,
    intensity="auto",
    budget=None,
):
    """Checks one pair; returns its `PairFacts` or raises `InvalidFileError`.

    Sizes are compared upright (after EXIF orientation). `channels` are those of the
    image as `color_mode` reads it (decoded when `verify`, else from the header), its
    decoded bytes held from `budget` (a `_ByteBudget`) while it is decoded.
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
        nbytes = _decoded_bytes(image) + _decoded_bytes(mask)
        with budget.hold(nbytes) if budget else contextlib.nullcontext():
            channels = read_image(sample.image_path, color_mode, intensity).shape[-1]
            values = read_mask_values(sample.mask_path)
            label_mask = check_mask_values(
                values, sample.mask_path, num_classes, mask_threshold, ignore_class
            )
    return PairFacts(image.height, image.width, channels, label_mask)


def check_samples(samples, **checks):
    """Checks every pair in parallel threads (Pillow decodes without the GIL).

    The threads together decode at most `max_decoded_bytes()` at once (the limit of
    one file), so memory stays that of the largest file whatever the thread count.
    Returns `(kept, shapes, bad)`: the good pairs, their `PairFacts`
    and a `Problem` for each bad one (every pair is checked, whatever `on_error`).
    `checks` are the keyword arguments of `check_sample`.
    """
    budget = _ByteBudget(max_decoded_bytes() or _DEFAULT_BUDGET)

    def check(sample):
        try:
            return check_sample(sample, **checks, budget=budget), None
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
            bad.append(problem)
    return kept, shapes, bad


def report_problems(problems, num_found, num_kept, folders, on_error, verbose):
    """Raises with every bad sample (`on_error="raise"`), or lists the skipped ones.

    The skipped samples are printed (`verbose`) or given in a warning, one a line;
    they are returned as `(path, reason)`.

    Raises:
        InvalidFileError: with `on_error="raise"`, one or more samples are bad: the
            message gives each one's reason (which names its file).
        ValueError: every sample was skipped.
    """
    problems = sorted(problems, key=lambda p: p.key)
    images_dir, masks_dir = folders
    where = f"{num_found} samples found in '{images_dir}' and '{masks_dir}'"
    if problems and on_error == "raise":
        if len(problems) == 1:
            message = f"{problems[0].reason} Pass {option('on_error', 'skip')} to leave it out."
        else:
            listing = "\n".join(f"  {p.reason}" for p in problems)
            message = (
                f"{len(problems)} of {where} cannot be used:\n{listing}\nFix them, or pass "
                f"{option('on_error', 'skip')} to leave them out."
            )
        raise InvalidFileError(message, problems[0].path)
    skipped = [(p.path, p.reason) for p in problems]
    if skipped:
        listing = "\n".join(f"  {reason}" for _, reason in skipped)  # each names its file
        skip = option("on_error", "skip")
        message = f"Skipped {len(skipped)} of {where} ({skip}); kept {num_kept}:"
        if verbose:
            print(f"{message}\n{listing}")
        else:
            warnings.warn(f"{message}\n{listing}", UserWarning, stacklevel=4)
    if not num_kept:
        raise DataError(
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
        raise DataError(
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
        raise DataError(
            "With image_size=None every pair must have the same size to be batched, "
            f"but they differ: {examples} (height, width). Pass image_size=(height, "
            "width) to resize them, or batch_size=None."
        )
