"""How `predict`, `evaluate` and `export` read images for a model: as its run was trained."""

import os
from typing import NamedTuple

from keras_unet_seg.commands import _types
from keras_unet_seg.commands._config import convert_value
from keras_unet_seg.commands._models import input_channels


class Reading(NamedTuple):
    """How `predict` and `evaluate` read images for a model: as its run was trained."""

    color_mode: str
    intensity: dict
    scale: tuple  # (height, width) resize factor before the model, 1.0 for none
    palette: list | None  # colours of the class ids, from the training masks
    class_names: list | None


def color_mode_for(channels):
    return {1: "grayscale", 3: "rgb", 4: "rgba"}.get(channels, "native")


def describe_intensity(spec):
    """`'percentile' (1-99.8)`: an intensity spec in a few words."""
    mode = spec["mode"]
    if mode in ("auto", "percentile"):
        joint = ", per channel" if spec["per_channel"] else ""
        return f"'{mode}' ({spec['low']:g}-{spec['high']:g}{joint})"
    return "none" if mode is None else f"'{mode}'"


def image_reading(model, run_config, color_mode=None, intensity=None, scale="native", verbose=1):
    """The `Reading` of images for `model`.

    The command line (`color_mode`, `intensity`, `scale`) wins; then the run's
    `config.json` beside `--model` (`run_config`: its `(path, options)`; a run from
    before intensity options trained with `'scale'`); else the model's input channels,
    `'auto'` and the files' own size. Prints what it reads with and why.
    """
    path, saved = run_config
    color_mode = color_mode or saved.get("color_mode") or color_mode_for(input_channels(model))
    if intensity is not None:
        source = "--intensity"
    elif saved:
        where = f"run config '{path}'"
        intensity = convert_value(_types.intensity_choice, saved.get("intensity", "scale"), where)
        source = f"the run's {os.path.basename(path)}"
    else:
        intensity, source = _types.intensity_choice("auto"), "the default"
    factor = _scale(scale, saved)
    if verbose:
        _describe(color_mode, intensity, source, factor, scale)
    return Reading(
        color_mode, intensity, factor, saved.get("mask_palette"), saved.get("class_names")
    )


def _scale(requested, saved):
    if isinstance(requested, tuple):
        return requested
    if requested == "auto" and saved.get("training_scale"):
        return tuple(float(v) for v in saved["training_scale"])
    return (1.0, 1.0)


def _describe(color_mode, intensity, source, factor, requested):
    print(
        f"Reading images as {color_mode}, intensity {describe_intensity(intensity)} "
        f"(from {source})."
    )
    if factor != (1.0, 1.0):
        why = "--scale" if isinstance(requested, tuple) else "the run's training scale"
        print(
            f"Resizing images by {factor[0]:g} x {factor[1]:g} (height x width; {why}) "
            "before the model, and the predictions back; --scale native to predict "
            "at the files' own size."
        )
