"""`PyramidEncoder`: a keras-hub `FeaturePyramidBackbone` as a U-Net encoder."""

import keras

from keras_unet_seg import _validation
from keras_unet_seg.encoders.application_encoder import check_images


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class PyramidEncoder(keras.layers.Layer):
    """A keras-hub `FeaturePyramidBackbone` as encoder: its `pyramid_outputs` in order.

    keras-hub's image backbones (ResNet, EfficientNet, MiT, ...) name their
    feature maps by level in `pyramid_outputs`: `"P1"` at stride 2, `"P2"`
    at stride 4, and so on. This layer returns them finest first, and is
    what `UNet(encoder=backbone)` wraps a backbone in. The backbone is
    stored in the config as a nested Keras object, so a saved model loads
    with `safe_mode=True` (keras-hub must be installed:
    `pip install "keras-unet-seg[hub]"`).

    keras-hub backbones leave input preprocessing to their `ImageConverter`:
    feed the images the backbone was trained on (a backbone from
    `from_preset` documents its converter), or train it from scratch on
    `[0, 1]` images.

    Args:
        backbone: a keras-hub `FeaturePyramidBackbone` instance (or its
            serialized config).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: images `(batch, height, width, channels)`.
        training: bool, whether batch normalization runs in training mode.

    Returns:
        The list of feature maps, finest first, at `feature_strides`.
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        levels = getattr(backbone, "pyramid_outputs", None)
        if not isinstance(backbone, keras.Model) or not levels:
            raise _validation.invalid_value(
                "backbone", "a keras-hub FeaturePyramidBackbone with pyramid_outputs", backbone
            )
        self.levels = sorted(levels, key=lambda level: int(level[1:]))

        # === Layers ===
        self.backbone = backbone
        self.pyramid = keras.Model(
            backbone.inputs, [levels[level] for level in self.levels], name="pyramid"
        )

    @property
    def feature_strides(self):
        return [2 ** int(level[1:]) for level in self.levels]

    def build(self, input_shape):
        check_images(self, input_shape)  # the backbone is a built functional model

    def call(self, inputs, training=None):
        return self.pyramid(inputs, training=training)

    def compute_output_shape(self, input_shape):
        check_images(self, input_shape)
        return [tuple(shape) for shape in self.pyramid.compute_output_shape(input_shape)]

    def get_config(self):
        config = super().get_config()
        config["backbone"] = keras.saving.serialize_keras_object(self.backbone)
        return config
