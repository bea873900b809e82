"""Encoders: the U-Net's own stages, `keras.applications` networks, keras-hub backbones.

`UNet(encoder="resnet50", encoder_weights="imagenet")` takes any name that
`available()` lists; `UNet(encoder=backbone)` any keras-hub
`FeaturePyramidBackbone`.
"""

from keras_unet_seg.encoders._families import FAMILIES
from keras_unet_seg.encoders.application_encoder import ApplicationEncoder
from keras_unet_seg.encoders.image_preprocessing import ImagePreprocessing
from keras_unet_seg.encoders.pyramid_encoder import PyramidEncoder
from keras_unet_seg.encoders.unet_encoder import UNetEncoder


def available():
    """Lists the named encoders, with their feature layers by stride.

    Returns:
        A dict from each name that `UNet(encoder=...)` accepts to a dict with
        `"application"` (the `keras.applications` function), `"preprocessing"`
        (the `ImagePreprocessing` mode) and `"features"` (stride to the layer
        whose output is the feature map: a layer name, or `"layers[i]"` for
        the automatically named layers of MobileNetV3 and ConvNeXt).

    Example:

    >>> info = available()["resnet50"]
    >>> info["application"], info["preprocessing"]
    ('ResNet50', 'caffe')
    >>> info["features"][32]
    'conv5_block3_out'
    >>> len(available())
    34
    """
    return {
        name: {
            "application": family.application,
            "preprocessing": family.preprocessing,
            "features": {
                stride: f"layers[{key}]" if isinstance(key, int) else key
                for stride, key in sorted(family.features.items())
            },
        }
        for name, family in FAMILIES.items()
    }


__all__ = ["ApplicationEncoder", "ImagePreprocessing", "PyramidEncoder", "UNetEncoder", "available"]
