"""`SegmentationDataset`: `tf.data` pipelines of (image, mask) batches."""

import numbers
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from keras_unet_seg.data import _io
from keras_unet_seg.data._io import import_tf as _import_tf
from keras_unet_seg.data.augment import JointAugmentation
from keras_unet_seg.data.intensity import intensity_spec, normalize_image

_FLAT_SUBSETS = ("training", "validation", "both")
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


def _invalid(name, expected, value):
    return ValueError(
        f"Invalid value for argument `{name}`. Expected {expected}. Received: {name}={value!r}"
    )


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_common(
    image_size,
    batch_size,
    num_classes,
    mask_threshold,
    ignore_class,
    interpolation,
    crop_to_aspect_ratio,
    pad_to_aspect_ratio,
    shuffle,
    seed,
    cache,
):
    if image_size is not None:
        if (
            not isinstance(image_size, (tuple, list))
            or len(image_size) != 2
            or not all(_is_int(v) and v > 0 for v in image_size)
        ):
            raise _invalid(
                "image_size", "a tuple `(height, width)` of positive ints or None", image_size
            )
        image_size = (int(image_size[0]), int(image_size[1]))
    if batch_size is not None and not (_is_int(batch_size) and batch_size > 0):
        raise _invalid("batch_size", "a positive int or None", batch_size)
    if not (_is_int(num_classes) and num_classes >= 1):
        raise _invalid("num_classes", "an int >= 1 (1 for binary masks)", num_classes)
    if mask_threshold is not None:
        if num_classes != 1:
            raise _invalid(
                "mask_threshold",
                "None when num_classes > 1 (class-id masks are not thresholded)",
                mask_threshold,
            )
        if not isinstance(mask_threshold, numbers.Real) or isinstance(mask_threshold, bool):
            raise _invalid("mask_threshold", "a number or None", mask_threshold)
    if ignore_class is not None:
        if num_classes == 1:
            raise _invalid("ignore_class", "None when num_classes=1", ignore_class)
        if not _is_int(ignore_class):
            raise _invalid("ignore_class", "an int or None", ignore_class)
    if interpolation not in _INTERPOLATIONS:
        raise _invalid("interpolation", f"one of {_INTERPOLATIONS}", interpolation)
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError(
            "Only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be True. "
            f"Received: crop_to_aspect_ratio={crop_to_aspect_ratio}, "
            f"pad_to_aspect_ratio={pad_to_aspect_ratio}"
        )
    if (crop_to_aspect_ratio or pad_to_aspect_ratio) and image_size is None:
        raise _invalid(
            "image_size",
            "a tuple `(height, width)` when crop_to_aspect_ratio or pad_to_aspect_ratio is set",
            image_size,
        )
    if not isinstance(shuffle, bool):
        raise _invalid("shuffle", "a bool", shuffle)
    if seed is not None and not _is_int(seed):
        raise _invalid("seed", "an int or None", seed)
    if not (isinstance(cache, (bool, str, os.PathLike))):
        raise _invalid("cache", "a bool or a file path", cache)
    return image_size


def _resolve_intensity(intensity, normalization):
    """The intensity spec, from `intensity` or the deprecated `normalization` argument."""
    if normalization is not None:
        warnings.warn(
            "Argument `normalization` of SegmentationDataset is deprecated and will be "
            "removed in the next release: it was the name of the model's normalization "
            f"layers too. Use intensity={normalization!r} instead.",
            DeprecationWarning,
            stacklevel=3,
        )
        if normalization not in ("scale", "standardize"):
            raise _invalid("normalization", "'scale' or 'standardize'", normalization)
        intensity = normalization
    return intensity_spec(intensity)


def _make_augmentation(augment, seed):
    if augment is None or augment is False:
        return None
    if augment is True:
        return JointAugmentation(seed=seed)
    if isinstance(augment, dict):
        return JointAugmentation(**{"seed": seed, **augment})
    if isinstance(augment, JointAugmentation) or callable(augment):
        return augment
    raise _invalid(
        "augment", "None, a bool, a dict of JointAugmentation arguments or a callable", augment
    )


def _fit_to_size(image, mask, image_size, interpolation, crop, pad, mask_fill):
    """Resizes a pair to `image_size` (mask: nearest), after an optional crop or pad."""
    tf = _import_tf()
    if image_size is None:
        return image, mask
    target_h, target_w = image_size
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    if crop or pad:
        # Same arithmetic as keras.utils.image_utils.smart_resize.
        height_f = tf.cast(height, tf.float32)
        width_f = tf.cast(width, tf.float32)
        box_h = tf.cast(width_f * target_h / target_w, tf.int32)
        box_w = tf.cast(height_f * target_w / target_h, tf.int32)
        if crop:
            box_h = tf.maximum(tf.minimum(height, box_h), 1)
            box_w = tf.maximum(tf.minimum(width, box_w), 1)
            top = (height - box_h) // 2
            left = (width - box_w) // 2
            image = image[top : top + box_h, left : left + box_w]
            mask = mask[top : top + box_h, left : left + box_w]
        else:
            box_h = tf.maximum(height, box_h)
            box_w = tf.maximum(width, box_w)
            top = (box_h - height) // 2
            left = (box_w - width) // 2
            paddings = [[top, box_h - height - top], [left, box_w - width - left], [0, 0]]
            image = tf.pad(image, paddings)
            mask = tf.pad(mask, paddings, constant_values=tf.cast(mask_fill, mask.dtype))
    if interpolation in ("bilinear", "nearest", "area"):
        image = tf.image.resize(image, (target_h, target_w), method=interpolation)
    else:  # cubic and lanczos kernels overshoot: clip to the image's own range
        low, high = tf.reduce_min(image), tf.reduce_max(image)
        image = tf.image.resize(image, (target_h, target_w), method=interpolation)
        image = tf.clip_by_value(image, low, high)
    mask = tf.image.resize(mask, (target_h, target_w), method="nearest")
    return image, mask


def _finish(
    dataset,
    *,
    num_samples,
    batch_size,
    shuffle,
    seed,
    cache,
    augmentation,
    shuffle_before_cache,
):
    """Cache, shuffle, batch, augment and prefetch a dataset of pairs."""
    tf = _import_tf()
    if cache:
        dataset = dataset.cache("" if cache is True else os.fspath(cache))
    if shuffle and not shuffle_before_cache:
        # A file cache streams from disk: a full-size buffer would hold it all in memory.
        buffer = num_samples if cache is True or not cache else min(num_samples, 256)
        dataset = dataset.shuffle(max(buffer, 1), seed=seed, reshuffle_each_iteration=True)
    if batch_size is not None:
        dataset = dataset.batch(batch_size)
    if augmentation is not None:
        # Sequential on purpose: the augmentation's random state advances call by call,
        # so a parallel map would hand out random draws in a racy order.
        dataset = dataset.map(augmentation)
    return dataset.prefetch(tf.data.AUTOTUNE)


class SegmentationDataset:
    """Builds `tf.data.Dataset`s of `(image, mask)` batches for segmentation.

    Not instantiated: call `SegmentationDataset.from_directory(...)` for folders of
    image files and `SegmentationDataset.from_arrays(...)` for arrays in memory. Both
    return a plain `tf.data.Dataset`, as `keras.utils.image_dataset_from_directory`
    does, so `model.fit(dataset)` works on the TensorFlow, JAX and PyTorch backends.

    Each element is a pair:

    - images: float32 `(batch, height, width, channels)`, channels 1, 3 or 4 after
      `color_mode` (or the files' own with `color_mode="native"`); each whole image
      normalised by `intensity` (`normalize_image`) before resizing: by default
      8-bit images divided by 255 and every other dtype (16-bit, 32-bit, float)
      scaled from its 1st to its 99.8th percentile.
    - masks: `(batch, height, width, 1)`: float32 0/1 when `num_classes=1` (binary),
      int32 class ids when `num_classes > 1`.
    """

    def __init__(self, *args, **kwargs):
        raise TypeError(
            "SegmentationDataset is not instantiated: call "
            "SegmentationDataset.from_directory(...) or SegmentationDataset.from_arrays(...), "
            "which return a tf.data.Dataset."
        )

    @classmethod
    def from_directory(
        cls,
        directory,
        subset=None,
        *,
        image_size=(256, 256),
        batch_size=32,
        color_mode="rgb",
        num_classes=1,
        mask_suffix="",
        mask_threshold=None,
        ignore_class=None,
        intensity="auto",
        interpolation="bilinear",
        crop_to_aspect_ratio=False,
        pad_to_aspect_ratio=False,
        shuffle=True,
        seed=None,
        validation_split=None,
        augment=None,
        cache=False,
        on_error="raise",
        verify=True,
        verbose=True,
        normalization=None,
    ):
        """Reads pairs of image and mask files from a folder as a `tf.data.Dataset`.

        Two layouts are read. Split folders, where `subset` names the folder:

        ```
        directory/train/images/cat_01.jpg    directory/train/masks/cat_01.png
        directory/val/images/...             directory/val/masks/...
        ```

        or one flat folder, `directory/images` and `directory/masks`, split with
        `validation_split`, `seed` and `subset="training" | "validation" | "both"` as
        in `keras.utils.image_dataset_from_directory`, whose argument names this
        follows (`subset=None` and no `validation_split` read every pair).

        An image pairs with the mask of the same relative path without extension,
        plus `mask_suffix` (`cat_01.jpg` with `cat_01.png`, or with
        `cat_01_mask.png` when `mask_suffix="_mask"`); subfolders are read
        recursively, hidden files and files without an image extension are not
        images. Formats: PNG (8 and 16 bit), JPEG, BMP, GIF and TIFF (8, 16 and 32
        bit, float, any channel count); the first frame of multi-frame files. Files
        are read with `keras_unet_seg.data.read_image` (Pillow, and tifffile for
        TIFFs Pillow cannot read): turned upright by their EXIF orientation (images
        and masks alike), palette (indexed) masks, as Pascal VOC ships them, give
        their indices, not colours; no file larger than `PIL.Image.MAX_IMAGE_PIXELS`
        is decoded.

        Every file is checked before the dataset is built (with `verify=True`, by
        decoding it), and a bad file raises a `ValueError` naming it: an image with
        no mask or a mask with no image, two files with the same name, an empty,
        truncated or undecodable file, content that does not match the extension (a
        BMP named `.jpg`), an image holding NaN or infinite values, too many pixels,
        or channels `color_mode` cannot take, an image and mask of different sizes
        (upright), a mask that is not
        binary (`num_classes=1`) or holds values that are not class ids, and an empty
        folder. With `on_error="skip"`, bad samples are left out instead, and a
        warning lists each with its reason; they are also on `dataset.skipped`.
        Nothing is left out silently.

        Masks become the training target by this rule: with `num_classes=1` a mask
        must hold 0 for background and a single other positive value for foreground
        (0/1, 0/255, 0/65535, ...), and foreground is value > 0; with
        `mask_threshold=t`, foreground is value > t and any values are allowed (for
        masks saved with JPEG artefacts, say). With `num_classes > 1`, values are
        class ids in `[0, num_classes)`, or `ignore_class`.

        Pipeline: (shuffle paths) -> parallel decode and normalise -> resize ->
        (cache -> shuffle) -> batch -> augment -> prefetch(AUTOTUNE). The same `seed`
        gives the same batches on every run (order and augmentation); each epoch is
        reshuffled.

        Args:
            directory: path of the root folder.
            subset: for split folders, the name of the subfolder to read (`"train"`,
                `"val"`, ...); for a flat folder, `None` (every pair), or with
                `validation_split`, `"training"`, `"validation"` or `"both"`.
            image_size: `(height, width)`, default `(256, 256)`: size every pair is
                resized to, the image with `interpolation`, the mask always with
                nearest neighbour. `None` keeps the files' size (all pairs must then
                have the same size unless `batch_size=None`).
            batch_size: int, default 32, or `None` for unbatched pairs.
            color_mode: `"rgb"` (default), `"grayscale"` or `"rgba"`: the number of
                image channels (3, 1, 4); files are converted as needed. `"native"`
                keeps the files' own channels (2, 5, ... for multi-channel TIFFs),
                which must then be the same in every image.
            num_classes: int, default 1. 1 for binary masks (float32 0/1), more for
                class-id masks (int32).
            mask_suffix: str, default `""`. Suffix of a mask's name after the image's
                name, such as `"_mask"`.
            mask_threshold: number or `None` (default). With `num_classes=1`,
                foreground is value > `mask_threshold`; see the rule above.
            ignore_class: int or `None` (default). With `num_classes > 1`, a mask
                value allowed besides the class ids (such as 255 for Pascal VOC
                boundaries), kept as it is for a loss or metric that ignores it; also
                the padding value of `pad_to_aspect_ratio` for masks (else 0).
            intensity: how each whole image's values are normalised, before
                resizing: `"auto"` (default: 8-bit / 255; 16-bit, 32-bit and float
                images from their 1st to their 99.8th percentile), `"scale"` (by the
                dtype's range), `"percentile"`, `"minmax"`, `"standardize"`, `None`
                (as stored), or a dict such as `{"mode": "percentile", "low": 2,
                "high": 99, "per_channel": True}`; see `normalize_image`. Give the
                same to `read_image` when predicting.
            interpolation: image resizing method, default `"bilinear"`; also
                `"nearest"`, `"bicubic"`, `"area"`, `"lanczos3"`, `"lanczos5"`,
                `"gaussian"`, `"mitchellcubic"`.
            crop_to_aspect_ratio: bool, default `False`. Crop image and mask (centred)
                to the aspect ratio of `image_size` before resizing, so nothing is
                distorted.
            pad_to_aspect_ratio: bool, default `False`. Pad image (zeros) and mask
                (background, or `ignore_class`) to the aspect ratio of `image_size`
                before resizing.
            shuffle: bool, default `True`. Shuffle the pairs, again each epoch.
            seed: int or `None`. Seeds shuffling, the validation split and `augment`.
            validation_split: float in (0, 1) or `None`. Fraction of the pairs of a
                flat folder held out for `subset="validation"`. The split is a seeded
                permutation of the sorted pairs whatever `shuffle` is, so `seed` is
                required, and the subsets are disjoint and together hold every pair.
            augment: `None` (default), `True` (`JointAugmentation` defaults), a dict
                of `JointAugmentation` arguments, or a callable taking and returning
                `(images, masks)` batches. Seeded with `seed` unless it has its own.
            cache: `False` (default), `True` to keep decoded, resized pairs in memory
                after the first epoch, or a file path to cache them on disk. A file
                cache is reused as it is by later runs: delete it when the data or
                the arguments change. With a file cache the shuffle buffer holds at
                most 256 pairs.
            on_error: `"raise"` (default) or `"skip"`.
            verify: bool, default `True`. Decode every file up front (full check);
                `False` checks headers only (sizes, formats, pairing) and leaves
                decoding errors and mask values to the pipeline, which then fails
                with an error naming the file.
            verbose: bool, default `True`. Print how many pairs were found and how
                many each subset uses, as `image_dataset_from_directory` does.
            normalization: deprecated: `intensity` under its former name.

        Returns:
            A `tf.data.Dataset` of `(images, masks)`, or a tuple
            `(train_dataset, val_dataset)` for `subset="both"`. Each dataset carries
            Python attributes `image_paths` and `mask_paths` (its pairs, sorted),
            `skipped` (a list of `(path, reason)` for the samples left out with
            `on_error="skip"`), `intensity` (the complete intensity spec, to give
            `read_image` at prediction) and `image_sizes` (each pair's upright
            `(height, width)` on disk, before resizing), lost by further
            transformations such as `.map`.

        Raises:
            ValueError: an argument is invalid, a folder is missing or empty, or (with
                `on_error="raise"`) a file is bad; the message names the file.

        Example:

        >>> import tempfile
        >>> from keras_unet_seg.data import make_synthetic_dataset
        >>> folder = tempfile.TemporaryDirectory()
        >>> root = make_synthetic_dataset(
        ...     folder.name, num_train=4, num_val=2, image_size=(32, 32), seed=0
        ... )
        >>> train = SegmentationDataset.from_directory(
        ...     root, subset="train", image_size=(32, 32), batch_size=2, seed=0
        ... )  # doctest: +ELLIPSIS
        Found 4 image/mask pairs in '.../train'.
        >>> images, masks = next(iter(train))
        >>> tuple(images.shape), images.dtype.name, tuple(masks.shape), masks.dtype.name
        ((2, 32, 32, 3), 'float32', (2, 32, 32, 1), 'float32')
        >>> len(train.image_paths), train.skipped
        (4, [])
        >>> folder.cleanup()
        """
        tf = _import_tf()
        image_size = _check_common(
            image_size,
            batch_size,
            num_classes,
            mask_threshold,
            ignore_class,
            interpolation,
            crop_to_aspect_ratio,
            pad_to_aspect_ratio,
            shuffle,
            seed,
            cache,
        )
        intensity = _resolve_intensity(intensity, normalization)
        if color_mode not in _io.COLOR_MODES:
            raise _invalid("color_mode", f"one of {_io.COLOR_MODES}", color_mode)
        if not isinstance(mask_suffix, str):
            raise _invalid("mask_suffix", "a str", mask_suffix)
        if on_error not in _ON_ERROR:
            raise _invalid("on_error", f"one of {_ON_ERROR}", on_error)
        if not isinstance(verify, bool):
            raise _invalid("verify", "a bool", verify)
        if not isinstance(verbose, bool):
            raise _invalid("verbose", "a bool", verbose)
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise _invalid("directory", "an existing folder", directory)

        images_dir, masks_dir = _resolve_layout(directory, subset, validation_split, seed)

        samples, problems, num_found = _io.pair_files(images_dir, masks_dir, mask_suffix)
        if num_found == 0:
            raise ValueError(
                f"No image files found in '{images_dir}' or '{masks_dir}' (extensions "
                f"{', '.join(_io.IMAGE_EXTENSIONS)})."
            )
        if problems and on_error == "raise":
            raise _io.InvalidFileError(problems[0].reason)
        kept, shapes, bad = _check_samples(
            samples,
            color_mode,
            num_classes,
            mask_threshold,
            ignore_class,
            verify,
            on_error,
            intensity,
        )
        problems = sorted(problems + bad, key=lambda p: p.key)
        skipped = [(p.path, p.reason) for p in problems]
        if skipped:
            listing = "\n".join(f"  {path}: {reason}" for path, reason in skipped)
            warnings.warn(
                f"Skipped {len(skipped)} of {num_found} samples found in '{images_dir}' "
                f"and '{masks_dir}' (on_error='skip'); kept {len(kept)}:\n{listing}",
                UserWarning,
                stacklevel=2,
            )
        if not kept:
            raise ValueError(
                f"No usable image/mask pairs in '{images_dir}' and '{masks_dir}': "
                f"all {num_found} samples were skipped."
            )
        sizes = [shape[:2] for shape in shapes]
        size_of = {sample.image_path: size for sample, size in zip(kept, sizes, strict=True)}
        channels = _common_channels(kept, shapes)
        if image_size is None and batch_size is not None and len(set(sizes)) > 1:
            by_size = {}
            for sample, size in zip(kept, sizes, strict=True):
                by_size.setdefault(size, sample.image_path)
            examples = "; ".join(f"'{p}' is {s}" for s, p in list(by_size.items())[:3])
            raise ValueError(
                "With image_size=None every pair must have the same size to be batched, "
                f"but they differ: {examples} (height, width). Pass image_size=(height, "
                "width) to resize them, or batch_size=None."
            )

        if shuffle and seed is None:
            seed = int(np.random.default_rng().integers(0, 1_000_000))
        augmentation = _make_augmentation(augment, seed)

        mask_dtype = tf.float32 if num_classes == 1 else tf.int32
        mask_fill = 0 if ignore_class is None else ignore_class

        def load(image_path, mask_path):
            def read(image_path, mask_path):
                image_path = image_path.decode()
                mask_path = mask_path.decode()
                image = _io.read_image(image_path, color_mode, intensity)
                mask = _io.read_mask(mask_path, num_classes, mask_threshold, ignore_class)
                if image.shape[:2] != mask.shape[:2]:
                    raise _io.InvalidFileError(
                        f"Image '{image_path}' and mask '{mask_path}' have different "
                        f"sizes: image (height, width) = {image.shape[:2]}, mask "
                        f"(height, width) = {mask.shape[:2]}."
                    )
                return image, mask

            image, mask = tf.numpy_function(
                read, [image_path, mask_path], (tf.float32, mask_dtype), stateful=False
            )
            image.set_shape((None, None, channels))
            mask.set_shape((None, None, 1))
            image, mask = _fit_to_size(
                image,
                mask,
                image_size,
                interpolation,
                crop_to_aspect_ratio,
                pad_to_aspect_ratio,
                mask_fill,
            )
            if image_size is not None:
                image.set_shape((*image_size, channels))
                mask.set_shape((*image_size, 1))
            return image, mask

        def build(subset_samples, cache_path):
            if not subset_samples:
                raise ValueError(
                    f"validation_split={validation_split} of {len(kept)} pairs leaves "
                    f"subset '{subset}' empty; use a larger validation_split or more data."
                )
            image_paths = [s.image_path for s in subset_samples]
            mask_paths = [s.mask_path for s in subset_samples]
            dataset = tf.data.Dataset.from_tensor_slices((image_paths, mask_paths))
            shuffle_paths = shuffle and not cache
            if shuffle_paths:
                dataset = dataset.shuffle(
                    len(image_paths), seed=seed, reshuffle_each_iteration=True
                )
            dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            dataset = _finish(
                dataset,
                num_samples=len(image_paths),
                batch_size=batch_size,
                shuffle=shuffle,
                seed=seed,
                cache=cache_path,
                augmentation=augmentation,
                shuffle_before_cache=shuffle_paths,
            )
            dataset.image_paths = image_paths
            dataset.mask_paths = mask_paths
            dataset.skipped = list(skipped)
            dataset.intensity = dict(intensity)
            dataset.image_sizes = [size_of[path] for path in image_paths]
            return dataset

        if verbose:
            print(f"Found {len(kept)} image/mask pairs in '{os.path.dirname(images_dir)}'.")
        if validation_split is None:
            return build(kept, cache)
        order = np.random.RandomState(seed).permutation(len(kept))
        num_val = int(validation_split * len(kept))
        train_samples = [kept[i] for i in sorted(order[: len(kept) - num_val])]
        val_samples = [kept[i] for i in sorted(order[len(kept) - num_val :])]
        if verbose and subset in ("training", "both"):
            print(f"Using {len(train_samples)} pairs for training.")
        if verbose and subset in ("validation", "both"):
            print(f"Using {len(val_samples)} pairs for validation.")
        if subset == "training":
            return build(train_samples, cache)
        if subset == "validation":
            return build(val_samples, cache)
        suffixed = isinstance(cache, (str, os.PathLike))
        return (
            build(train_samples, f"{os.fspath(cache)}_training" if suffixed else cache),
            build(val_samples, f"{os.fspath(cache)}_validation" if suffixed else cache),
        )

    @classmethod
    def from_arrays(
        cls,
        images,
        masks,
        *,
        image_size=None,
        batch_size=32,
        num_classes=1,
        mask_threshold=None,
        ignore_class=None,
        intensity="auto",
        interpolation="bilinear",
        crop_to_aspect_ratio=False,
        pad_to_aspect_ratio=False,
        shuffle=True,
        seed=None,
        augment=None,
        cache=False,
        normalization=None,
    ):
        """Builds the same pipeline as `from_directory` from arrays in memory.

        Each image is normalised on its own by `intensity`, exactly as a file of its
        dtype would be (`normalize_image`), so the dtype rules are those of files:
        under the default `"auto"`, uint8 and bool images are divided by 255 (by 1)
        and every other dtype (uint16, signed or 32-bit integers, floats in any
        range) is scaled from its 1st to its 99.8th percentile; under `"scale"`,
        uint8 / 255, other integers / 65535 (values must lie in [0, 65535]) and
        floats as they are.

        Args:
            images: array `(num_samples, height, width, channels)` (or without the
                channel axis, for grayscale), any channel count, real numbers only:
                NaN or infinite values are refused.
            masks: array `(num_samples, height, width)` or `(..., 1)` of integers,
                bools or integral floats, following the rule of `from_directory`
                for `num_classes`, `mask_threshold` and `ignore_class`.
            image_size: `(height, width)` to resize to, or `None` (default) to keep
                the arrays' size.

        The other arguments, `batch_size`, `num_classes`, `mask_threshold`,
        `ignore_class`, `intensity`, `interpolation`, `crop_to_aspect_ratio`,
        `pad_to_aspect_ratio`, `shuffle`, `seed`, `augment`, `cache` and the
        deprecated `normalization`, are those of `from_directory`.

        Returns:
            A `tf.data.Dataset` of `(images, masks)` batches: float32 images and
            `(batch, height, width, 1)` masks, float32 0/1 (`num_classes=1`) or
            int32 class ids.

        Raises:
            ValueError: the arrays have wrong ranks, dtypes or disagreeing shapes, an
                image holds NaN or infinite values, or a mask breaks the rule (the
                message gives its index).

        Example:

        >>> import numpy as np
        >>> images = np.zeros((6, 16, 16, 3), dtype="uint8")
        >>> masks = np.zeros((6, 16, 16), dtype="uint8")
        >>> masks[:, 4:8, 4:8] = 255
        >>> dataset = SegmentationDataset.from_arrays(images, masks, batch_size=4, seed=0)
        >>> [tuple(m.shape) for _, m in dataset]
        [(4, 16, 16, 1), (2, 16, 16, 1)]
        """
        tf = _import_tf()
        image_size = _check_common(
            image_size,
            batch_size,
            num_classes,
            mask_threshold,
            ignore_class,
            interpolation,
            crop_to_aspect_ratio,
            pad_to_aspect_ratio,
            shuffle,
            seed,
            cache,
        )
        spec = _resolve_intensity(intensity, normalization)
        images = np.asarray(images)
        masks = np.asarray(masks)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise _invalid(
                "images",
                "an array (num_samples, height, width[, channels])",
                f"array of shape {images.shape}",
            )
        if images.dtype.kind not in "uifb":
            raise _invalid("images", "a real numeric array", f"array of dtype {images.dtype}")
        if masks.ndim == 4 and masks.shape[-1] == 1:
            masks = masks[..., 0]
        if masks.shape != images.shape[:3]:
            raise ValueError(
                "Arguments `images` and `masks` disagree: expected masks of shape "
                f"{images.shape[:3]} (or {(*images.shape[:3], 1)}) for images of shape "
                f"{images.shape}. Received: masks.shape={masks.shape}"
            )
        if len(images) == 0:
            raise _invalid("images", "at least one sample", f"array of shape {images.shape}")
        if masks.dtype.kind not in "uifb":
            raise _invalid("masks", "a numeric array", f"array of dtype {masks.dtype}")
        targets = np.empty((*masks.shape, 1), np.float32 if num_classes == 1 else np.int32)
        for index, mask in enumerate(masks):
            if mask.dtype.kind == "f" and not np.array_equal(mask, np.round(mask)):
                if num_classes > 1 or mask_threshold is None:
                    raise _io.InvalidFileError(
                        f"Mask 'masks[{index}]' holds non-integer values; pass "
                        "mask_threshold=... to binarise it."
                    )
            values = mask.astype(np.uint8) if mask.dtype == np.bool_ else mask
            targets[index] = _io.convert_mask(
                values, f"masks[{index}]", num_classes, mask_threshold, ignore_class
            )
        normalized = np.empty(images.shape, np.float32)
        for index, image in enumerate(images):
            try:
                normalized[index] = normalize_image(image, **spec)
            except ValueError as error:
                raise ValueError(f"Image 'images[{index}]': {error}") from None
        if shuffle and seed is None:
            seed = int(np.random.default_rng().integers(0, 1_000_000))
        augmentation = _make_augmentation(augment, seed)
        mask_fill = 0 if ignore_class is None else ignore_class

        def prepare(image, mask):
            return _fit_to_size(
                image,
                mask,
                image_size,
                interpolation,
                crop_to_aspect_ratio,
                pad_to_aspect_ratio,
                mask_fill,
            )

        dataset = tf.data.Dataset.from_tensor_slices((normalized, targets))
        dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return _finish(
            dataset,
            num_samples=len(images),
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            cache=cache,
            augmentation=augmentation,
            shuffle_before_cache=False,
        )


def _split_subsets(directory):
    """The subsets of either split layout: `<subset>/images` or `images/<subset>`."""
    found = set()
    for name in sorted(os.listdir(directory)):
        if os.path.isdir(os.path.join(directory, name, "images")):
            found.add(name)
    by_kind = os.path.join(directory, "images")
    if os.path.isdir(by_kind):
        found.update(
            name
            for name in os.listdir(by_kind)
            if os.path.isdir(os.path.join(by_kind, name))
            and os.path.isdir(os.path.join(directory, "masks", name))
        )
    return sorted(found)


def _layout_help(directory):
    return (
        f"Expected split folders '{directory}/<subset>/images' and "
        f"'{directory}/<subset>/masks', or '{directory}/images/<subset>' and "
        f"'{directory}/masks/<subset>', or one flat folder '{directory}/images' and "
        f"'{directory}/masks' (with validation_split to split it)."
    )


def _resolve_layout(directory, subset, validation_split, seed):
    """Returns `(images_dir, masks_dir)` for the arguments, or raises.

    A subset is found in either split layout: `directory/<subset>/{images,masks}` or
    `directory/{images,masks}/<subset>`.
    """
    flat = os.path.isdir(os.path.join(directory, "images"))
    if validation_split is not None:
        if not isinstance(validation_split, numbers.Real) or not 0 < validation_split < 1:
            raise _invalid("validation_split", "a float in (0, 1) or None", validation_split)
        if subset not in _FLAT_SUBSETS:
            raise _invalid(
                "subset",
                f"one of {_FLAT_SUBSETS} when validation_split is set",
                subset,
            )
        if seed is None:
            raise _invalid(
                "seed",
                "an int when validation_split is set, so that the training and "
                "validation subsets are disjoint",
                seed,
            )
    elif subset in _FLAT_SUBSETS:
        raise _invalid(
            "validation_split",
            f"a float in (0, 1) when subset={subset!r}",
            validation_split,
        )
    if subset is None or subset in _FLAT_SUBSETS:
        if not flat:
            subsets = _split_subsets(directory)
            hint = (
                f" It has split folders {subsets}: pass subset={subsets[0]!r}." if subsets else ""
            )
            raise ValueError(
                f"Folder '{directory}' has no 'images' subfolder. {_layout_help(directory)}{hint}"
            )
        images_dir = os.path.join(directory, "images")
        masks_dir = os.path.join(directory, "masks")
    else:
        if not isinstance(subset, str):
            raise _invalid("subset", "a str or None", subset)
        by_subset = os.path.join(directory, subset)
        by_kind = [os.path.join(directory, kind, subset) for kind in ("images", "masks")]
        if os.path.isdir(os.path.join(by_subset, "images")):
            images_dir = os.path.join(by_subset, "images")
            masks_dir = os.path.join(by_subset, "masks")
        elif os.path.isdir(by_kind[0]):
            images_dir, masks_dir = by_kind
        else:
            subsets = _split_subsets(directory)
            hint = ""
            if not subsets and flat:
                hint = (
                    " It is one flat folder: pass subset=None, or subset='training' or "
                    "'validation' with validation_split and seed to split it."
                )
            raise _invalid(
                "subset",
                f"the name of a subset of '{directory}' (found: {subsets}). "
                f"{_layout_help(directory)}{hint}",
                subset,
            )
    if not os.path.isdir(masks_dir):
        raise ValueError(f"Folder '{images_dir}' has no matching masks folder '{masks_dir}'.")
    return images_dir, masks_dir


def _common_channels(samples, shapes):
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


def _check_samples(
    samples, color_mode, num_classes, mask_threshold, ignore_class, verify, on_error, intensity
):
    """Checks every pair in parallel threads (Pillow decodes without the GIL)."""

    def check(sample):
        try:
            return _io.check_sample(
                sample, color_mode, num_classes, mask_threshold, ignore_class, verify, intensity
            ), None
        except _io.InvalidFileError as error:
            path = error.path or sample.image_path
            return None, _io.Problem(sample.key, path, str(error))

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
                raise _io.InvalidFileError(problem.reason)
            bad.append(problem)
    return kept, shapes, bad
