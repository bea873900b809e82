"""What a model takes and gives: its input shape, its channels, its classes.

The one place where prediction, evaluation, export and the commands read these
facts, from a Keras model (functional, or subclassed and built) or from any
callable with an `input_shape`, such as an exported model's runtime.
"""

import numpy as np

from keras_unet_seg._validation import invalid_value


def input_shape(model):
    """`(height, width, channels)` that `model` takes (`(depth, height, width, channels)`
    for a volume model), each an int, or `None` where it takes any size or the model
    does not say.

    Read from the model's build config, else its `input_shape`, else (channels only)
    its first convolution kernel (2D or 3D).
    """
    for shape in (_built_shape(model), _attribute_shape(model)):
        if _is_image_shape(shape):
            return tuple(shape[1:])
    for weight in getattr(model, "weights", None) or ():
        if len(weight.shape) in (4, 5):
            return (None,) * (len(weight.shape) - 2) + (int(weight.shape[-2]),)
    return None, None, None


def input_channels(model):
    """The number of input channels `model` takes, or `None` if it does not say."""
    return input_shape(model)[-1]


def image_input_shape(model):
    """`input_shape(model)` of a model that says its channels.

    Raises:
        ValueError: if the model was not built on images `(batch, height, width, channels)`.
    """
    shape = input_shape(model)
    if shape[-1] is None:
        raise invalid_value(
            "model",
            "a model built on images (batch, height, width, channels): call "
            "`model.build((None, None, None, channels))` or predict once first",
            received="a model of unknown input shape",
        )
    return shape


def sample_input(model):
    """A batch of one random image of the shape `model` takes (64 pixels where any), or
    of one volume (16 voxels where any) for a model built on volumes."""
    *spatial, channels = image_input_shape(model)
    any_size = 64 if len(spatial) == 2 else 16
    shape = (1, *(size or any_size for size in spatial), channels)
    return np.random.default_rng(0).random(shape, dtype="float32")


def num_classes(model, channels=3):
    """The number of classes `model` predicts: its `num_classes`, else its output channels
    (computed for an input of its own channels, else of `channels`)."""
    known = getattr(model, "num_classes", None)
    if isinstance(known, int):
        return known
    *spatial, own = input_shape(model)
    shape = (1, *(side or 32 for side in spatial), own or channels)
    if hasattr(model, "compute_output_shape"):
        return int(model.compute_output_shape(shape)[-1])
    return int(np.shape(model(np.zeros(shape, "float32")))[-1])


def _built_shape(model):
    get_build_config = getattr(model, "get_build_config", None)
    return (get_build_config() or {}).get("input_shape") if get_build_config else None


def _attribute_shape(model):
    try:
        return model.input_shape
    except (AttributeError, ValueError):
        return None


def _is_image_shape(shape):
    return (
        isinstance(shape, (tuple, list))
        and len(shape) in (4, 5)
        and all(d is None or isinstance(d, int) for d in shape)
        and shape[-1] is not None
    )
