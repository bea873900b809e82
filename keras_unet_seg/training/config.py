"""`TrainingConfig`: everything a training run is made of, checked once.

The `train` command maps its options onto it (one field a flag, `--base-filters`
is `base_filters`), `train_run` trains from it, and a run's `config.json` is its
`to_dict()` plus what the run found in the data (`RECORDED`), which `predict`,
`evaluate` and `export` read back.
"""

import argparse
import dataclasses
import json
from typing import Any

from keras_unet_seg import _types, _validation, performance
from keras_unet_seg._errors import InvalidArgumentError
from keras_unet_seg._naming import option

__all__ = ["TrainingConfig"]

COLOR_MODES = ("rgb", "grayscale", "rgba", "native")
ON_ERROR = ("raise", "skip")
NORMALIZATIONS = ("batch", "group", "instance", "layer")
UPSAMPLINGS = ("transpose", "bilinear", "nearest")
POOLINGS = ("max", "avg", "conv")
LR_SCHEDULES = ("none", "cosine", "plateau")
# What `config.json` records besides the configuration: found in the data, not chosen.
RECORDED = ("training_images", "input_channels", "training_scale", "mask_palette")
# A pretrained encoder trains at this fraction of the scheduled rate once unfrozen.
UNFROZEN_LEARNING_RATE_FACTOR = 0.1


def check(name, value):
    """`value` checked and normalised as the field `name` takes it; `ValueError` if bad."""
    try:
        return _CHECKS[name](value)
    except argparse.ArgumentTypeError as error:
        expected = str(error).removeprefix("expected ").rsplit(", got ", 1)[0]
        raise _validation.invalid_value(name, expected, value) from None


def _choice(*choices):
    def convert(value):
        if value not in choices:
            _types.fail("one of " + ", ".join(repr(c) for c in choices), value)
        return value

    return convert


def _boolean(value):
    if not isinstance(value, bool):
        _types.fail("true or false", value)
    return value


def _optional(convert):
    return lambda value: None if value is None else convert(value)


def _string(value):
    if not isinstance(value, str) or not value:
        _types.fail("a non-empty string", value)
    return value


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The options of a training run: data, model, training, devices.

    Every field is checked and normalised when the config is made (or changed
    with `replace`), by the same rules as the `train` command's options, so a
    config that exists can train; `to_dict` / `from_dict` (and `to_json` /
    `from_json`) round-trip it through JSON. The field names are the command's
    options (`base_filters` is `--base-filters`); its `--help` says what each
    does. The fields marked as the model's (`MODEL_FIELDS`) cannot change when
    a run resumes.

    Args:
        data: str, the dataset root: `<train_subset>/{images,masks}` and
            `<val_subset>/{images,masks}`, or with `validation_split` one flat
            `images/` and `masks/`. With an `image_size` of three sides
            `(depth, height, width)`, the folders hold volumes (NIfTI files, TIFF
            stacks) and a 3D `UNet` trains on patches of that size
            (`SegmentationDataset.from_volumes`).
        (the other fields): as the `train` command's options of the same name.

    Example:

    >>> config = TrainingConfig(data="cells", base_filters=8, epochs=2)
    >>> config.image_size, config.steps_per_epoch, config.depth
    ((128, 128), 25, 3)
    >>> TrainingConfig.from_dict(config.to_dict()) == config
    True
    >>> TrainingConfig(data="cells", epochs=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    keras_unet_seg._errors.InvalidArgumentError: Invalid value for argument `epochs`. ...=0
    """

    data: str
    train_subset: str = "train"
    val_subset: str = "val"
    validation_split: float | None = None
    on_error: str = "raise"
    image_size: tuple = (128, 128)
    crop_to_aspect_ratio: bool = False
    pad_to_aspect_ratio: bool = False
    batch_size: int = 4
    color_mode: str = "rgb"
    intensity: Any = "auto"
    mask_threshold: float | None = None
    augment: str = "geometric"
    num_classes: int = 1
    class_names: Any = None
    # The demo's model: with 250 steps, at or above a plain U-Net on 8 real images and
    # within the demo's time (benchmarks/bench_quality.py; the Model quality page).
    base_filters: int = 8
    depth: int = 3
    normalization: str | None = "batch"
    upsampling: str = "transpose"
    pooling: str = "max"
    dropout: float = 0.0
    residual: bool = False
    attention: bool = False
    encoder: str | None = None
    encoder_weights: str | None = None
    loss: Any = "bce_dice"
    metrics: Any = "dice,iou"
    epochs: int = 10
    # 250 steps of 4 images whatever the number of images (benchmarks/bench_quality.py).
    steps_per_epoch: int = 25
    learning_rate: float = 1e-3
    lr_schedule: str = "none"
    warmup_epochs: int = 0
    early_stopping: int = 0
    freeze_encoder_epochs: int = 0
    seed: int = 0
    precision: str = "auto"
    jit_compile: Any = "auto"
    strategy: str | None = None

    def __post_init__(self):
        for field in dataclasses.fields(self):
            converted = check(field.name, getattr(self, field.name))
            object.__setattr__(self, field.name, converted)  # frozen: set once, here
        self._check_combinations()

    def _check_combinations(self):
        if self.encoder is None:
            for name in ("encoder_weights", "freeze_encoder_epochs"):
                if getattr(self, name):
                    raise InvalidArgumentError(
                        f"{option(name)} needs {option('encoder')}: it applies to a "
                        "pretrained encoder only."
                    )
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise InvalidArgumentError(
                f"give one of {option('crop_to_aspect_ratio', True)} and "
                f"{option('pad_to_aspect_ratio', True)}, not both."
            )

    @classmethod
    def default(cls, name):
        """The default of the field `name`."""
        return cls.__dataclass_fields__[name].default

    @staticmethod
    def model_fields():
        """The names of the fields that define the model's weights."""
        return MODEL_FIELDS

    def model_changes(self, saved):
        """The model fields of this config that differ from `saved`, a run's `config.json`.

        A field that `saved` lacks (a run from before it) is not a change.
        """
        changed = []
        for name in MODEL_FIELDS:
            if name not in saved:
                continue
            try:
                value = _CHECKS[name](saved[name])
            except argparse.ArgumentTypeError:
                value = saved[name]
            if value != getattr(self, name):
                changed.append(name)
        return changed

    def replace(self, **values):
        """A copy with `values` changed, checked again."""
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"TrainingConfig has no field {unknown[0]!r}")
        return dataclasses.replace(self, **values)

    def to_dict(self):
        """The fields as JSON data (tuples as lists)."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values, ignore=RECORDED):
        """The config of a dict such as `to_dict()`'s or a run's `config.json`.

        Keys may use `-` for `_`. The facts a run records beside the config
        (`RECORDED`) are left out; any other unknown key is an error.
        """
        if not isinstance(values, dict):
            raise TypeError(f"Expected a dict of fields. Received: {values!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {}
        for key, value in values.items():
            name = key.replace("-", "_")
            if name in ignore:
                continue
            if name not in names:
                raise InvalidArgumentError(
                    f"Unknown training option {key!r}. Known options: {', '.join(sorted(names))}."
                )
            fields[name] = value
        return cls(**fields)

    def to_json(self, path):
        """Writes `to_dict()` to the JSON file `path` (atomically)."""
        from keras_unet_seg import _atomic

        _atomic.write_json(path, self.to_dict())

    @classmethod
    def from_json(cls, path):
        """The config of the JSON file `path`, such as a run's `config.json`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


# Each field's check: the command line's own converters (`_types`), which also
# normalise (`"64x48"` to `(64, 48)`, an intensity mode to its full spec).
_CHECKS = {
    "data": _string,
    "train_subset": _string,
    "val_subset": _string,
    "validation_split": _optional(_types.fraction),
    "on_error": _choice(*ON_ERROR),
    "image_size": _types.tile_size,
    "crop_to_aspect_ratio": _boolean,
    "pad_to_aspect_ratio": _boolean,
    "batch_size": _types.positive_int,
    "color_mode": _choice(*COLOR_MODES),
    "intensity": _types.intensity_choice,
    "mask_threshold": _optional(_types.finite_float),
    "augment": _types.augment_choice,
    "num_classes": _types.positive_int,
    "class_names": _optional(_types.name_list),
    "base_filters": _types.positive_int,
    "depth": _types.positive_int,
    "normalization": _types.optional_choice(*NORMALIZATIONS),
    "upsampling": _choice(*UPSAMPLINGS),
    "pooling": _choice(*POOLINGS),
    "dropout": _types.fraction,
    "residual": _boolean,
    "attention": _boolean,
    "encoder": _optional(_string),
    "encoder_weights": _optional(_string),
    "loss": _types.loss_spec,
    "metrics": _types.metric_list,
    "epochs": _types.positive_int,
    "steps_per_epoch": _types.non_negative_int,
    "learning_rate": _types.positive_float,
    "lr_schedule": _choice(*LR_SCHEDULES),
    "warmup_epochs": _types.non_negative_int,
    "early_stopping": _types.non_negative_int,
    "freeze_encoder_epochs": _types.non_negative_int,
    "seed": _types.non_negative_int,
    "precision": _choice(*performance.PRECISIONS),
    "jit_compile": _types.jit_compile_choice,
    "strategy": _types.optional_choice(*performance.STRATEGIES),
}
# The fields that define the model's weights: a resumed run cannot change them.
MODEL_FIELDS = (
    "color_mode",
    "intensity",
    "num_classes",
    "base_filters",
    "depth",
    "normalization",
    "upsampling",
    "pooling",
    "dropout",
    "residual",
    "attention",
    "encoder",
    "encoder_weights",
)
