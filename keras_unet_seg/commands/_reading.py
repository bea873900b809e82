"""How `predict`, `evaluate` and `export` read images for a model: as its run was trained."""

import dataclasses
import os
from typing import NamedTuple

from keras_unet_seg._errors import UserError
from keras_unet_seg.commands._errors import UsageError, one_line


class Reading(NamedTuple):
    """How `predict`, `evaluate` and `export` run a model: as its run was trained."""

    spec: object  # the `InferenceSpec`: color mode, intensity, scale (and the defaults)
    palette: list | None  # colours of the class ids, from the training masks
    class_names: list | None


def describe_intensity(spec):
    """`'percentile' (1-99.8)`: an intensity spec in a few words."""
    mode = spec["mode"]
    if mode in ("auto", "percentile"):
        joint = ", per channel" if spec["per_channel"] else ""
        return f"'{mode}' ({spec['low']:g}-{spec['high']:g}{joint})"
    return "none" if mode is None else f"'{mode}'"


def image_reading(model, run_config, color_mode=None, intensity=None, scale="native", verbose=1):
    """The `Reading` of images for `model`: the run's `InferenceSpec`, options applied.

    The command line (`color_mode`, `intensity`, `scale`) wins; then the run's
    `config.json` beside `--model` (`run_config`: its `(path, options)`;
    `InferenceSpec.from_run_config`); else the model's input channels, `'auto'` and
    the files' own size. Prints what it reads with and why.
    """
    from keras_unet_seg._model_facts import input_channels
    from keras_unet_seg.inference import InferenceSpec

    path, saved = run_config
    try:
        spec = InferenceSpec.from_run_config(saved, input_channels(model))
    except UserError as error:
        raise UsageError(f"run config '{path}': {one_line(error)}") from None
    if intensity is not None:
        source = "--intensity"
    else:
        source = f"the run's {os.path.basename(path)}" if saved else "the default"
    changes = {"color_mode": color_mode, "intensity": intensity, "scale": _scale(scale, spec)}
    spec = dataclasses.replace(spec, **{k: v for k, v in changes.items() if v is not None})
    if verbose:
        _describe(spec, source, scale)
    return Reading(spec, saved.get("mask_palette"), saved.get("class_names"))


def _scale(requested, spec):
    if isinstance(requested, tuple):
        return requested
    return spec.scale if requested == "auto" else 1.0


def _describe(spec, source, requested):
    factor = spec.scale
    print(
        f"Reading images as {spec.color_mode}, intensity {describe_intensity(spec.intensity)} "
        f"(from {source})."
    )
    if factor != (1.0, 1.0):
        why = "--scale" if isinstance(requested, tuple) else "the run's training scale"
        print(
            f"Resizing images by {factor[0]:g} x {factor[1]:g} (height x width; {why}) "
            "before the model, and the predictions back; --scale native to predict "
            "at the files' own size."
        )
