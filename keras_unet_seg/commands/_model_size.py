"""Model options that cannot train are refused before anything is built.

`train --depth 40` or `--base-filters 100000` would otherwise allocate for a minute and
end in an out-of-memory error from the backend. The checks are estimates from the
options alone: the parameters of the UNet's convolution kernels (the bulk of them) and
the memory of one training step (weights, gradients and Adam's two moments in float32,
and the activations of one batch), compared with this machine's memory.
"""

import os

from keras_unet_seg.commands._errors import UsageError

# Float32 copies of each parameter while training with Adam: weights, gradients, m, v.
_COPIES_PER_PARAMETER = 4
# Activations kept for the backward pass, per pixel and filter of each level (the
# encoder's and decoder's convolutions, normalizations, activations, the skip and the
# upsampled map): an estimate.
_ACTIVATIONS_PER_LEVEL = 16
_FLOAT32_BYTES = 4


def estimate_parameters(channels, base_filters, depth, num_classes, upsampling="transpose"):
    """The parameters of a `UNet`'s convolution kernels (its bulk), without building it."""
    filters = [base_filters * 2**level for level in range(depth + 1)]
    total = 0
    previous = channels
    for level in range(depth + 1):  # the encoder's blocks and the bottleneck
        total += 9 * (previous * filters[level] + filters[level] ** 2)
        previous = filters[level]
    for level in range(depth):  # the decoder: upsampling, then a block on the skip
        upsampled = filters[level + 1]
        if upsampling == "transpose":  # a 2x2 transposed convolution to the level's filters
            total += 4 * filters[level + 1] * filters[level]
            upsampled = filters[level]
        total += 9 * ((upsampled + filters[level]) * filters[level] + filters[level] ** 2)
    return total + filters[0] * num_classes


def training_memory(parameters, batch_size, image_size, base_filters, depth):
    """Bytes of one training step: the parameters' copies and one batch's activations."""
    height, width = image_size
    pixels = sum(
        (height / 2**level) * (width / 2**level) * base_filters * 2**level
        for level in range(depth + 1)
    )
    activations = batch_size * pixels * _ACTIVATIONS_PER_LEVEL
    return int((parameters * _COPIES_PER_PARAMETER + activations) * _FLOAT32_BYTES)


def physical_memory():
    """This machine's memory in bytes, or `None` where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_model_fits(options, memory=None):
    """Raises `UsageError` for a depth the image size cannot take or a model too big.

    Args:
        options: the `train` options (`image_size`, `depth`, `base_filters`,
            `color_mode`, `num_classes`, `upsampling`, `batch_size`).
        memory: int, bytes available; `None` takes `physical_memory()`.
    """
    height, width = options.image_size
    smallest = min(height, width)
    most = smallest.bit_length() - 1  # the largest depth with 2**depth <= smallest side
    if 2**options.depth > smallest:
        raise UsageError(
            f"train: --depth {options.depth} halves the {height}x{width} training images "
            f"{options.depth} times, more than their {smallest}-pixel side allows: use "
            f"--depth {most} or less (2**{most} = {2**most}), or a larger --image-size."
        )
    # "native" channels are only known from the files; a few more change little.
    channels = {"grayscale": 1, "rgb": 3, "rgba": 4}.get(options.color_mode, 4)
    parameters = estimate_parameters(
        channels, options.base_filters, options.depth, options.num_classes, options.upsampling
    )
    needed = training_memory(
        parameters, options.batch_size, options.image_size, options.base_filters, options.depth
    )
    memory = physical_memory() if memory is None else memory
    if memory is not None and needed > memory:
        raise UsageError(
            f"train: --base-filters {options.base_filters} with --depth {options.depth} "
            f"makes a model of about {parameters:.3g} parameters, and a training step on "
            f"batches of {options.batch_size} {height}x{width} images needs about "
            f"{_size(needed)}, more than this machine's {_size(memory)}: lower "
            "--base-filters, --depth, --batch-size or --image-size."
        )


def _size(size):
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size / 1e6:.2g} MB"
