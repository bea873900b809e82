"""The model options of `train`: the U-Net's own stages, or a pretrained encoder.

`--encoder NAME` builds `UNet(encoder=NAME)`; `--encoder-weights imagenet|PATH` loads
its weights; `--freeze-encoder-epochs N` trains the first `N` epochs with the encoder
frozen (batch normalization in inference mode), then the whole model at a tenth of
the scheduled learning rate (`training.learning_rate`'s `unfreeze_factor`).
"""

import argparse

from keras_unet_seg import _types
from keras_unet_seg.training import TrainingConfig
from keras_unet_seg.training import config as _training_config

default = TrainingConfig.default


def add_arguments(model, training):
    """Adds the options to the command's `model` and `training` argument groups."""
    _add_model_arguments(model)
    _add_encoder_arguments(model, training)


def _add_model_arguments(model):
    model.add_argument(
        "--num-classes",
        type=_types.positive_int,
        default=default("num_classes"),
        help="1 for binary masks (sigmoid), more for class-id masks (softmax)",
    )
    model.add_argument(
        "--class-names",
        type=_types.name_list,
        default=default("class_names"),
        metavar="NAMES",
        help="comma-separated names of the classes by id, background first (such as "
        "background,cell,nucleus); predict and evaluate name them in legends and reports",
    )
    model.add_argument(
        "--base-filters",
        type=_types.positive_int,
        default=default("base_filters"),
        help="filters of the first level, doubled at each level down",
    )
    model.add_argument(
        "--depth",
        type=_types.positive_int,
        default=default("depth"),
        help="number of downsampling stages",
    )
    model.add_argument(
        "--normalization",
        type=_types.optional_choice(*_training_config.NORMALIZATIONS),
        default=default("normalization"),
        help="batch, group, instance, layer or none",
    )
    model.add_argument(
        "--upsampling",
        choices=_training_config.UPSAMPLINGS,
        default=default("upsampling"),
        help="how the decoder upsamples",
    )
    model.add_argument(
        "--pooling",
        choices=_training_config.POOLINGS,
        default=default("pooling"),
        help="how the encoder downsamples",
    )
    model.add_argument(
        "--dropout",
        type=_types.fraction,
        default=default("dropout"),
        help="dropout rate at the end of each block",
    )
    model.add_argument(
        "--residual",
        action=argparse.BooleanOptionalAction,
        default=default("residual"),
        help="residual blocks",
    )
    model.add_argument(
        "--attention",
        action=argparse.BooleanOptionalAction,
        default=default("attention"),
        help="attention-gated skip connections (AttentionDecoderStage)",
    )


def _add_encoder_arguments(model, training):
    model.add_argument(
        "--encoder",
        default=default("encoder"),
        metavar="NAME",
        help="a keras.applications network as encoder, such as resnet50 or efficientnetb0 "
        "(keras_unet_seg.encoders.available() lists them), instead of the U-Net's own "
        "stages; --base-filters, --depth and --pooling then do not apply",
    )
    model.add_argument(
        "--encoder-weights",
        default=default("encoder_weights"),
        metavar="imagenet|PATH",
        help="the encoder's weights: imagenet (downloaded by keras.applications on first "
        "use) or a weights file; random without it",
    )
    training.add_argument(
        "--freeze-encoder-epochs",
        type=_types.non_negative_int,
        default=default("freeze_encoder_epochs"),
        metavar="N",
        help="train the first N epochs with the encoder frozen, then the whole model at "
        f"{_training_config.UNFROZEN_LEARNING_RATE_FACTOR:g} times the learning rate of "
        "--lr-schedule",
    )
