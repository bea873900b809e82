"""Resizing images for a model, and its probabilities back, as training resized them."""

import numpy as np

from keras_unet_seg._errors import InvalidArgumentError


def scaled_size(size, scale, channels=1, source="the image"):
    """`(height, width)` resized by the `(height, width)` factors `scale`, checked.

    Rounded, at least 1.

    Raises:
        ValueError: the resized image would be larger than a file may decode to
            (`keras_unet_seg.data.read_header`'s limits), naming `scale` and `source`.
    """
    from keras_unet_seg.data._decoding import size_excess

    height, width = size
    scaled = (max(1, round(height * scale[0])), max(1, round(width * scale[1])))
    excess = size_excess(*scaled, channels, 1)
    if excess is not None:
        raise InvalidArgumentError(
            f"Invalid value for argument `scale` (--scale): {scale[0]:g} x {scale[1]:g} "
            f"would resize {source} ({height}x{width}) to {excess}, the limit of the "
            "files read. Give a smaller scale (native: the files' own size)."
        )
    return scaled


def rescaled(predict, images, scale):
    """`predict(images)` of `images` resized by the `(height, width)` factors `scale`
    (`resize_bilinear`, in float32), resized back to their size."""
    if tuple(scale) == (1.0, 1.0):
        return predict(images)
    size = images.shape[-3:-1]
    small = resize_bilinear(
        images.astype(np.float32, copy=False), scaled_size(size, scale, images.shape[-1])
    )
    return resize_bilinear(predict(small), size)


def resize_bilinear(images, size):
    """Float32 `images` `(..., height, width, channels)` resized to `size`.

    Bilinear, with half-pixel centres and no antialiasing (`tf.image.resize`'s
    `"bilinear"`, which the training pipeline uses), one axis after the other, in
    float32: the docs' ONNX Runtime program repeats these lines exactly.
    """
    for axis, length in zip((-3, -2), size, strict=True):
        old = images.shape[axis]
        if old == length:
            continue
        centres = np.clip((np.arange(length) + 0.5) * (old / length) - 0.5, 0, old - 1)
        low = np.floor(centres).astype(np.int64)
        high = np.minimum(low + 1, old - 1)
        shape = [1] * images.ndim
        shape[axis] = length
        fraction = (centres - low).astype(np.float32).reshape(shape)
        lower = np.take(images, low, axis=axis)
        images = lower + (np.take(images, high, axis=axis) - lower) * fraction
    return images
