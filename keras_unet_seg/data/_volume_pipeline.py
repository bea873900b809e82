"""The `tf.data` pipeline of volume patches behind `SegmentationDataset.from_volumes`.

Every pair is read and checked once when the dataset is built (as `verify` does
for images). Random sampling: (shuffle volume indices) -> parallel [read, normalise,
pad, cut a patch (centred on foreground for a fraction of positions), augment] ->
batch -> prefetch. Each element draws its patch and augmentation from a
`numpy.random.Generator` seeded by `tf.data.Dataset.random(seed)` (new draws each
epoch), so the same `seed` gives the same batches whatever the parallelism. Grid
sampling: every patch of a regular grid over each volume, in order, unchanged.
"""

import os
from dataclasses import dataclass

import numpy as np

from keras_unet_seg._errors import DataError, UserError
from keras_unet_seg._validation import (
    check_bool,
    check_choice,
    check_positive_int,
    check_unit_interval,
    invalid_value,
    is_int,
)
from keras_unet_seg.data import _checks, _layout, _options, _patches
from keras_unet_seg.data._layout import Problem
from keras_unet_seg.data._masks import convert_mask
from keras_unet_seg.data._tensorflow import import_tf
from keras_unet_seg.data.intensity import intensity_spec, normalize_volume
from keras_unet_seg.data.volumes import VOLUME_EXTENSIONS, read_volume

SAMPLINGS = ("random", "grid")


@dataclass(frozen=True)
class VolumeOptions:
    """The checked arguments of `from_volumes`."""

    patch_size: tuple
    batch_size: int | None
    num_classes: int
    mask_threshold: float | None
    ignore_class: int | None
    intensity: dict
    sampling: str
    foreground_fraction: float
    patches_per_volume: int
    augmentation: object
    shuffle: bool
    seed: int
    cache: bool

    def read(self, sample):
        """`(image, target)` of a pair: the normalised volume and the mask's target."""
        image = read_volume(sample.image_path)
        mask = read_volume(sample.mask_path)
        if mask.shape != image.shape:
            raise DataError(
                f"Image '{sample.image_path}' and mask '{sample.mask_path}' have different "
                f"shapes: image (depth, height, width) = {image.shape}, mask = {mask.shape}."
            )
        values = _mask_values(mask)
        target = convert_mask(
            values, mask.path, self.num_classes, self.mask_threshold, self.ignore_class
        )
        return normalize_volume(image.array, self.intensity), target, image

    @property
    def fill(self):
        """The mask value of padding: background, or `ignore_class`."""
        return 0 if self.ignore_class is None else self.ignore_class


def check_volume_options(arguments):
    """The `VolumeOptions` of `from_volumes`' `arguments` (its `locals()`), checked."""
    patch_size = arguments["patch_size"]
    if not (
        isinstance(patch_size, (tuple, list))
        and len(patch_size) == 3
        and all(is_int(v) and v > 0 for v in patch_size)
    ):
        raise invalid_value(
            "patch_size", "a tuple `(depth, height, width)` of positive ints", patch_size
        )
    batch_size = arguments["batch_size"]
    if batch_size is not None:
        check_positive_int("batch_size", batch_size)
    _options.check_mask_rule(
        arguments["num_classes"], arguments["mask_threshold"], arguments["ignore_class"]
    )
    check_choice("sampling", arguments["sampling"], SAMPLINGS)
    check_unit_interval("foreground_fraction", arguments["foreground_fraction"])
    check_positive_int("patches_per_volume", arguments["patches_per_volume"])
    for name in ("shuffle", "cache", "verbose"):
        check_bool(name, arguments[name])
    seed = arguments["seed"]
    if seed is not None and not is_int(seed):
        raise invalid_value("seed", "an int or None", seed)
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 1_000_000))
    return VolumeOptions(
        patch_size=tuple(int(v) for v in patch_size),
        batch_size=batch_size,
        num_classes=arguments["num_classes"],
        mask_threshold=arguments["mask_threshold"],
        ignore_class=arguments["ignore_class"],
        intensity=intensity_spec(arguments["intensity"]),
        sampling=arguments["sampling"],
        foreground_fraction=float(arguments["foreground_fraction"]),
        patches_per_volume=int(arguments["patches_per_volume"]),
        augmentation=_patches.check_augment(arguments["augment"]),
        shuffle=arguments["shuffle"],
        seed=int(seed),
        cache=arguments["cache"],
    )


def _mask_values(mask):
    """A mask volume's values `(depth, height, width)` as integers; see `read_mask`."""
    array = mask.array
    if array.shape[-1] != 1:
        raise DataError(f"Mask '{mask.path}' has {array.shape[-1]} channels; expected 1.")
    values = array[..., 0]
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values)):
            raise DataError(
                f"Mask '{mask.path}' holds non-integer values; masks hold class ids or "
                "binary values."
            )
        values = values.astype(np.int64)
    return values.astype(np.uint8) if values.dtype == np.bool_ else values


@dataclass
class _Volumes:
    """The checked pairs of a folder and what the pipeline needs of each."""

    samples: list
    shapes: list
    spacings: list
    channels: int
    cached: dict  # index -> (image, target, foreground voxels), with `cache`

    def load(self, index, options):
        """`(image, target, foreground)` of pair `index`, padded to the patch size."""
        if index in self.cached:
            return self.cached[index]
        image, target, _ = options.read(self.samples[index])
        return _prepare(image, target, options)


def _prepare(image, target, options):
    """`(image, target, foreground)`: the pair padded to the patch size, and the flat
    indices of its labelled voxels (`ignore_class` is not a label)."""
    image = _patches.pad_to(image, options.patch_size, 0.0)
    target = _patches.pad_to(target, options.patch_size, options.fill)
    labelled = target[..., 0] > 0
    if options.ignore_class is not None:
        labelled &= target[..., 0] != options.ignore_class
    return image, target, np.flatnonzero(labelled)


def find_volumes(directory, subset, options, mask_suffix, on_error, verbose):
    """Pairs, reads and checks the volumes of a folder; see `from_volumes`."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise invalid_value("directory", "an existing folder", directory)
    images_dir, masks_dir = _layout.resolve_layout(directory, subset, None, None)
    samples, problems, num_found = _layout.pair_files(
        images_dir, masks_dir, mask_suffix, VOLUME_EXTENSIONS
    )
    if num_found == 0:
        raise DataError(
            f"No volume files found in '{images_dir}' or '{masks_dir}' (extensions "
            f"{', '.join(VOLUME_EXTENSIONS)})."
        )
    volumes = _Volumes([], [], [], 0, {})
    channels = {}
    for sample in samples:
        try:
            image, target, volume = options.read(sample)
        except UserError as error:
            problems.append(Problem(sample.key, sample.image_path, str(error)))
            continue
        volumes.samples.append(sample)
        volumes.shapes.append(volume.shape)
        volumes.spacings.append(volume.spacing)
        channels.setdefault(volume.array.shape[-1], sample.image_path)
        if options.cache:
            volumes.cached[len(volumes.samples) - 1] = _prepare(image, target, options)
    folders = (images_dir, masks_dir)
    _checks.report_problems(problems, num_found, len(volumes.samples), folders, on_error, verbose)
    if len(channels) > 1:
        raise DataError(
            f"The volumes of '{images_dir}' have different channel counts: "
            + ", ".join(f"{c} ('{path}')" for c, path in channels.items())
        )
    volumes.channels = next(iter(channels))
    if verbose:
        print(f"Found {len(volumes.samples)} volume pairs in '{os.path.dirname(images_dir)}'.")
    return volumes


def volumes_dataset(volumes, options):
    """The `tf.data.Dataset` of `(image, mask)` patches of `volumes`."""
    tf = import_tf()
    if options.sampling == "grid":
        dataset = _grid_elements(volumes, options)
    else:
        dataset = _random_elements(volumes, options)
    mask_dtype = tf.float32 if options.num_classes == 1 else tf.int32

    def patch(*element):
        image, mask = tf.numpy_function(
            lambda *e: _patch(volumes, options, *e), element, (tf.float32, mask_dtype)
        )
        image.set_shape((*options.patch_size, volumes.channels))
        mask.set_shape((*options.patch_size, 1))
        return image, mask

    dataset = dataset.map(patch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if options.batch_size is not None:
        dataset = dataset.batch(options.batch_size)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset.image_paths = [s.image_path for s in volumes.samples]
    dataset.mask_paths = [s.mask_path for s in volumes.samples]
    dataset.volume_shapes = list(volumes.shapes)
    dataset.spacings = list(volumes.spacings)
    dataset.intensity = dict(options.intensity)
    return dataset


def _random_elements(volumes, options):
    """`(volume index, position in the epoch, random seed)` of each patch of an epoch."""
    tf = import_tf()
    indices = np.repeat(np.arange(len(volumes.samples)), options.patches_per_volume)
    dataset = tf.data.Dataset.from_tensor_slices(indices)
    if options.shuffle:
        dataset = dataset.shuffle(len(indices), seed=options.seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=options.seed, rerandomize_each_iteration=True)
    positions = tf.data.Dataset.range(len(indices))
    return tf.data.Dataset.zip(dataset, positions, seeds)


def _grid_elements(volumes, options):
    """`(volume index, z, y, x)` of every patch of the grid over each volume."""
    tf = import_tf()
    elements = [
        (index, *start)
        for index, shape in enumerate(volumes.shapes)
        for start in _patches.grid_starts(
            _patches.padded_shape(shape, options.patch_size), options.patch_size
        )
    ]
    columns = np.asarray(elements, np.int64).T
    return tf.data.Dataset.from_tensor_slices(tuple(columns))


def _patch(volumes, options, index, *where):
    """The `(image, mask)` patch of an element of `_random_elements` or `_grid_elements`."""
    image, target, foreground = volumes.load(int(index), options)
    if options.sampling == "grid":
        start = tuple(int(v) for v in where)
        return (
            np.ascontiguousarray(_patches.crop(image, start, options.patch_size)),
            np.ascontiguousarray(_patches.crop(target, start, options.patch_size)),
        )
    position, seed = where
    rng = np.random.default_rng(int(seed) & 0xFFFFFFFFFFFFFFFF)
    centre = None
    if len(foreground) and _patches.is_foreground_patch(int(position), options.foreground_fraction):
        centre = np.unravel_index(foreground[rng.integers(len(foreground))], target.shape[:3])
    start = _patches.random_start(target.shape[:3], options.patch_size, rng, centre)
    image = _patches.crop(image, start, options.patch_size)
    target = _patches.crop(target, start, options.patch_size)
    if options.augmentation is not None:
        return options.augmentation(image, target, rng)
    return np.ascontiguousarray(image), np.ascontiguousarray(target)
