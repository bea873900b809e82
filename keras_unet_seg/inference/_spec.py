"""`InferenceSpec`: how a trained model is run, from training to prediction and export."""

import dataclasses
import inspect
import json
import os

from keras_unet_seg._validation import (
    check_choice,
    check_positive,
    check_positive_int,
    check_rate,
    check_scale,
    check_size,
    check_unit_interval,
    invalid_value,
)
from keras_unet_seg.data import intensity_spec
from keras_unet_seg.data._images import COLOR_MODES, color_mode_for
from keras_unet_seg.inference._tiles import BLEND_MODES, check_tta
from keras_unet_seg.performance import PRECISIONS

# The run's file beside its models that `InferenceSpec.from_run` reads.
_RUN_CONFIG = "config.json"


@dataclasses.dataclass(frozen=True)
class InferenceSpec:
    """How a trained model is run: every fact that reproduces `keras-unet-seg predict`.

    An image file is read as `color_mode` and normalised by `intensity`
    (`keras_unet_seg.data.read_image`), resized by `scale`, predicted tile by
    tile (`tile_size`, `overlap`, `blend`, `sigma_scale`, `tta`: `predict_tiled`,
    given `tiled_arguments()`) by the model under `precision`, resized back and
    thresholded at `threshold` (one class; the argmax otherwise). A run's spec
    comes from the `config.json` that `train` writes (`from_run`); `predict`,
    `evaluate` and `export` run by it, and `export` writes it into the JSON file
    beside the exported model. Values are checked and normalised (pairs, the full
    intensity dict); `get_config()` is JSON-serializable.

    Args:
        color_mode: `"grayscale"`, `"rgb"`, `"rgba"` or `"native"`. Defaults to
            `None`: from `channels` (1, 3, 4, else native), `"rgb"` without them.
        channels: int or `None`, the model's input channels.
        intensity: a mode or dict of `keras_unet_seg.data.intensity_spec`.
            Defaults to `"auto"`.
        scale: a factor or `(height, width)` factors: the run's training scale.
            Defaults to `1.0`.
        threshold: float in [0, 1]: foreground at or above it. Defaults to `0.5`.
        tile_size: int, `(height, width)` or `(depth, height, width)`, `predict_tiled`'s.
            Defaults to `256`.
        overlap: float in [0, 1), `predict_tiled`'s. Defaults to `0.25`.
        blend: `"gaussian"` or `"constant"`, `predict_tiled`'s. Defaults to
            `"gaussian"`.
        sigma_scale: float, `predict_tiled`'s. Defaults to `0.125`.
        tta: bool or a tuple of flips, `predict_tiled`'s (kept as the tuple of
            flips). Defaults to `True`: the horizontal, vertical and double flips,
            as `predict` and `evaluate` run by default.
        precision: `"auto"` or a dtype policy name of
            `keras_unet_seg.performance.resolve_precision` (`training=False`).
            Defaults to `"auto"`.

    Example:

    >>> spec = InferenceSpec(channels=1, scale=0.5)
    >>> spec.color_mode, spec.scale, spec.tile_size
    ('grayscale', (0.5, 0.5), (256, 256))
    >>> InferenceSpec.from_config(spec.get_config()) == spec
    True
    """

    color_mode: str | None = None
    channels: int | None = None
    intensity: object = "auto"
    scale: object = 1.0
    threshold: float = 0.5
    tile_size: object = 256
    overlap: float = 0.25
    blend: str = "gaussian"
    sigma_scale: float = 0.125
    tta: object = True
    precision: str = "auto"

    def __post_init__(self):
        if self.channels is not None:
            check_positive_int("channels", self.channels)
        default = "rgb" if self.channels is None else color_mode_for(self.channels)
        checked = {
            "color_mode": check_choice("color_mode", self.color_mode or default, COLOR_MODES),
            "intensity": intensity_spec(self.intensity),
            "scale": check_scale("scale", self.scale),
            "threshold": float(check_unit_interval("threshold", self.threshold)),
            "tile_size": check_size("tile_size", self.tile_size, rank=_rank(self.tile_size)),
            "overlap": float(check_rate("overlap", self.overlap)),
            "blend": check_choice("blend", self.blend, BLEND_MODES),
            "sigma_scale": float(check_positive("sigma_scale", self.sigma_scale)),
            "tta": check_tta(self.tta),
            "precision": check_choice("precision", self.precision, PRECISIONS),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def tiled_arguments(self, volumes=False):
        """`predict_tiled`'s keyword arguments of this spec (scale and tiling); with
        `volumes`, a square `tile_size` (as an int gives) is a cube."""
        names = ("tile_size", "overlap", "blend", "sigma_scale", "tta", "scale")
        arguments = {name: getattr(self, name) for name in names}
        if volumes:
            tile = self.tile_size
            square = len(tile) == 2 and tile[0] == tile[1]
            arguments["tile_size"] = (tile[0],) * 3 if square else tile
        return arguments

    def get_config(self):
        """The spec as a JSON-serializable dict (pairs as lists)."""
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }

    @classmethod
    def from_config(cls, config):
        """The spec of a `get_config()` dict."""
        return cls(**config)

    @classmethod
    def from_run_config(cls, config, channels=None):
        """The spec of a run's `config.json` options (a dict), as `train` wrote them.

        The color mode, input channels, intensity normalization and training scale
        are the run's (a run from before the intensity options trained with
        `"scale"`), and so is the tile of a run on volumes (its training patch,
        as `predict` tiles it); the rest are the defaults. `channels` (the
        model's) stands in for a config that lacks them; an empty config gives
        the defaults.
        """
        intensity = config.get("intensity", "scale") if config else "auto"
        patch = volume_patch(config)
        volume_tile = {"tile_size": patch} if patch else {}
        return cls(
            color_mode=config.get("color_mode"),
            channels=config.get("input_channels", channels),
            intensity=intensity,
            scale=config.get("training_scale") or 1.0,
            **volume_tile,
        )

    @classmethod
    def from_run(cls, path):
        """The spec of a run folder, or of the run of a model file in it.

        Raises:
            FileNotFoundError: if the folder has no `config.json`.
        """
        folder = os.fspath(path)
        if not os.path.isdir(folder):
            folder = os.path.dirname(os.path.abspath(folder))
        with open(os.path.join(folder, _RUN_CONFIG), encoding="utf-8") as file:
            return cls.from_run_config(json.load(file))


def volume_patch(config):
    """The training patch `(depth, height, width)` of a run on volumes (its run config's
    `image_size` of three sides), `predict`'s tile for it; `None` for a run on images."""
    patch = tuple((config or {}).get("image_size") or ())
    return patch if len(patch) == 3 else None


def _rank(tile_size):
    """3 for a `(depth, height, width)` tile, else 2."""
    return 3 if isinstance(tile_size, (tuple, list)) and len(tile_size) == 3 else 2


def spec_of(spec, covered, function):
    """`spec`, or the spec of `function`'s `covered` arguments (a dict) when it is `None`.

    Raises:
        ValueError: if both a spec and covered arguments other than their defaults are given.
    """
    if spec is None:
        return InferenceSpec(**covered)
    if not isinstance(spec, InferenceSpec):
        raise invalid_value("spec", "an InferenceSpec or None", spec)
    parameters = inspect.signature(function).parameters
    given = sorted(name for name, value in covered.items() if value != parameters[name].default)
    if given:
        raise invalid_value(
            "spec", f"a spec or the arguments {given}, not both (the spec holds them)", spec
        )
    return spec
