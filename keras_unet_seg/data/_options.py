"""Checking the arguments of `SegmentationDataset`'s constructors."""

import os
import warnings

import numpy as np

from keras_unet_seg._errors import InvalidArgumentError
from keras_unet_seg._validation import (
    check_bool,
    check_choice,
    invalid_value,
    is_int,
    is_pair,
    is_real,
)
from keras_unet_seg.data import _pipeline
from keras_unet_seg.data._images import COLOR_MODES
from keras_unet_seg.data.augment import JointAugmentation
from keras_unet_seg.data.intensity import intensity_spec

_ON_ERROR = ("raise", "skip")
_INTERPOLATIONS = (
    "bilinear",
    "nearest",
    "bicubic",
    "area",
    "lanczos3",
    "lanczos5",
    "gaussian",
    "mitchellcubic",
)


def check_options(arguments):
    """The `_pipeline.Options` of a constructor's `arguments` (its `locals()`), checked."""
    image_size = _check_image_size(arguments["image_size"])
    batch_size = arguments["batch_size"]
    if batch_size is not None and not (is_int(batch_size) and batch_size > 0):
        raise invalid_value("batch_size", "a positive int or None", batch_size)
    num_classes = arguments["num_classes"]
    check_mask_rule(num_classes, arguments["mask_threshold"], arguments["ignore_class"])
    crop, pad = arguments["crop_to_aspect_ratio"], arguments["pad_to_aspect_ratio"]
    _check_resizing(arguments["interpolation"], crop, pad, image_size)
    shuffle, seed, cache = arguments["shuffle"], arguments["seed"], arguments["cache"]
    check_bool("shuffle", shuffle)
    if seed is not None and not is_int(seed):
        raise invalid_value("seed", "an int or None", seed)
    if not isinstance(cache, (bool, str, os.PathLike)):
        raise invalid_value("cache", "a bool or a file path", cache)
    intensity = resolve_intensity(arguments["intensity"], arguments["normalization"])
    if shuffle and seed is None:
        seed = int(np.random.default_rng().integers(0, 1_000_000))
    return _pipeline.Options(
        image_size=image_size,
        batch_size=batch_size,
        num_classes=num_classes,
        mask_threshold=arguments["mask_threshold"],
        ignore_class=arguments["ignore_class"],
        intensity=intensity,
        interpolation=arguments["interpolation"],
        crop_to_aspect_ratio=crop,
        pad_to_aspect_ratio=pad,
        shuffle=shuffle,
        seed=seed,
        cache=cache,
        augmentation=make_augmentation(arguments["augment"], seed),
    )


def _check_image_size(image_size):
    if image_size is None:
        return None
    if not is_pair(image_size, lambda v: is_int(v) and v > 0):
        raise invalid_value(
            "image_size", "a tuple `(height, width)` of positive ints or None", image_size
        )
    return int(image_size[0]), int(image_size[1])


def check_mask_rule(num_classes, mask_threshold, ignore_class):
    if not (is_int(num_classes) and num_classes >= 1):
        raise invalid_value("num_classes", "an int >= 1 (1 for binary masks)", num_classes)
    if mask_threshold is not None:
        if num_classes != 1:
            raise invalid_value(
                "mask_threshold",
                "None when num_classes > 1 (class-id masks are not thresholded)",
                mask_threshold,
            )
        if not is_real(mask_threshold):
            raise invalid_value("mask_threshold", "a number or None", mask_threshold)
    if ignore_class is not None:
        if num_classes == 1:
            raise invalid_value("ignore_class", "None when num_classes=1", ignore_class)
        if not is_int(ignore_class):
            raise invalid_value("ignore_class", "an int or None", ignore_class)


def _check_resizing(interpolation, crop_to_aspect_ratio, pad_to_aspect_ratio, image_size):
    check_choice("interpolation", interpolation, _INTERPOLATIONS)
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise InvalidArgumentError(
            "Only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be True. "
            f"Received: crop_to_aspect_ratio={crop_to_aspect_ratio}, "
            f"pad_to_aspect_ratio={pad_to_aspect_ratio}"
        )
    if (crop_to_aspect_ratio or pad_to_aspect_ratio) and image_size is None:
        raise invalid_value(
            "image_size",
            "a tuple `(height, width)` when crop_to_aspect_ratio or pad_to_aspect_ratio is set",
            image_size,
        )


def resolve_intensity(intensity, normalization):
    """The intensity spec, from `intensity` or the deprecated `normalization` argument."""
    if normalization is not None:
        warnings.warn(
            "Argument `normalization` of SegmentationDataset is deprecated and will be "
            "removed in the next release: it was the name of the model's normalization "
            f"layers too. Use intensity={normalization!r} instead.",
            DeprecationWarning,
            stacklevel=4,
        )
        check_choice("normalization", normalization, ("scale", "standardize"))
        intensity = normalization
    return intensity_spec(intensity)


def make_augmentation(augment, seed):
    if augment is None or augment is False:
        return None
    if augment is True:
        return JointAugmentation(seed=seed)
    if isinstance(augment, dict):
        return JointAugmentation(**{"seed": seed, **augment})
    if isinstance(augment, JointAugmentation) or callable(augment):
        return augment
    raise invalid_value(
        "augment", "None, a bool, a dict of JointAugmentation arguments or a callable", augment
    )


def check_directory_options(color_mode, mask_suffix, on_error, verify, verbose):
    check_choice("color_mode", color_mode, COLOR_MODES)
    if not isinstance(mask_suffix, str):
        raise invalid_value("mask_suffix", "a str", mask_suffix)
    check_choice("on_error", on_error, _ON_ERROR)
    check_bool("verify", verify)
    check_bool("verbose", verbose)
