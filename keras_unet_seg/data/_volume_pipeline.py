"""The `tf.data` pipeline of volume patches behind `SegmentationDataset.from_volumes`.

Every pair is read and checked once when the dataset is built (as `verify` does
for images). An element of the pipeline is one volume, read once (or taken from
the cache): (shuffle volume indices) -> parallel [read, normalise, pad, cut
`patches_per_volume` random patches (centred on foreground at a fraction of the
epoch's positions) and augment them; or cut every patch of a grid] -> unbatch ->
batch -> prefetch. The random draws of each volume come from a
`numpy.random.Generator` seeded by `tf.data.Dataset.random(seed)` (new draws each
epoch), so the same `seed` gives the same batches whatever the parallelism.
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
from keras_unet_seg.data._decoding import InvalidFileError
from keras_unet_seg.data._layout import Problem
from keras_unet_seg.data._masks import convert_mask, integer_values
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
            raise InvalidFileError(
                f"Image '{sample.image_path}' and mask '{sample.mask_path}' have different "
                f"shapes: image (depth, height, width) = {image.shape}, mask = {mask.shape}.",
                sample.mask_path,
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
    """A mask volume's values `(depth, height, width)` as integers, as for images."""
    array = mask.array
    if array.shape[-1] != 1:
        raise InvalidFileError(
            f"Mask '{mask.path}' has {array.shape[-1]} channels; expected 1.", mask.path
        )
    return integer_values(array[..., 0], mask.path)


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
    if target.min() >= 0 and target.max() <= 255:  # a quarter of the memory of float32
        target = target.astype(np.uint8)
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
            path = getattr(error, "path", None) or sample.image_path  # the file at fault
            problems.append(Problem(sample.key, path, str(error)))
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
        dataset = tf.data.Dataset.range(len(volumes.samples))
    else:
        dataset = _random_elements(volumes, options)
    mask_dtype = tf.float32 if options.num_classes == 1 else tf.int32

    def patches(*element):
        images, masks = tf.numpy_function(
            lambda *e: _patches_of(volumes, options, *e), element, (tf.float32, mask_dtype)
        )
        images.set_shape((None, *options.patch_size, volumes.channels))
        masks.set_shape((None, *options.patch_size, 1))
        return images, masks

    dataset = dataset.map(patches, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.unbatch().apply(
        tf.data.experimental.assert_cardinality(_patch_count(volumes, options))
    )
    if options.batch_size is not None:
        dataset = dataset.batch(options.batch_size)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset.image_paths = [s.image_path for s in volumes.samples]
    dataset.mask_paths = [s.mask_path for s in volumes.samples]
    dataset.volume_shapes = list(volumes.shapes)
    dataset.spacings = list(volumes.spacings)
    dataset.intensity = dict(options.intensity)
    return dataset


def _patch_count(volumes, options):
    """The patches of an epoch: with it Keras knows an epoch's steps (of a dataset of
    unknown size it warns at each epoch's end that the input "ran out of data")."""
    if options.sampling == "grid":
        return sum(len(_patches.grid_starts(s, options.patch_size)) for s in volumes.shapes)
    return len(volumes.samples) * options.patches_per_volume


def _random_elements(volumes, options):
    """`(volume index, element of the epoch, random seed)`: each volume once an epoch."""
    tf = import_tf()
    count = len(volumes.samples)
    dataset = tf.data.Dataset.range(count)
    if options.shuffle:
        dataset = dataset.shuffle(count, seed=options.seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=options.seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip(dataset, tf.data.Dataset.range(count), seeds)


def _patches_of(volumes, options, index, *random):
    """The patches of one volume (one read): `patches_per_volume` random ones (the
    element's `random`: its place in the epoch and a seed), or those of the grid."""
    image, target, foreground = volumes.load(int(index), options)
    if options.sampling == "grid":
        shape = image.shape[:3]
        pairs = [
            (
                _patches.crop(image, start, options.patch_size),
                _patches.crop(target, start, options.patch_size),
            )
            for start in _patches.grid_starts(shape, options.patch_size)
        ]
    else:
        element, seed = (int(v) for v in random)
        rng = np.random.default_rng(seed & 0xFFFFFFFFFFFFFFFF)
        count = options.patches_per_volume
        pairs = [
            _random_patch(image, target, foreground, element * count + j, rng, options)
            for j in range(count)
        ]
    images, masks = zip(*pairs, strict=True)
    mask_dtype = np.float32 if options.num_classes == 1 else np.int32
    return np.stack(images).astype(np.float32, copy=False), np.stack(masks).astype(mask_dtype)


def _random_patch(image, target, foreground, position, rng, options):
    """A random patch (centred on foreground at the positions that ask), augmented."""
    centre = None
    if len(foreground) and _patches.is_foreground_patch(position, options.foreground_fraction):
        centre = np.unravel_index(foreground[rng.integers(len(foreground))], target.shape[:3])
    start = _patches.random_start(target.shape[:3], options.patch_size, rng, centre)
    image = _patches.crop(image, start, options.patch_size)
    target = _patches.crop(target, start, options.patch_size)
    if options.augmentation is not None:
        return options.augmentation(image, target, rng)
    return image, target
