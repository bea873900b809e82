"""The `tf.data` pipeline: decode (or take arrays), fit to size, cache, shuffle, batch.

Pipeline: (shuffle paths) -> parallel decode and normalise -> resize -> (cache ->
shuffle) -> batch -> augment -> prefetch(AUTOTUNE).
"""

import os
from dataclasses import dataclass

from keras_unet_seg.data._decoding import InvalidFileError
from keras_unet_seg.data._images import read_image
from keras_unet_seg.data._masks import read_mask
from keras_unet_seg.data._tensorflow import import_tf


def _crop_or_pad(image, mask, image_size, crop, mask_fill):
    """Crops (`crop`) or pads a pair, centred, to the aspect ratio of `image_size`."""
    tf = import_tf()
    target_h, target_w = image_size
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    # Same arithmetic as keras.utils.image_utils.smart_resize.
    box_h = tf.cast(tf.cast(width, tf.float32) * target_h / target_w, tf.int32)
    box_w = tf.cast(tf.cast(height, tf.float32) * target_w / target_h, tf.int32)
    if crop:
        box_h = tf.maximum(tf.minimum(height, box_h), 1)
        box_w = tf.maximum(tf.minimum(width, box_w), 1)
        top = (height - box_h) // 2
        left = (width - box_w) // 2
        return (
            image[top : top + box_h, left : left + box_w],
            mask[top : top + box_h, left : left + box_w],
        )
    box_h = tf.maximum(height, box_h)
    box_w = tf.maximum(width, box_w)
    top = (box_h - height) // 2
    left = (box_w - width) // 2
    paddings = [[top, box_h - height - top], [left, box_w - width - left], [0, 0]]
    image = tf.pad(image, paddings)
    mask = tf.pad(mask, paddings, constant_values=tf.cast(mask_fill, mask.dtype))
    return image, mask


@dataclass(frozen=True)
class Options:
    """The checked arguments a pipeline is built with (see `_options.check_options`)."""

    image_size: tuple | None
    batch_size: int | None
    num_classes: int
    mask_threshold: float | None
    ignore_class: int | None
    intensity: dict
    interpolation: str
    crop_to_aspect_ratio: bool
    pad_to_aspect_ratio: bool
    shuffle: bool
    seed: int | None
    cache: object
    augmentation: object

    def fit(self, image, mask):
        """Resizes a pair to `image_size` (mask: nearest), after an optional crop or pad."""
        tf = import_tf()
        if self.image_size is None:
            return image, mask
        if self.crop_to_aspect_ratio or self.pad_to_aspect_ratio:
            mask_fill = 0 if self.ignore_class is None else self.ignore_class
            image, mask = _crop_or_pad(
                image, mask, self.image_size, self.crop_to_aspect_ratio, mask_fill
            )
        if self.interpolation in ("bilinear", "nearest", "area"):
            image = tf.image.resize(image, self.image_size, method=self.interpolation)
        else:  # cubic and lanczos kernels overshoot: clip to the image's own range
            low, high = tf.reduce_min(image), tf.reduce_max(image)
            image = tf.image.resize(image, self.image_size, method=self.interpolation)
            image = tf.clip_by_value(image, low, high)
        mask = tf.image.resize(mask, self.image_size, method="nearest")
        return image, mask

    def finish(self, dataset, num_samples, cache, shuffle_before_cache=False):
        """Cache, shuffle, batch, augment and prefetch a dataset of pairs."""
        tf = import_tf()
        if cache:
            dataset = dataset.cache("" if cache is True else os.fspath(cache))
        if self.shuffle and not shuffle_before_cache:
            # A file cache streams from disk: a full-size buffer would hold it all in memory.
            buffer = num_samples if cache is True or not cache else min(num_samples, 256)
            dataset = dataset.shuffle(max(buffer, 1), seed=self.seed, reshuffle_each_iteration=True)
        if self.batch_size is not None:
            dataset = dataset.batch(self.batch_size)
        if self.augmentation is not None:
            # Sequential on purpose: the augmentation's random state advances call by
            # call, so a parallel map would hand out random draws in a racy order.
            dataset = dataset.map(self.augmentation)
        return dataset.prefetch(tf.data.AUTOTUNE)


def files_dataset(samples, options, color_mode, channels, cache):
    """The pipeline over the files of `samples`, `(image, mask)` pairs as `options` say."""
    tf = import_tf()
    mask_dtype = tf.float32 if options.num_classes == 1 else tf.int32

    def read(image_path, mask_path):
        image_path, mask_path = image_path.decode(), mask_path.decode()
        image = read_image(image_path, color_mode, options.intensity)
        mask = read_mask(
            mask_path, options.num_classes, options.mask_threshold, options.ignore_class
        )
        if image.shape[:2] != mask.shape[:2]:
            raise InvalidFileError(
                f"Image '{image_path}' and mask '{mask_path}' have different "
                f"sizes: image (height, width) = {image.shape[:2]}, mask "
                f"(height, width) = {mask.shape[:2]}."
            )
        return image, mask

    def load(image_path, mask_path):
        image, mask = tf.numpy_function(
            read, [image_path, mask_path], (tf.float32, mask_dtype), stateful=False
        )
        image.set_shape((None, None, channels))
        mask.set_shape((None, None, 1))
        image, mask = options.fit(image, mask)
        if options.image_size is not None:
            image.set_shape((*options.image_size, channels))
            mask.set_shape((*options.image_size, 1))
        return image, mask

    image_paths = [s.image_path for s in samples]
    mask_paths = [s.mask_path for s in samples]
    dataset = tf.data.Dataset.from_tensor_slices((image_paths, mask_paths))
    shuffle_paths = options.shuffle and not cache
    if shuffle_paths:
        dataset = dataset.shuffle(
            len(image_paths), seed=options.seed, reshuffle_each_iteration=True
        )
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return options.finish(dataset, len(image_paths), cache, shuffle_before_cache=shuffle_paths)


def arrays_dataset(images, targets, options):
    """The pipeline over normalised images and mask targets in memory."""
    tf = import_tf()
    dataset = tf.data.Dataset.from_tensor_slices((images, targets))
    dataset = dataset.map(options.fit, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return options.finish(dataset, len(images), options.cache)
