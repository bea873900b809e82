"""The named `keras.applications` encoders: constructor, preprocessing, feature layers.

Each encoder's feature layers are, for every stride, the last layer of the network
whose output has that stride (found once by building each network at 256x256), as
segmentation_models picks them. MobileNetV3 names most of its layers automatically
(as ConvNeXt its last), and automatic names change with what was built before, so
those layers are given by their position in `model.layers`.
"""

import collections

Family = collections.namedtuple("Family", ["application", "preprocessing", "features", "start"])


def _resnet(application, stride8, stride16):
    features = {
        2: "conv1_relu",
        4: "conv2_block3_out",
        8: stride8,
        16: stride16,
        32: "conv5_block3_out",
    }
    return Family(application, "caffe", features, None)


def _resnet_v2(application, stride8, stride16):
    features = {
        2: "conv1_conv",
        4: "conv2_block3_1_relu",
        8: stride8,
        16: stride16,
        32: "post_relu",
    }
    return Family(application, "tf", features, None)


def _densenet(application):
    features = {2: "conv1_relu", 4: "pool2_conv", 8: "pool3_conv", 16: "pool4_conv", 32: "relu"}
    return Family(application, "torch", features, None)


def _efficientnet(application):
    features = {
        2: "block2a_expand_activation",
        4: "block3a_expand_activation",
        8: "block4a_expand_activation",
        16: "block6a_expand_activation",
        32: "top_activation",
    }
    # Its own rescaling and normalization come before `stem_conv_pad`; ours replace them.
    return Family(application, "torch", features, "stem_conv_pad")


def _efficientnet_v2(application, preprocessing, stride2, stride4):
    features = {
        2: stride2,
        4: stride4,
        8: "block4a_expand_activation",
        16: "block6a_expand_activation",
        32: "top_activation",
    }
    return Family(application, preprocessing, features, None)


def _convnext(application, prefix, stage2_blocks):
    features = {
        4: f"{prefix}_stage_0_block_2_identity",
        8: f"{prefix}_stage_1_block_2_identity",
        16: f"{prefix}_stage_2_block_{stage2_blocks - 1}_identity",
        32: -1,  # its final layer normalization, named automatically
    }
    return Family(application, "torch", features, None)


FAMILIES = {
    "vgg16": Family(
        "VGG16",
        "caffe",
        {
            1: "block1_conv2",
            2: "block2_conv2",
            4: "block3_conv3",
            8: "block4_conv3",
            16: "block5_conv3",
            32: "block5_pool",
        },
        None,
    ),
    "vgg19": Family(
        "VGG19",
        "caffe",
        {
            1: "block1_conv2",
            2: "block2_conv2",
            4: "block3_conv4",
            8: "block4_conv4",
            16: "block5_conv4",
            32: "block5_pool",
        },
        None,
    ),
    "resnet50": _resnet("ResNet50", "conv3_block4_out", "conv4_block6_out"),
    "resnet101": _resnet("ResNet101", "conv3_block4_out", "conv4_block23_out"),
    "resnet152": _resnet("ResNet152", "conv3_block8_out", "conv4_block36_out"),
    "resnet50v2": _resnet_v2("ResNet50V2", "conv3_block4_1_relu", "conv4_block6_1_relu"),
    "resnet101v2": _resnet_v2("ResNet101V2", "conv3_block4_1_relu", "conv4_block23_1_relu"),
    "resnet152v2": _resnet_v2("ResNet152V2", "conv3_block8_1_relu", "conv4_block36_1_relu"),
    "densenet121": _densenet("DenseNet121"),
    "densenet169": _densenet("DenseNet169"),
    "densenet201": _densenet("DenseNet201"),
    "mobilenetv2": Family(
        "MobileNetV2",
        "tf",
        {
            2: "block_1_expand_relu",
            4: "block_3_expand_relu",
            8: "block_6_expand_relu",
            16: "block_13_expand_relu",
            32: "out_relu",
        },
        None,
    ),
    "mobilenetv3small": Family(
        "MobileNetV3Small", "tf", {2: 3, 4: 18, 8: 36, 16: 110, 32: 155}, None
    ),
    "mobilenetv3large": Family(
        "MobileNetV3Large", "tf", {2: 12, 4: 30, 8: 75, 16: 140, 32: 185}, None
    ),
    **{f"efficientnetb{i}": _efficientnet(f"EfficientNetB{i}") for i in range(8)},
    "efficientnetv2b0": _efficientnet_v2(
        "EfficientNetV2B0", "torch", "block1a_project_activation", "block2b_add"
    ),
    **{
        f"efficientnetv2b{i}": _efficientnet_v2(
            f"EfficientNetV2B{i}", "torch", "block1b_add", "block2c_add"
        )
        for i in (1, 2, 3)
    },
    "efficientnetv2s": _efficientnet_v2("EfficientNetV2S", "tf", "block1b_add", "block2d_add"),
    "efficientnetv2m": _efficientnet_v2("EfficientNetV2M", "tf", "block1c_add", "block2e_add"),
    "efficientnetv2l": _efficientnet_v2("EfficientNetV2L", "tf", "block1d_add", "block2g_add"),
    "convnexttiny": _convnext("ConvNeXtTiny", "convnext_tiny", 9),
    "convnextsmall": _convnext("ConvNeXtSmall", "convnext_small", 27),
    "convnextbase": _convnext("ConvNeXtBase", "convnext_base", 27),
    "convnextlarge": _convnext("ConvNeXtLarge", "convnext_large", 27),
    "convnextxlarge": _convnext("ConvNeXtXLarge", "convnext_xlarge", 27),
}
