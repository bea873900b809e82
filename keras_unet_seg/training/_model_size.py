"""A model that cannot train is refused before its weights are allocated.

`base_filters=100000` or `depth=40` would otherwise allocate for a minute and end in
an out-of-memory error from the backend. The model itself is asked for its
parameters: it is built with Keras' deferred variables (shapes, no values), so the
count is exact for every encoder and decoder, and the memory of one training step
(weights, gradients and Adam's two moments in float32, and an estimate of one
batch's activations) is compared with this machine's memory.
"""

import math
import os

import keras

from keras_unet_seg._errors import InvalidArgumentError
from keras_unet_seg._naming import option

# Float32 copies of each parameter while training with Adam: weights, gradients, m, v.
_COPIES_PER_PARAMETER = 4
# Activations kept for the backward pass, per pixel and filter of each level (the
# encoder's and decoder's convolutions, normalizations, activations, the skip and the
# upsampled map): an estimate.
_ACTIVATIONS_PER_LEVEL = 16
_FLOAT32_BYTES = 4


def count_parameters(build):
    """The parameters of the model `build()` returns, without allocating its weights.

    Variables made in a `keras.StatelessScope` get a shape and no value until the
    scope ends. Keras would then initialise them all (with `initialize_variables`),
    or keep them in its list of variables to initialise later; the ones made here
    are taken off that list, so that the model counted is never allocated.
    """
    from keras.src.backend.common import global_state  # the deferred variables' list

    with keras.StatelessScope(initialize_variables=False):
        pending = global_state.get_global_attribute(
            "uninitialized_variables", [], set_to_default=True
        )
        before = len(pending)
        try:
            return build().count_params()
        finally:
            del pending[before:]


def training_memory(parameters, batch_size, image_size, base_filters, depth):
    """Bytes of one training step: the parameters' copies and one batch's activations
    (`image_size`: one size an axis, 2 or 3)."""
    pixels = sum(
        math.prod(side / 2**level for side in image_size) * base_filters * 2**level
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


def check_model_fits(config, memory=None):
    """Raises `ValueError` for a depth the image size cannot take or a model too big.

    Args:
        config: the `TrainingConfig`.
        memory: int, bytes available; `None` takes `physical_memory()`.
    """
    from keras_unet_seg.data._images import channels_for
    from keras_unet_seg.training._model import build_model

    sides = "x".join(map(str, config.image_size))
    smallest = min(config.image_size)
    most = smallest.bit_length() - 1  # the largest depth with 2**depth <= smallest side
    if config.encoder is None and 2**config.depth > smallest:
        raise InvalidArgumentError(
            f"{option('depth', config.depth)} halves the {sides} training images "
            f"{config.depth} times, more than their {smallest}-pixel side allows: use "
            f"{option('depth', most)} or less (2**{most} = {2**most}), or a larger "
            f"{option('image_size')}."
        )
    # "native" channels are only known from the files; a few more change little.
    channels = (channels_for(config.color_mode) if len(config.image_size) == 2 else 1) or 4
    unweighted = config.replace(encoder_weights=None)
    parameters = count_parameters(lambda: build_model(unweighted, channels=channels))
    needed = training_memory(
        parameters, config.batch_size, config.image_size, config.base_filters, config.depth
    )
    memory = physical_memory() if memory is None else memory
    if memory is not None and needed > memory:
        raise InvalidArgumentError(
            f"{option('base_filters', config.base_filters)} with "
            f"{option('depth', config.depth)} makes a "
            f"model of {parameters:.3g} parameters, and a training step on batches of "
            f"{config.batch_size} {sides} images needs about {_size(needed)}, "
            f"more than this machine's {_size(memory)}: lower {option('base_filters')}, "
            f"{option('depth')}, {option('batch_size')} or {option('image_size')}."
        )
    return parameters


def _size(size):
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size / 1e6:.2g} MB"
