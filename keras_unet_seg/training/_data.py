"""The training and validation data of a `TrainingConfig`, and what a run records of it."""

import math
import os

import numpy as np

from keras_unet_seg import _types
from keras_unet_seg._errors import UserError
from keras_unet_seg._naming import option
from keras_unet_seg.training._errors import TrainingError


def load_datasets(config, dist):
    """The training and validation datasets; batches of `batch_size` per device of `dist`.

    Returns `(train_data, val_data, facts)`: the training data repeated when
    `config.steps_per_epoch` counts the epochs, and `data_facts`.
    """
    from keras_unet_seg.data import SegmentationDataset

    if is_volume_config(config):
        return _volume_datasets(config, dist)
    common = {
        "image_size": tuple(config.image_size),
        "batch_size": dist.global_batch_size(config.batch_size),
        "color_mode": config.color_mode,
        "intensity": config.intensity,
        "num_classes": config.num_classes,
        "mask_threshold": config.mask_threshold,
        "seed": config.seed,
        "on_error": config.on_error,
        "crop_to_aspect_ratio": config.crop_to_aspect_ratio,
        "pad_to_aspect_ratio": config.pad_to_aspect_ratio,
    }
    split = config.validation_split
    subsets = (
        (config.train_subset, config.val_subset) if split is None else ("training", "validation")
    )
    datasets = []
    for role, subset, extra in (
        (
            "training",
            subsets[0],
            {"shuffle": True, "augment": _types.AUGMENTATIONS[config.augment]},
        ),
        ("validation", subsets[1], {"shuffle": False}),
    ):
        if split is not None:
            extra["validation_split"] = split
        try:
            datasets.append(
                SegmentationDataset.from_directory(config.data, subset=subset, **extra, **common)
            )
        except UserError as error:  # the data module names the folder or file at fault
            raise TrainingError(_data_error(config, role, subset, error)) from None
    train_data, val_data = _even(datasets, dist, common["batch_size"])
    if config.steps_per_epoch:  # epochs of a fixed number of steps, whatever the images
        train_data = train_data.repeat()
    return train_data, val_data, data_facts(datasets[0], config)


def is_volume_config(config):
    """Whether `config` trains on volumes: an `image_size` (patch size) of three sides."""
    return len(config.image_size) == 3


def _volume_datasets(config, dist):
    """`load_datasets` of volumes: random patches with foreground oversampling (and
    augmentation) for training, the patches of a grid over each volume for validation."""
    from keras_unet_seg.data import SegmentationDataset

    if config.validation_split is not None:
        raise TrainingError(
            f"{option('validation_split')} splits images; volumes train from "
            f"{option('train_subset')} and {option('val_subset')} folders."
        )
    common = {
        "patch_size": tuple(config.image_size),
        "batch_size": dist.global_batch_size(config.batch_size),
        "num_classes": config.num_classes,
        "mask_threshold": config.mask_threshold,
        "intensity": config.intensity,
        "seed": config.seed,
        "on_error": config.on_error,
    }
    roles = (
        ("training", config.train_subset, {"augment": config.augment != "none"}),
        ("validation", config.val_subset, {"sampling": "grid", "shuffle": False}),
    )
    datasets = []
    for role, subset, extra in roles:
        try:
            dataset = SegmentationDataset.from_volumes(config.data, subset, **common, **extra)
            datasets.append(dataset)
        except UserError as error:
            raise TrainingError(_data_error(config, role, subset, error)) from None
    train_data, val_data = datasets
    if config.steps_per_epoch:
        train_data = train_data.repeat()
    facts = {
        "training_images": len(datasets[0].image_paths),
        "input_channels": int(datasets[0].element_spec[0].shape[-1]),
        "training_spacings": [list(spacing) for spacing in datasets[0].spacings],
    }
    return train_data, val_data, facts


def _data_error(config, role, subset, error):
    split = config.validation_split
    name = "train_subset" if role == "training" else "val_subset"
    where = option("validation_split", split) if split is not None else option(name, subset)
    hint = ""
    if split is None and os.path.isdir(os.path.join(config.data, "images")):
        hint = (
            f" '{config.data}' is one flat folder (images/ and masks/): pass "
            f"{option('validation_split', 0.2)} to hold out a fifth of it for validation."
        )
    message = str(error)
    data = option("data", config.data)
    return f"cannot read the {role} data ({data}, {where}): {message}{hint}"


def _even(datasets, dist, batch_size):
    """The datasets in batches that split evenly among `dist`'s devices.

    A batch that does not (JAX; TensorFlow's MirroredStrategy in training, and in
    evaluation when a replica gets no image) fails, so the short last batch is left
    out, and said so.
    """
    replicas = dist.num_replicas
    even = []
    for role, dataset in zip(("training", "validation"), datasets, strict=True):
        count = len(dataset.image_paths)
        left_out = dist.left_out(count, batch_size)
        if left_out:
            if count < batch_size:
                raise TrainingError(
                    f"the {count} {role} images do not split evenly among {replicas} "
                    f"devices; give at least {batch_size} (a global batch) or a multiple of "
                    f"{replicas}."
                )
            print(
                f"Each epoch leaves out the last {left_out} of the {count} {role} "
                f"images: batches of {batch_size} must split evenly among {replicas} devices."
            )
        even.append(dist.even_batches(dataset, count, batch_size))
    return even


def data_facts(dataset, config):
    """What `config.json` records of the training data, for predict and evaluate.

    `training_images`, how many; `input_channels`; `training_scale`, the factor from
    the training images' median size on disk to `image_size` (height, width), by
    which `predict` and `evaluate` resize new images; and `mask_palette`, the colours
    of the class ids when the training masks are palette PNGs, which `predict` writes
    its masks with.
    """
    from PIL import Image

    heights, widths = zip(*dataset.image_sizes, strict=True)
    height, width = config.image_size
    ratio = (float(np.median(widths)) / float(np.median(heights))) / (width / height)
    if not (config.crop_to_aspect_ratio or config.pad_to_aspect_ratio) and (
        abs(math.log(ratio)) > math.log(1.1)
    ):
        print(
            f"Note: the training images are {int(np.median(widths))}x{int(np.median(heights))} "
            f"(width x height, median) and are resized to {width}x{height}, which distorts "
            f"them; {option('crop_to_aspect_ratio', True)} or "
            f"{option('pad_to_aspect_ratio', True)} keeps their shape."
        )
    facts = {
        "training_images": len(dataset.image_paths),
        "input_channels": int(dataset.element_spec[0].shape[-1]),
        "training_scale": [
            round(height / float(np.median(heights)), 6),
            round(width / float(np.median(widths)), 6),
        ],
    }
    with Image.open(dataset.mask_paths[0]) as mask:
        if mask.mode == "P" and config.num_classes > 1:
            colours = mask.getpalette()[: 3 * config.num_classes]
            facts["mask_palette"] = [colours[i : i + 3] for i in range(0, len(colours), 3)]
    return facts
