"""`ImagePreprocessing`: a pretrained network's input convention, inside the model."""

import keras
from keras import ops

from keras_unet_seg import _validation

__all__ = ["ImagePreprocessing"]

# What each keras.applications family expects, from images in [0, 1].
MODES = {
    # "caffe": 0-255, BGR, ImageNet means subtracted (VGG, ResNet v1).
    "caffe": {"scale": 255.0, "offset": 0.0, "mean": [123.68, 116.779, 103.939], "std": None},
    # "torch": ImageNet means and standard deviations (DenseNet, EfficientNet, ConvNeXt).
    "torch": {
        "scale": 1.0,
        "offset": 0.0,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    },
    # "tf": [-1, 1] (ResNet v2, MobileNet v2 and v3, EfficientNetV2-S/M/L).
    "tf": {"scale": 2.0, "offset": -1.0, "mean": None, "std": None},
}


def _per_channel(values, channels):
    """RGB values for 3 channels; their average for every channel otherwise."""
    if values is None:
        return None
    if channels == 3:
        return list(values)
    return [sum(values) / len(values)] * channels


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class ImagePreprocessing(keras.layers.Layer):
    """Turns images in `[0, 1]` into the input a pretrained network expects.

    Each `keras.applications` family was trained on its own input
    convention; a pretrained encoder fed another silently loses most of its
    benefit. The modes, from images in `[0, 1]`:

    - `"caffe"`: scaled to `[0, 255]`, the ImageNet means subtracted, and
      RGB turned into BGR (VGG, ResNet v1);
    - `"torch"`: the ImageNet means subtracted and divided by the standard
      deviations (DenseNet, EfficientNet, EfficientNetV2-B0 to B3, ConvNeXt);
    - `"tf"`: scaled to `[-1, 1]` (ResNet v2, MobileNetV2 and V3,
      EfficientNetV2-S, M and L).

    Images with other than 3 channels use the average of the RGB means and
    standard deviations for every channel and keep their channel order.

    Args:
        mode: `"caffe"`, `"torch"` or `"tf"`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(batch, height, width, channels)`, values in `[0, 1]`.

    Output shape:
        Same as the input.

    Example:

    >>> layer = ImagePreprocessing("tf")
    >>> keras.ops.convert_to_numpy(layer(keras.ops.ones((1, 1, 1, 3))))[0, 0, 0].tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, mode, **kwargs):
        super().__init__(**kwargs)
        _validation.check_choice("mode", mode, tuple(MODES))
        self.mode = mode

    def call(self, inputs):
        channels = inputs.shape[-1]
        spec = MODES[self.mode]
        x = ops.cast(inputs, self.compute_dtype) * spec["scale"] + spec["offset"]
        mean, std = (_per_channel(spec[key], channels) for key in ("mean", "std"))
        if mean is not None:
            x = x - ops.convert_to_tensor(mean, dtype=self.compute_dtype)
        if std is not None:
            x = x / ops.convert_to_tensor(std, dtype=self.compute_dtype)
        if self.mode == "caffe" and channels == 3:
            x = ops.flip(x, axis=-1)  # RGB to BGR
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config
