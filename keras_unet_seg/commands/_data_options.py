"""The data options of `train`: the dataset, how images and masks are read, batches."""

import argparse

from keras_unet_seg import _types
from keras_unet_seg.training import TrainingConfig
from keras_unet_seg.training import config as _training_config

default = TrainingConfig.default


def add_arguments(data):
    """Adds the options to the command's `data` argument group."""
    _add_data_arguments(data)
    _add_image_arguments(data)


def _add_data_arguments(data):
    data.add_argument(
        "--data",
        metavar="DIR",
        help="dataset root holding <subset>/images and <subset>/masks (required)",
    )
    data.add_argument(
        "--train-subset", default=default("train_subset"), help="subfolder to train on"
    )
    data.add_argument(
        "--val-subset", default=default("val_subset"), help="subfolder to validate on"
    )
    data.add_argument(
        "--validation-split",
        type=_types.fraction,
        default=default("validation_split"),
        metavar="F",
        help="for one flat folder (DIR/images and DIR/masks): the fraction held out for "
        "validation, drawn with --seed (instead of --train-subset and --val-subset)",
    )
    data.add_argument(
        "--on-error",
        choices=_training_config.ON_ERROR,
        default=default("on_error"),
        help="a bad file stops the command (raise), or is left out with a report (skip)",
    )


def _add_image_arguments(data):
    data.add_argument(
        "--image-size",
        type=_types.tile_size,
        default=default("image_size"),
        metavar="N|HxW|DxHxW",
        help="size images and masks are resized to for training; DxHxW: the folders hold "
        "volumes (NIfTI, TIFF stacks) and a 3D UNet trains on random patches of that size",
    )
    fit = data.add_mutually_exclusive_group()
    fit.add_argument(
        "--crop-to-aspect-ratio",
        action="store_true",
        help="crop images and masks (centred) to --image-size's aspect ratio before resizing",
    )
    fit.add_argument(
        "--pad-to-aspect-ratio",
        action="store_true",
        help="pad images and masks (centred) to --image-size's aspect ratio before resizing",
    )
    data.add_argument(
        "--batch-size",
        type=_types.positive_int,
        default=default("batch_size"),
        help="images per training step (per device under --strategy)",
    )
    data.add_argument(
        "--color-mode",
        choices=_training_config.COLOR_MODES,
        default=default("color_mode"),
        help="image channels (3, 1 or 4), or native: the files' own (2, 5, ... from "
        "multi-channel TIFFs; the model gets as many input channels)",
    )
    data.add_argument(
        "--intensity",
        type=_types.intensity_choice,
        default=default("intensity"),
        metavar="MODE",
        help="intensity normalization of each whole image: auto (8-bit / 255; 16-bit, "
        "32-bit and float from their 1st to 99.8th percentile), scale (by the dtype's "
        "range), percentile, minmax, standardize or none; in --config also a dict such "
        'as {"mode": "percentile", "low": 2, "high": 99.5}. Stored in config.json, '
        "where predict and evaluate find it",
    )
    data.add_argument(
        "--mask-threshold",
        type=_types.finite_float,
        default=default("mask_threshold"),
        metavar="T",
        help="with --num-classes 1: foreground is mask value > T, any values allowed (such "
        "as 127 for 0/255 masks saved as JPEG); by default a mask holds 0 and one other "
        "value, or is a label image (0 and object ids 1..N), and foreground is value > 0",
    )
    data.add_argument(
        "--no-augment",
        dest="augment",
        action="store_const",
        const="none",
        default=argparse.SUPPRESS,  # the default is --augment's
        help="--augment none",
    )
    data.add_argument(  # after --no-augment: a config file's "augment" is checked by this one
        "--augment",
        type=_types.augment_choice,
        default=default("augment"),
        metavar="MODE",
        help="random changes of each training pair (JointAugmentation): geometric (flips "
        "and 90-degree rotations), all (also small rotations, zoom, brightness, contrast, "
        "gamma and noise) or none; chosen by measurement on real images (the Data guide)",
    )
