"""Joint image/mask augmentation for segmentation, seeded and safe inside `tf.data`."""

import math

import numpy as np

from keras_unet_seg._errors import InvalidArgumentError
from keras_unet_seg._validation import (
    check_bool,
    check_choice,
    check_non_negative,
    check_optional_int,
    invalid_value,
    is_pair,
    is_real,
)
from keras_unet_seg.data._tensorflow import import_tf as _import_tf

_FLIP_MODES = (None, "horizontal", "vertical", "horizontal_and_vertical")
_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATIONS = ("nearest", "bilinear")


def _check_fraction(name, value, upper, upper_inclusive=True):
    """Accepts a number in `[0, upper]` (or `[0, upper)`); returns it as a float."""
    if not (
        is_real(value) and 0 <= value and (value <= upper if upper_inclusive else value < upper)
    ):
        bracket = "]" if upper_inclusive else ")"
        raise invalid_value(name, f"a number in [0, {upper}{bracket}", value)
    return float(value)


def _check_value_range(value_range):
    """Accepts `None` or `(low, high)` with low < high; returns it as floats."""
    if value_range is None:
        return None
    if not (is_pair(value_range, is_real) and value_range[0] < value_range[1]):
        raise invalid_value("value_range", "None or `(low, high)` with low < high", value_range)
    return float(value_range[0]), float(value_range[1])


class JointAugmentation:
    """Random augmentation that moves a segmentation mask with its image.

    Geometry (flips, 90-degree rotations, small rotations, zoom in and out) is applied
    identically to the image and the mask, the mask always with nearest-neighbour
    interpolation so that it keeps its values; photometry (brightness, contrast,
    gamma, Gaussian noise) is applied to the image only. Flips, rotations and zoom
    are Keras' own image augmentation layers, called with a
    `{"images": ..., "segmentation_masks": ...}` dict, which keeps image and mask
    aligned (unlike two layers with the same seed, keras-team/keras#17457); the
    90-degree rotations and the photometry are written here with TensorFlow ops.

    Photometry is relative to each image's own range, from its minimum to its
    maximum (or to a fixed `value_range`): a brightness shift of 0.1 moves an image
    by a tenth of its range, whether it holds 0-1 values from an 8-bit photo,
    standardised values, or 12-bit camera values as stored. Results are clipped to
    that range.

    Every random choice is made per image and comes from `seed`: two instances built
    with the same seed give the same results on the same inputs, call after call.
    Each call advances the instance's random state, so apply it to a `tf.data`
    pipeline with `dataset.map(augmentation)` without `num_parallel_calls` (the
    operations themselves are vectorised over the batch) to keep it reproducible.

    The computation always runs in TensorFlow (the instance wraps it in a
    `tf.function`), whatever the Keras backend, and returns `tf.Tensor`s: it is meant
    for the input pipeline, and `model.fit` takes the resulting dataset on every
    backend.

    Args:
        flip: `"horizontal_and_vertical"` (default), `"horizontal"`, `"vertical"` or
            `None` for no flips. Each flip has probability 0.5, drawn independently
            (two Keras `RandomFlip` layers: a single `"horizontal_and_vertical"` layer
            flips both axes or neither).
        rotate90: bool, default `True`. Transposes each square image with probability
            0.5; with both flips this gives all eight 90-degree rotations and mirror
            images. Non-square images are never transposed (their shape would change).
        rotation: float in [0, 0.5], default `0.03`. Largest rotation as a fraction of
            a full turn (Keras' `RandomRotation` factor): 0.03 is about 11 degrees.
        zoom: float in [0, 1), default `0.1`. Zoom in or out by up to this fraction
            (Keras' `RandomZoom` with `height_factor=(-zoom, zoom)`, aspect kept):
            zooming in is a random crop rescaled to the input size.
        brightness: float in [0, 1], default `0.1`. Largest brightness shift as a
            fraction of the image's range.
        contrast: float in [0, 1], default `0.1`. Contrast factor drawn in
            `[1 - contrast, 1 + contrast]`, around each channel's mean.
        gamma: float in [0, 1), default `0.1`. Gamma drawn log-uniformly in
            `[1 / (1 + gamma), 1 + gamma]`, applied to the image scaled to its range.
        noise: float >= 0, default `0.01`. Standard deviation of additive Gaussian
            noise, as a fraction of the image's range.
        value_range: `None` (default): each image's own range, from its minimum
            to its maximum; or a fixed `(low, high)` for every image. Photometric
            results are clipped to it. Every channel is treated alike, the alpha
            of RGBA images included.
        fill_mode: how rotation and zoom fill points outside the input: `"reflect"`
            (default), `"wrap"`, `"constant"` (zeros, that is background in the mask)
            or `"nearest"`. Image and mask are filled the same way.
        interpolation: `"bilinear"` (default) or `"nearest"`, for the image only.
        seed: int or `None`. Seeds every random choice.

    Call arguments:
        images: images `(batch, height, width, channels)` or one image
            `(height, width, channels)`, any real dtype; or a dict with the keys
            `"images"` and `"segmentation_masks"`.
        masks: the matching masks `(batch, height, width, 1)` (or without the batch
            axis), float or integer, or `None` to augment images alone.
        training: bool, default `True`. When `False` the inputs are returned as
            they are.

    Returns:
        `(images, masks)` (or the dict, when a dict was given) as `tf.Tensor`s:
        float32 images and masks of the masks' dtype, shapes unchanged.

    Raises:
        ValueError: an argument is out of range.

    Example:

    >>> import numpy as np
    >>> augment = JointAugmentation(seed=0)
    >>> images = np.random.default_rng(0).random((2, 32, 32, 3), dtype="float32")
    >>> masks = (images[..., :1] > 0.5).astype("float32")
    >>> out_images, out_masks = augment(images, masks)
    >>> tuple(out_images.shape), tuple(out_masks.shape)
    ((2, 32, 32, 3), (2, 32, 32, 1))
    >>> sorted(np.unique(out_masks.numpy()).tolist())
    [0.0, 1.0]
    """

    def __init__(
        self,
        flip="horizontal_and_vertical",
        rotate90=True,
        rotation=0.03,
        zoom=0.1,
        brightness=0.1,
        contrast=0.1,
        gamma=0.1,
        noise=0.01,
        value_range=None,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
    ):
        self.flip = check_choice("flip", flip, _FLIP_MODES)
        self.rotate90 = check_bool("rotate90", rotate90)
        self.rotation = _check_fraction("rotation", rotation, 0.5)
        self.zoom = _check_fraction("zoom", zoom, 1, upper_inclusive=False)
        self.brightness = _check_fraction("brightness", brightness, 1)
        self.contrast = _check_fraction("contrast", contrast, 1)
        self.gamma = _check_fraction("gamma", gamma, 1, upper_inclusive=False)
        self.noise = check_non_negative("noise", noise)
        self.value_range = _check_value_range(value_range)
        self.fill_mode = check_choice("fill_mode", fill_mode, _FILL_MODES)
        self.interpolation = check_choice("interpolation", interpolation, _INTERPOLATIONS)
        self.seed = check_optional_int("seed", seed, "an int seed")
        tf = _import_tf()
        with tf.init_scope():  # state is created eagerly, even inside a traced function
            self._build()

    def _build(self):
        """Creates the Keras layers and the random state."""
        import keras

        tf = _import_tf()
        base = (
            int(np.random.default_rng().integers(0, 2**30)) if self.seed is None else int(self.seed)
        )
        common = {"dtype": "float32"}
        self._flips = []
        self._geometry_layers = []
        # Keras' "horizontal_and_vertical" draws one decision for both axes (identity or
        # a half turn); two layers draw them independently, for all four flip states.
        if self.flip in ("horizontal", "horizontal_and_vertical"):
            self._flips.append(keras.layers.RandomFlip("horizontal", seed=base, **common))
        if self.flip in ("vertical", "horizontal_and_vertical"):
            self._flips.append(keras.layers.RandomFlip("vertical", seed=base + 6, **common))
        if self.rotation > 0:
            self._geometry_layers.append(
                keras.layers.RandomRotation(
                    self.rotation,
                    fill_mode=self.fill_mode,
                    interpolation=self.interpolation,
                    seed=base + 1,
                    **common,
                )
            )
        if self.zoom > 0:
            self._geometry_layers.append(
                keras.layers.RandomZoom(
                    (-self.zoom, self.zoom),
                    fill_mode=self.fill_mode,
                    interpolation=self.interpolation,
                    seed=base + 2,
                    **common,
                )
            )
        self._generator = tf.random.Generator.from_seed(base + 5)
        self._function = tf.function(self._augment)

    def __call__(self, images, masks=None, training=True):
        as_dict = isinstance(images, dict)
        if as_dict:
            data = images
            images = data["images"]
            masks = data.get("segmentation_masks")
        if not training:
            return data if as_dict else (images, masks)
        tf = _import_tf()
        images = tf.convert_to_tensor(images)
        if masks is None:
            out_images, _ = self._function(images, tf.zeros([0]))
            out_masks = None
        else:
            out_images, out_masks = self._function(images, tf.convert_to_tensor(masks))
        if as_dict:
            result = dict(data)
            result["images"] = out_images
            if out_masks is not None:
                result["segmentation_masks"] = out_masks
            return result
        return out_images, out_masks

    def _augment(self, images, masks):
        tf = _import_tf()
        has_masks = masks.shape.rank != 1
        rank = images.shape.rank
        if rank not in (3, 4):
            raise InvalidArgumentError(
                "Expected images of rank 3 (height, width, channels) or 4 (batch, "
                f"height, width, channels). Received: images.shape={images.shape}"
            )
        images = tf.cast(images, tf.float32)
        if rank == 3:
            images = images[None]
            masks = masks[None] if has_masks else masks
        mask_dtype = masks.dtype
        masks = tf.cast(masks, tf.float32)
        batch = tf.shape(images)[0]
        images, masks = self._geometry(images, masks, has_masks, batch)
        images = self._photometry(images, batch)

        if has_masks:
            if mask_dtype.is_integer:
                masks = tf.round(masks)
            masks = tf.cast(masks, mask_dtype)
        if rank == 3:
            images = images[0]
            masks = masks[0] if has_masks else masks
        return images, masks

    def _geometry(self, images, masks, has_masks, batch):
        """Flips, transposes, rotation and zoom, the same for the image and its mask."""

        def apply(layer, images, masks):
            if has_masks:
                out = layer({"images": images, "segmentation_masks": masks}, training=True)
                return out["images"], out["segmentation_masks"]
            return layer(images, training=True), masks

        for layer in self._flips:
            images, masks = apply(layer, images, masks)
        if self.rotate90:
            images, masks = self._transpose(images, masks, has_masks, batch)
        for layer in self._geometry_layers:
            images, masks = apply(layer, images, masks)
        return images, masks

    def _photometry(self, images, batch):
        """Brightness, contrast, gamma and noise, relative to each image's range."""
        tf = _import_tf()
        if not (self.brightness or self.contrast or self.gamma or self.noise):
            return images
        if self.value_range is None:
            low = tf.reduce_min(images, axis=[1, 2, 3], keepdims=True)
            high = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
        else:
            low, high = (tf.constant(v, tf.float32) for v in self.value_range)
        span = tf.maximum(high - low, 1e-6)
        draw = self._generator.uniform
        if self.brightness > 0:
            images = images + span * draw([batch, 1, 1, 1], -self.brightness, self.brightness)
        if self.contrast > 0:
            factor = draw([batch, 1, 1, 1], 1 - self.contrast, 1 + self.contrast)
            mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
            images = mean + factor * (images - mean)
        if self.gamma > 0:
            log_max = math.log1p(self.gamma)
            gamma = tf.exp(draw([batch, 1, 1, 1], -log_max, log_max))
            unit = tf.clip_by_value((images - low) / span, 0.0, 1.0)
            images = low + span * tf.pow(unit, gamma)
        if self.noise > 0:
            images = images + self._generator.normal(tf.shape(images), stddev=1.0) * (
                self.noise * span
            )
        return tf.clip_by_value(images, low, high)

    def _transpose(self, images, masks, has_masks, batch):
        tf = _import_tf()
        height, width = images.shape[1], images.shape[2]
        if height is not None and width is not None and height != width:
            return images, masks
        swap = self._generator.uniform([batch, 1, 1, 1]) < 0.5

        def transposed():
            out_images = tf.where(swap, tf.transpose(images, [0, 2, 1, 3]), images)
            out_masks = masks
            if has_masks:
                out_masks = tf.where(swap, tf.transpose(masks, [0, 2, 1, 3]), masks)
            return out_images, out_masks

        if height is not None:
            return transposed()
        shape = tf.shape(images)
        return tf.cond(shape[1] == shape[2], transposed, lambda: (images, masks))

    def get_config(self):
        """Returns the constructor arguments, so `JointAugmentation(**config)` rebuilds it."""
        return {
            "flip": self.flip,
            "rotate90": self.rotate90,
            "rotation": self.rotation,
            "zoom": self.zoom,
            "brightness": self.brightness,
            "contrast": self.contrast,
            "gamma": self.gamma,
            "noise": self.noise,
            "value_range": self.value_range,
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"
