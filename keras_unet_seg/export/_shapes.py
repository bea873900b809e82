"""The image shape a built model takes, and a sample image of it."""

import numpy as np


def input_shape(model):
    """The `(batch, height, width, channels)` a built model was built for."""
    shape = (model.get_build_config() or {}).get("input_shape")
    if shape is None:
        try:
            shape = model.input_shape
        except (AttributeError, ValueError):
            shape = None
    if not isinstance(shape, (tuple, list)) or len(shape) != 4 or shape[-1] is None:
        raise ValueError(
            "Invalid value for argument `model`. Expected a model built on images "
            f"(batch, height, width, channels). Received: a model built on {shape!r}"
        )
    return tuple(shape)


def sample_input(model):
    """A batch of one image of the build shape (64 pixels where it is unknown)."""
    _, height, width, channels = input_shape(model)
    shape = (1, height or 64, width or 64, channels)
    return np.random.default_rng(0).random(shape, dtype="float32")
