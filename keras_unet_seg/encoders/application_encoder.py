"""`ApplicationEncoder`: a `keras.applications` network as a U-Net encoder."""

import inspect
import os

import keras
import numpy as np

from keras_unet_seg import _validation
from keras_unet_seg.encoders._families import FAMILIES
from keras_unet_seg.encoders.image_preprocessing import ImagePreprocessing

__all__ = ["ApplicationEncoder"]


def check_images(encoder, input_shape):
    """Refuses a volume (or anything but images) for a 2D pretrained `encoder`."""
    if len(input_shape) != 4:
        raise _validation.invalid_value(
            "inputs",
            f"images (batch, height, width, channels) for the 2D encoder {encoder.name!r} "
            "(keras.applications and keras-hub networks are 2D; use `encoder=None`, the "
            "U-Net's own stages, for volumes)",
            received=f"input_shape={tuple(input_shape)}",
        )


def check_weights(name, weights):
    """Checks `weights`: `None`, `"imagenet"` or the path of an existing file."""
    if weights is None or weights == "imagenet":
        return
    if not isinstance(weights, (str, os.PathLike)) or not os.path.isfile(weights):
        raise _validation.invalid_value(
            name, "None, 'imagenet' or the path of an existing weights file", weights
        )


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class ApplicationEncoder(keras.layers.Layer):
    """A `keras.applications` network as encoder: images to feature maps by stride.

    The network (without its classification top) is cut at its feature
    layers, one a stride (`encoders.available()` lists them), and preceded
    by the family's input preprocessing (an `ImagePreprocessing` layer), so
    it takes images in `[0, 1]` whatever the family was trained on. The
    network is built in `build`, for the channels of the images: with
    pretrained weights and other than 3 channels, the first convolution's
    kernel is adapted, summed over the RGB channels for one channel and
    repeated (scaled by `3 / channels`) for more, as segmentation_models
    does.

    `weights="imagenet"` downloads the ImageNet weights through
    `keras.applications` on the first build (into `~/.keras/models/`). A
    config never names weights: a saved model holds its own, so
    `get_config()` stores `weights=None`, and `from_config` ignores any
    `weights` a config names: loading a `.keras` file never downloads or
    reads another file.

    Setting `trainable = False` freezes the network, and its batch
    normalization then runs in inference mode, also in `fit`.

    Args:
        network: str, the encoder's name, such as `"resnet50"` or
            `"efficientnetb0"` (see `encoders.available()`).
        weights: `None` (random initialisation), `"imagenet"`, or the path
            of a weights file of the `keras.applications` network built
            without its top for 3 channels (what `keras.applications`'
            `weights` argument takes). Defaults to `None`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: images `(batch, height, width, channels)` in `[0, 1]`, height
            and width multiples of the deepest stride.
        training: bool, whether batch normalization runs in training mode.

    Returns:
        The list of feature maps, finest first, at `feature_strides`.

    Example:

    >>> encoder = ApplicationEncoder("mobilenetv2")
    >>> encoder.feature_strides
    [2, 4, 8, 16, 32]
    >>> [tuple(f.shape) for f in encoder(keras.ops.zeros((1, 64, 64, 1)))][:2]
    [(1, 32, 32, 96), (1, 16, 16, 144)]
    """

    def __init__(self, network, weights=None, **kwargs):
        super().__init__(**kwargs)
        _validation.check_choice("network", network, tuple(FAMILIES))
        check_weights("weights", weights)
        self.network = network
        self.weights_source = None if weights is None else os.fspath(weights)
        self.family = FAMILIES[network]

        # === Layers ===
        self.preprocessing = ImagePreprocessing(
            self.family.preprocessing, name="preprocessing", dtype=self.dtype_policy
        )

    @property
    def feature_strides(self):
        return sorted(self.family.features)

    def build(self, input_shape):
        check_images(self, input_shape)
        channels = input_shape[-1]
        self.preprocessing.build(input_shape)
        self.backbone = self._make_backbone(channels)
        self.backbone.trainable = self.trainable

    def _application(self, channels, weights):
        application = getattr(keras.applications, self.family.application)
        kwargs = {"include_top": False, "weights": weights, "input_shape": (None, None, channels)}
        if "include_preprocessing" in inspect.signature(application).parameters:
            kwargs["include_preprocessing"] = False  # `self.preprocessing` does it
        return _with_policy(application(**kwargs), self.dtype_policy)

    def _make_backbone(self, channels):
        weights = self.weights_source
        if weights is not None and channels != 3:
            network = self._application(channels, None)
            _transfer_weights(self._application(3, weights), network)
        else:
            network = self._application(channels, weights)
        start = self.family.start
        inputs = network.inputs[0] if start is None else network.get_layer(start).input
        outputs = [
            (network.layers[key] if isinstance(key, int) else network.get_layer(key)).output
            for _, key in sorted(self.family.features.items())
        ]
        return keras.Model(inputs, outputs, name=self.network)

    def call(self, inputs, training=None):
        return self.backbone(self.preprocessing(inputs), training=training)

    def compute_output_shape(self, input_shape):
        check_images(self, input_shape)
        batch, height, width, _ = input_shape
        shapes = []
        for stride, output in zip(self.feature_strides, self.backbone.outputs, strict=True):
            shapes.append(
                (
                    batch,
                    None if height is None else height // stride,
                    None if width is None else width // stride,
                    output.shape[-1],
                )
            )
        return shapes

    def get_config(self):
        config = super().get_config()
        # The weights travel with a saved model, never by name in its config.
        config.update({"network": self.network, "weights": None})
        return config

    @classmethod
    def from_config(cls, config):
        # A saved model's weights replace the encoder's: whatever weights an (edited)
        # config names, loading neither downloads nor reads them.
        return cls(**{**config, "weights": None})


def _with_policy(network, policy):
    """`network` with every layer under `policy`, its weights kept.

    keras.applications builds its layers under the global policy, which this
    leaves alone: a copy of each layer made with `policy` (so its weights have
    the policy's variable dtype) replaces it.
    """
    layers = [layer for layer in network.layers if not isinstance(layer, keras.layers.InputLayer)]
    if all(layer.dtype_policy.name == policy.name for layer in layers):
        return network

    def clone(layer):
        if isinstance(layer, keras.Model):  # ConvNeXt's stages are Sequential models
            model = keras.models.clone_model(layer, clone_function=clone)
            model.dtype_policy = policy  # a model has no weights of its own
            return model
        config = layer.get_config()
        if isinstance(layer, keras.layers.Layer):  # not the graph's bare operations
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    copy = clone(network)
    copy.set_weights(network.get_weights())
    return copy


def _transfer_weights(source, target):
    """Copies the weights of a 3-channel network into the same network for other channels.

    The first convolution's kernel is summed over its input channels for one channel,
    and repeated cyclically and scaled by `3 / channels` for more (segmentation_models'
    rule), so that the first layer's output keeps its scale.
    """
    # Only layers with weights: EfficientNet's ImageNet build has one more rescaling layer.
    source_layers = [layer for layer in source.layers if layer.weights]
    target_layers = [layer for layer in target.layers if layer.weights]
    for source_layer, target_layer in zip(source_layers, target_layers, strict=True):
        values = []
        for value, variable in zip(source_layer.get_weights(), target_layer.weights, strict=True):
            values.append(_adapt(value, tuple(variable.shape)))
        if values:
            target_layer.set_weights(values)


def _adapt(value, shape):
    if value.shape == shape:
        return value
    if value.ndim == 4 and value.shape[:2] + value.shape[3:] == shape[:2] + shape[3:]:
        channels = shape[2]
        if channels == 1:
            return value.sum(axis=2, keepdims=True)
        index = [i % value.shape[2] for i in range(channels)]
        return value[:, :, index, :] * (value.shape[2] / channels)
    # Per-channel statistics of a normalization layer before the first convolution:
    # their average for every channel.
    return np.full(shape, value.mean(), dtype=value.dtype)
