"""Exported models in `predict` and `evaluate`: `--model model.onnx` run in its runtime.

The runtime comes from `--runtime`, or from the file's suffix (`.onnx`: ONNX Runtime,
`.tflite`: LiteRT, `.xml`: OpenVINO, a folder with `saved_model.pb`: TensorFlow);
`.keras` is a Keras model. An exported model runs by the inference specification in
the JSON file that `export` wrote beside it (colour mode, intensity, scale, class
names and colours): it stands in for the run's `config.json`.
"""

import json
import os

from keras_unet_seg.commands import _config, _models
from keras_unet_seg.commands._errors import CommandError, one_line

RUNTIMES = ("auto", "keras", "onnx", "litert", "saved_model", "openvino")
_SUFFIXES = {".keras": "keras", ".onnx": "onnx", ".tflite": "litert", ".xml": "openvino"}
_NAMES = {
    "onnx": "ONNX Runtime",
    "litert": "the LiteRT interpreter",
    "saved_model": "TensorFlow (SavedModel)",
    "openvino": "OpenVINO",
}


def runtime(path, requested="auto"):
    """The runtime of `--model` (`--runtime`, else by its suffix); checks a `.keras` file."""
    if requested == "auto":
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            requested = "saved_model"
        else:
            requested = _SUFFIXES.get(os.path.splitext(path)[1].lower(), "keras")
    if requested == "keras":
        _models.check_model_file(path)
    elif not os.path.exists(path):
        raise CommandError(f"model file '{path}' does not exist.")
    return requested


def load(path, runtime):
    """`(model, run config)` of `--model`: a Keras model and its run's `config.json`, or
    an exported model in `runtime` and its export's JSON file as the run config."""
    if runtime == "keras":
        return _models.load_model(path), _config.saved_run_config(path)
    from keras_unet_seg.export import load_exported

    sidecar = path.rstrip("/") + ".json"
    try:
        with open(sidecar, encoding="utf-8") as file:
            written = json.load(file)
    except (OSError, ValueError) as error:
        raise CommandError(
            f"model file '{path}' has no readable '{os.path.basename(sidecar)}' beside it "
            f"({one_line(error)}): it holds how the model reads images, and "
            "`keras-unet-seg export` writes it."
        ) from None
    try:
        model = load_exported(path, runtime)
    except ImportError as error:
        raise CommandError(one_line(error)) from None
    except Exception as error:  # the runtimes raise their own types for bad files
        raise CommandError(
            f"model file '{path}' cannot be loaded by {_NAMES[runtime]}: "
            f"{type(error).__name__}: {one_line(error)}"
        ) from None
    return model, (sidecar, _run_config(written))


def _run_config(written):
    """The run-config options (`InferenceSpec.from_run_config`) of an export's JSON; for
    a volume model, its tile as `image_size` (the run's training patch: `predict`'s
    default tile, as the run's `config.json` gives it)."""
    inference = written["inference"]
    volume_tile = {"image_size": inference["tile_size"]} if len(inference["tile_size"]) == 3 else {}
    return {
        **volume_tile,
        "color_mode": inference["color_mode"],
        "input_channels": inference["channels"],
        "intensity": inference["intensity"],
        "training_scale": inference["scale"],
        "class_names": [entry["name"] for entry in written["classes"]],
        "mask_palette": [entry["color"] for entry in written["classes"]],
    }


def inference_model(model, runtime, args, verbose=1):
    """The model as the command runs it: a Keras model by `_models.inference_model`
    (`--precision`, `--no-fold`, `--jit-compile`), an exported model as it is."""
    if runtime == "keras":
        return _models.inference_model(
            model, args.precision, fold=args.fold, jit_compile=args.jit_compile, verbose=verbose
        )
    if args.precision != "auto":
        raise CommandError(
            f"--precision {args.precision} applies to Keras models; an exported model "
            "computes as it was exported: use --precision auto."
        )
    if verbose:
        print(f"Predicting with {_NAMES[runtime]} ({os.path.basename(args.model)}).")
    return model


def fitted_tiles(model, spec):
    """`spec` with the tile size of an exported model of fixed input size (an export's
    `--image-size`), which takes no other."""
    import dataclasses

    from keras_unet_seg.export.runtimes import ExportedModel

    if not isinstance(model, ExportedModel) or None in model.input_shape[1:-1]:
        return spec
    return dataclasses.replace(spec, tile_size=model.input_shape[1:-1])
