"""`SegmentationDataset`: `tf.data` pipelines of (image, mask) batches."""

import inspect
import os
from dataclasses import dataclass

import numpy as np

from keras_unet_seg._errors import DataError, InvalidArgumentError, UserError
from keras_unet_seg._naming import option
from keras_unet_seg._validation import (
    invalid_value,
)
from keras_unet_seg.data import _checks, _layout, _options, _pipeline, _volume_pipeline
from keras_unet_seg.data._decoding import IMAGE_EXTENSIONS, InvalidFileError
from keras_unet_seg.data._masks import convert_mask
from keras_unet_seg.data.intensity import normalize_image
from keras_unet_seg.data.volumes import VOLUME_EXTENSIONS


class SegmentationDataset:
    """Builds `tf.data.Dataset`s of `(image, mask)` batches for segmentation.

    Two ways to use it. Construct it with a folder and the options of
    `from_directory` (or of `from_volumes`, told by `patch_size`), then call
    `train()` and `validation()`: the validation dataset is read in order, never
    augmented (for volumes, grid patches). Or call a constructor for one dataset:
    `from_directory(...)` for folders of images, `from_arrays(...)` for arrays in
    memory, `from_volumes(...)` for folders of volumes. Each dataset is a plain
    `tf.data.Dataset`, as `keras.utils.image_dataset_from_directory` returns, so
    `model.fit(dataset)` works on the TensorFlow, JAX and PyTorch backends.

    Each element is a pair:

    - images: float32 `(batch, height, width, channels)`, channels 1, 3 or 4 after
      `color_mode` (or the files' own with `color_mode="native"`); each whole image
      normalised by `intensity` (`normalize_image`) before resizing: by default
      8-bit images divided by 255 and every other dtype (16-bit, 32-bit, float)
      scaled from its 1st to its 99.8th percentile.
    - masks: `(batch, height, width, 1)`: float32 0/1 when `num_classes=1` (binary),
      int32 class ids when `num_classes > 1`.

    Masks become the training target by this rule: with `num_classes=1` a mask
    must hold 0 for background and a single other positive value for foreground
    (0/1, 0/255, 0/65535, ...), or be a label image (0 and the object ids 1..N, as
    StarDist, Cellpose and QuPath write, none of them its type's maximum; said when
    `verbose`), and foreground is value > 0; with
    `mask_threshold=t`, foreground is value > t and any values are allowed (for
    masks saved with JPEG artefacts, say). With `num_classes > 1`, values are
    class ids in `[0, num_classes)`, or `ignore_class`.

    Pipeline: (shuffle paths) -> parallel decode and normalise -> resize ->
    (cache -> shuffle) -> batch -> augment -> prefetch(AUTOTUNE). The same `seed`
    gives the same batches on every run (order and augmentation); each epoch is
    reshuffled.

    The arguments below are those of both constructors, `from_directory` and
    `from_arrays`.

    Args:
        image_size: `(height, width)` (default `(256, 256)` for `from_directory`,
            `None` for `from_arrays`): size every pair is resized to, the image
            with `interpolation`, the mask always with nearest neighbour. `None`
            keeps the files' size (all pairs must then have the same size unless
            `batch_size=None`).
        batch_size: int, default 32, or `None` for unbatched pairs.
        num_classes: int, default 1. 1 for binary masks (float32 0/1), more for
            class-id masks (int32).
        mask_threshold: number or `None` (default). With `num_classes=1`,
            foreground is value > `mask_threshold`; see the rule above.
        ignore_class: int or `None` (default). With `num_classes > 1`, a mask
            value allowed besides the class ids (such as 255 for Pascal VOC
            boundaries), kept as it is for a loss or metric that ignores it; also
            the padding value of `pad_to_aspect_ratio` for masks (else 0).
        intensity: how each whole image's values are normalised, before resizing:
            `"auto"` (default: 8-bit / 255; 16-bit, 32-bit and float images from
            their 1st to their 99.8th percentile), `"scale"` (by the dtype's
            range), `"percentile"`, `"minmax"`, `"standardize"`, `None` (as
            stored), or a dict such as `{"mode": "percentile", "low": 2, "high":
            99, "per_channel": True}`; see `normalize_image`. Give the same to
            `read_image` when predicting.
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
        augment: `None` (default), `True` (`JointAugmentation` defaults), a dict
            of `JointAugmentation` arguments, or a callable taking and returning
            `(images, masks)` batches. Seeded with `seed` unless it has its own.
        cache: `False` (default), `True` to keep decoded, resized pairs in memory
            after the first epoch, or a file path to cache them on disk. A file
            cache is reused as it is by later runs: delete it when the data or
            the arguments change. With a file cache the shuffle buffer holds at
            most 256 pairs. An instance's `train()` and `validation()` (and
            `subset="both"`) add `_train` and `_validation` (`_training` and
            `_validation`) to the path, one cache each.
        normalization: deprecated: `intensity` under its former name.

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

    def __init__(self, directory, *, train_subset=None, validation_subset=None, **options):
        """The training and validation datasets of a folder, made on demand.

        Args:
            directory: path of the root folder.
            train_subset: str or `None` (default): `"train"`, or `"training"` when
                the options hold `validation_split` (a flat folder).
            validation_subset: str or `None` (default): `"val"`, or `"validation"`.
            **options: keyword arguments of `from_directory`, or of `from_volumes`
                when they hold `patch_size`; checked against its signature here,
                and in full when a dataset is made.

        Example:

        >>> import tempfile
        >>> from keras_unet_seg.data import make_synthetic_dataset
        >>> folder = tempfile.TemporaryDirectory()
        >>> root = make_synthetic_dataset(folder.name, 4, 2, image_size=(32, 32))
        >>> data = SegmentationDataset(root, image_size=(32, 32), batch_size=2, seed=0)
        >>> data  # doctest: +ELLIPSIS
        SegmentationDataset('...', image_size=(32, 32), batch_size=2, seed=0)
        >>> train, val = data.train(), data.validation()  # doctest: +ELLIPSIS
        Found 4 image/mask pairs in '.../train'.
        Found 2 image/mask pairs in '.../val'.
        >>> len(train), len(val)
        (2, 1)
        >>> folder.cleanup()
        """
        self.directory = os.fspath(directory)
        split = options.get("validation_split") is not None
        defaults = ("training", "validation") if split else ("train", "val")
        self.subsets = {
            "train": defaults[0] if train_subset is None else train_subset,
            "validation": defaults[1] if validation_subset is None else validation_subset,
        }
        self.options = dict(options)
        inspect.signature(self._constructor()).bind(self.directory, None, **self.options)

    def _constructor(self):
        volumes = "patch_size" in self.options
        return self.from_volumes if volumes else self.from_directory

    def train(self):
        """The training dataset: `train_subset`, shuffled and augmented as the options say.

        Returns:
            A `tf.data.Dataset` of `(images, masks)` batches.
        """
        options = _own_cache(self.options, "train")
        return self._constructor()(self.directory, self.subsets["train"], **options)

    def validation(self):
        """The validation dataset: `validation_subset`, in order, never augmented (for
        volumes, the patches of a grid), so that its scores compare epoch to epoch.

        Returns:
            A `tf.data.Dataset` of `(images, masks)` batches.
        """
        options = {**_own_cache(self.options, "validation"), "shuffle": False, "augment": None}
        if self._constructor() == self.from_volumes:
            options["sampling"] = "grid"
        return self._constructor()(self.directory, self.subsets["validation"], **options)

    def __repr__(self):
        options = "".join(f", {name}={value!r}" for name, value in self.options.items())
        return f"SegmentationDataset({self.directory!r}{options})"

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

        Split folders `directory/<subset>/{images,masks}` (or `.../{images,masks}/
        <subset>`), or a flat `directory/{images,masks}` split by `validation_split`.
        Images pair with masks by relative path without extension, plus
        `mask_suffix`, are read by `read_image` and `read_mask`, and are checked
        before the dataset is built (the data guide lists the layouts, formats and
        checks). Other arguments: see the class docstring.

        Args:
            directory: path of the root folder.
            subset: a split folder's subset (`"train"`, ...); for a flat folder,
                `None` (every pair), or `"training"`, `"validation"` or `"both"`.
            color_mode: `"rgb"` (default), `"grayscale"` or `"rgba"`: the number of
                image channels (3, 1, 4). `"native"` keeps the files' own channels,
                which must then be the same in every image.
            mask_suffix: str, default `""`. Suffix of a mask's name after the
                image's name, such as `"_mask"`.
            validation_split: float in (0, 1) or `None`: the fraction of a flat
                folder's pairs held out for `subset="validation"`, by a permutation
                seeded by `seed` (required): the subsets are disjoint and complete.
            on_error: `"raise"` (default: one error listing every bad pair) or
                `"skip"` (leave bad pairs out, listing them).
            verify: bool, default `True`. Decode every file up front (`False`: headers).
            verbose: bool, default `True`. Print how many pairs were found and how
                many each subset uses, as `image_dataset_from_directory` does, and
                the pairs skipped (a warning lists them when `False`).

        Returns:
            A `tf.data.Dataset` of `(images, masks)`, or `(train_dataset,
            val_dataset)` for `subset="both"`, with the Python attributes
            `image_paths` and `mask_paths` (its pairs, sorted), `skipped` (`(path,
            reason)` of each pair left out), `intensity` (the complete spec, for
            `read_image`) and `image_sizes` (each pair's upright `(height, width)`
            on disk), lost by further transformations such as `.map`.

        Raises:
            ValueError: an argument is invalid, a folder is missing or empty, or (with
                `on_error="raise"`) a file is bad; the message names the file.
        """
        options = _options.check_options(locals())
        _options.check_directory_options(color_mode, mask_suffix, on_error, verify, verbose)
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise invalid_value("directory", "an existing folder", directory)
        images_dir, masks_dir = _layout.resolve_layout(directory, subset, validation_split, seed)
        pairs = _find_pairs(
            images_dir, masks_dir, mask_suffix, color_mode, on_error, verify, options, verbose
        )
        if verbose:
            _print_found(pairs, images_dir)
        if validation_split is None:
            return pairs.dataset(pairs.samples, options, color_mode, cache)
        return _split_datasets(pairs, subset, validation_split, seed, options, color_mode, verbose)

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
        floats as they are. The arguments not listed here are those of the class
        docstring.

        Args:
            images: array `(num_samples, height, width, channels)` (or without the
                channel axis, for grayscale), any channel count, real numbers only:
                NaN or infinite values are refused.
            masks: array `(num_samples, height, width)` or `(..., 1)` of integers,
                bools or integral floats, following the mask rule of the class
                docstring.

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
        options = _options.check_options(locals())
        images, masks = _check_arrays(images, masks)
        targets = _mask_targets(masks, options)
        normalized = np.empty(images.shape, np.float32)
        for index, image in enumerate(images):
            try:
                normalized[index] = normalize_image(image, **options.intensity)
            except UserError as error:
                raise InvalidArgumentError(f"Image 'images[{index}]': {error}") from None
        return _pipeline.arrays_dataset(normalized, targets, options)

    @classmethod
    def from_volumes(
        cls,
        directory,
        subset=None,
        *,
        patch_size=(64, 64, 64),
        batch_size=2,
        num_classes=1,
        mask_suffix="",
        mask_threshold=None,
        ignore_class=None,
        intensity="auto",
        sampling="random",
        foreground_fraction=1 / 3,
        patches_per_volume=1,
        augment=None,
        shuffle=True,
        seed=None,
        cache=False,
        on_error="raise",
        verbose=True,
    ):
        """Reads pairs of volume files from a folder as a `tf.data.Dataset` of patches.

        Folders as for `from_directory` (split, or flat with `subset=None`) of NIfTI
        files and TIFF stacks (`read_volume`), paired by name without extension (both
        of ``.nii.gz``), each pair read and checked first (same shape; the mask rule of
        the class docstring). Each whole volume is normalised by `intensity`
        (`normalize_volume`); one smaller than `patch_size` is padded (image 0, mask
        background or `ignore_class`). Arguments not listed: as for `from_directory`
        (the same `seed` gives the same batches, whatever the parallelism).

        Args:
            subset: a split folder's subset (`"train"`, ...), or `None` (flat).
            patch_size: `(depth, height, width)`, default `(64, 64, 64)`.
            batch_size: int, default 2, or `None` for unbatched patches.
            intensity: as for `from_directory`, or a CT window such as
                `{"mode": "window", "center": 40, "width": 400}` (clipped to [0, 1]).
            sampling: `"random"` (default, for training): `patches_per_volume`
                random patches of each volume an epoch, shuffled; or `"grid"` (for
                validation): the patches of a regular grid over each volume (the
                last of each axis moved back inside), in order, never augmented.
            foreground_fraction: float in [0, 1], default 1/3 (nnU-Net's): random
                patches centred on a labelled voxel, spread evenly over each epoch.
            patches_per_volume: int, default 1. Random patches of a volume an
                epoch, cut from one read and given in a row (MONAI's `num_samples`).
            augment: `None` (default), `True`, or a dict of any of `flip` (bool:
                each axis with probability 0.5), `rotate90` (bool: in plane, by 0,
                90, 180 or 270 degrees; 0 or 180 for a patch not square in plane),
                `scale`, `shift` and `noise` (defaults 0.1, 0.1, 0.05: a factor in
                [1 - scale, 1 + scale], an offset up to `shift`, Gaussian noise).
            cache: bool, default `False`. Keep the normalised volumes in memory.

        Returns:
            A `tf.data.Dataset` of float32 `(batch, depth, height, width, channels)`
            images and `(batch, depth, height, width, 1)` masks, with the attributes
            `image_paths`, `mask_paths`, `volume_shapes`, `spacings` (`(z, y, x)`)
            and `intensity`.

        Example:

        >>> import tempfile
        >>> from keras_unet_seg.data import make_synthetic_volumes
        >>> folder = tempfile.TemporaryDirectory()
        >>> root = make_synthetic_volumes(folder.name, num_train=2, num_val=1)
        >>> train = SegmentationDataset.from_volumes(
        ...     root, "train", patch_size=(16, 16, 16), augment=True, seed=0
        ... )  # doctest: +ELLIPSIS
        Found 2 volume pairs in '.../train'.
        >>> images, masks = next(iter(train))
        >>> tuple(images.shape), tuple(masks.shape), train.spacings[0]
        ((2, 16, 16, 16, 1), (2, 16, 16, 16, 1), (2.0, 1.0, 1.0))
        >>> folder.cleanup()
        """
        options = _volume_pipeline.check_volume_options(locals())
        _options.check_directory_options("rgb", mask_suffix, on_error, True, verbose)
        volumes = _volume_pipeline.find_volumes(
            directory, subset, options, mask_suffix, on_error, verbose
        )
        return _volume_pipeline.volumes_dataset(volumes, options)


def _own_cache(options, name):
    """`options` with a `cache` file path suffixed by `name`: each dataset its own files
    (`tf.data` reads a complete cache file back whatever the dataset that asks)."""
    cache = options.get("cache")
    if isinstance(cache, (str, os.PathLike)):
        return {**options, "cache": f"{os.fspath(cache)}_{name}"}
    return options


# --- from_directory ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pairs:
    """The usable pairs of a folder, with what every dataset of them carries."""

    samples: list
    size_of: dict
    channels: int
    skipped: list
    intensity: dict
    label_masks: int  # binary masks read as label images

    def dataset(self, samples, options, color_mode, cache):
        """The pipeline over `samples` (some of these pairs), with its attributes."""
        dataset = _pipeline.files_dataset(samples, options, color_mode, self.channels, cache)
        dataset.image_paths = [s.image_path for s in samples]
        dataset.mask_paths = [s.mask_path for s in samples]
        dataset.skipped = list(self.skipped)
        dataset.intensity = dict(self.intensity)
        dataset.image_sizes = [self.size_of[s.image_path] for s in samples]
        return dataset


def _find_pairs(images_dir, masks_dir, mask_suffix, color_mode, on_error, verify, options, verbose):
    """Pairs and checks the files of the two folders; see `_checks`."""
    samples, problems, num_found = _layout.pair_files(images_dir, masks_dir, mask_suffix)
    if num_found == 0:
        volumes = _layout.list_image_files(images_dir, VOLUME_EXTENSIONS)
        hint = " They hold volumes: use SegmentationDataset.from_volumes." if volumes else ""
        raise DataError(
            f"No image files found in '{images_dir}' or '{masks_dir}' (extensions "
            f"{', '.join(IMAGE_EXTENSIONS)}).{hint}"
        )
    kept, shapes, bad = _checks.check_samples(
        samples,
        color_mode=color_mode,
        num_classes=options.num_classes,
        mask_threshold=options.mask_threshold,
        ignore_class=options.ignore_class,
        verify=verify,
        intensity=options.intensity,
    )
    skipped = _checks.report_problems(
        problems + bad, num_found, len(kept), (images_dir, masks_dir), on_error, verbose
    )
    channels = _checks.common_channels(kept, shapes)
    _checks.check_batchable(kept, shapes, options.image_size, options.batch_size)
    size_of = {sample.image_path: shape[:2] for sample, shape in zip(kept, shapes, strict=True)}
    label_masks = sum(shape.label_mask for shape in shapes)
    return _Pairs(kept, size_of, channels, skipped, options.intensity, label_masks)


def _print_found(pairs, images_dir):
    print(f"Found {len(pairs.samples)} image/mask pairs in '{os.path.dirname(images_dir)}'.")
    if pairs.label_masks:
        print(
            f"{pairs.label_masks} masks are label images (0 and object ids 1..N): "
            f"foreground is value > 0. Pass {option('mask_threshold', ...)} to binarise "
            f"by another value, or {option('num_classes', ...)} if the values are class "
            "ids."
        )


def _split_datasets(pairs, subset, validation_split, seed, options, color_mode, verbose):
    """The dataset of `subset` ("training", "validation" or "both") of a flat folder."""
    parts = dict(
        zip(
            ("training", "validation"),
            _layout.split_samples(pairs.samples, validation_split, seed),
            strict=True,
        )
    )
    names = ("training", "validation") if subset == "both" else (subset,)
    for name in names:
        if verbose:
            print(f"Using {len(parts[name])} pairs for {name}.")
    datasets = []
    for name in names:
        if not parts[name]:
            raise DataError(
                f"validation_split={validation_split} of {len(pairs.samples)} pairs leaves "
                f"subset '{name}' empty; use a larger validation_split or more data."
            )
        cache = options.cache
        if subset == "both" and isinstance(cache, (str, os.PathLike)):
            cache = f"{os.fspath(cache)}_{name}"
        datasets.append(pairs.dataset(parts[name], options, color_mode, cache))
    return tuple(datasets) if subset == "both" else datasets[0]


# --- from_arrays ---------------------------------------------------------------------------


def _check_arrays(images, masks):
    """`(images, masks)` as arrays `(n, height, width, channels)` and `(n, height, width)`."""
    images = np.asarray(images)
    masks = np.asarray(masks)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise invalid_value(
            "images",
            "an array (num_samples, height, width[, channels])",
            f"array of shape {images.shape}",
        )
    if images.dtype.kind not in "uifb":
        raise invalid_value("images", "a real numeric array", f"array of dtype {images.dtype}")
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.shape != images.shape[:3]:
        raise InvalidArgumentError(
            "Arguments `images` and `masks` disagree: expected masks of shape "
            f"{images.shape[:3]} (or {(*images.shape[:3], 1)}) for images of shape "
            f"{images.shape}. Received: masks.shape={masks.shape}"
        )
    if len(images) == 0:
        raise invalid_value("images", "at least one sample", f"array of shape {images.shape}")
    if masks.dtype.kind not in "uifb":
        raise invalid_value("masks", "a numeric array", f"array of dtype {masks.dtype}")
    return images, masks


def _mask_targets(masks, options):
    """The training targets of mask arrays, each checked by the rule of files."""
    num_classes, threshold = options.num_classes, options.mask_threshold
    targets = np.empty((*masks.shape, 1), np.float32 if num_classes == 1 else np.int32)
    for index, mask in enumerate(masks):
        if mask.dtype.kind == "f" and not np.array_equal(mask, np.round(mask)):
            if num_classes > 1 or threshold is None:
                raise InvalidFileError(
                    f"Mask 'masks[{index}]' holds non-integer values; pass "
                    f"{option('mask_threshold', ...)} to binarise it."
                )
        values = mask.astype(np.uint8) if mask.dtype == np.bool_ else mask
        targets[index] = convert_mask(
            values, f"masks[{index}]", num_classes, threshold, options.ignore_class
        )
    return targets
