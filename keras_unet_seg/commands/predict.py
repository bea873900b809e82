"""Segment image files of any size with a trained model (tiled inference).

Inputs are image files or folders (read recursively). Each image is read the way
`SegmentationDataset` read the training images (`read_image`: upright, with the
run's color mode and intensity normalization from the `config.json` beside the
model, or `--color-mode` and `--intensity`), predicted tile by tile with
`predict_tiled` at its own size, and written as `OUT/masks/<name>.png` (binary:
0/255; several classes: class ids) and `OUT/overlays/<name>.png`. Files of a folder
keep their relative path (`keras_unet_seg.inference.predict_directory`). --out is
never inside an input folder, and an existing file there is replaced only with
--overwrite and only if an earlier predict wrote it (`keras_unet_seg._outputs`).
--model may also be an export of `keras-unet-seg export` (model.onnx, model.tflite,
model.xml, a SavedModel folder), run in its runtime by the JSON file beside it.
"""

import argparse
import dataclasses

from keras_unet_seg import _types
from keras_unet_seg._errors import UserError
from keras_unet_seg.commands import _exported, _parser, _reading
from keras_unet_seg.commands._errors import UsageError, user_errors
from keras_unet_seg.inference import InferenceSpec, minimum_tile_size, predict_directory
from keras_unet_seg.inference._files import (
    OVERLAY_MODES,
    Writing,
    check_outputs,
    is_volume_model,
    list_inputs,
    named_volumes,
)
from keras_unet_seg.inference._spec import volume_patch

NAME = "predict"
# --tile-size of a volume model, a cube: large enough for context, small enough for memory.
VOLUME_TILE = 128


def add_arguments(parser):
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files or folders; for a 3D model volume files (.nii, .nii.gz, .tif "
        "stacks) or folders",
    )
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write to")
    _parser.add_overwrite_argument(parser, "the masks and overlays of an earlier predict")
    add_inference_arguments(parser)
    parser.add_argument(
        "--overlay-mode",
        choices=OVERLAY_MODES,
        default=Writing.overlay_mode,
        help="outline the predicted regions, or fill them",
    )
    return parser


def add_model_arguments(parser):
    """`--model` and `--runtime`, shared by `predict` and `evaluate`."""
    parser.add_argument(
        "--model",
        required=True,
        metavar="FILE",
        help=".keras model, such as RUN/best.keras, or an export of `keras-unet-seg export` "
        "(model.onnx, model.tflite, model.xml, a SavedModel folder) with its JSON file",
    )
    parser.add_argument(
        "--runtime",
        choices=_exported.RUNTIMES,
        default="auto",
        help="what runs --model (auto: by its suffix; .keras: Keras)",
    )


def add_inference_arguments(parser):
    """The options of tiled inference, shared by `predict` and `evaluate`; their defaults
    are `InferenceSpec`'s."""
    spec = InferenceSpec()
    group = parser.add_argument_group("inference")
    group.add_argument(
        "--tile-size",
        type=_types.tile_size,
        default=None,
        metavar="N|HxW|DxHxW",
        help=f"size of the tiles given to the model (default: {spec.tile_size[0]} for "
        "images; for volumes, the patches of sliding-window inference, the run's training "
        f"patch size, else {VOLUME_TILE})",
    )
    group.add_argument(
        "--overlap",
        type=_types.fraction,
        default=spec.overlap,
        help="fraction shared by neighbour tiles",
    )
    group.add_argument(
        "--batch-size", type=_types.positive_int, default=4, help="tiles per model call"
    )
    group.add_argument(
        "--threshold",
        type=_types.probability,
        default=spec.threshold,
        help="probability at or above which a pixel is foreground (one class)",
    )
    group.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=bool(spec.tta),
        help="flip test-time augmentation: average the predictions of the image and of "
        "its horizontal, vertical and double flips (four model passes; --no-tta: one)",
    )
    group.add_argument(
        "--scale",
        type=_types.scale_choice,
        default="auto",
        metavar="auto|native|F|FHxFW",
        help="resize images by this factor before the model (predictions are resized "
        "back); auto: the run's training scale, from --image-size and the training images' "
        "size on disk (config.json beside --model), native: the files' own size",
    )
    _parser.add_reading_arguments(group)
    _parser.add_speed_arguments(group, training=False)
    group.add_argument(
        "--no-fold",
        dest="fold",
        action="store_false",
        help="keep batch normalization as separate layers (by default it is folded into "
        "the convolutions: faster, and the same masks in float32)",
    )
    return group


def reading(args, model, run_config, scale, verbose=1):
    """The `Reading` of images for `model` under the options (`scale`: the option, or
    `"native"`); `run_config`: the `(path, options)` of the run's `config.json`. Its
    spec holds the inference options too (threshold, tiling, precision)."""
    how = _reading.image_reading(
        model,
        run_config,
        color_mode=args.color_mode,
        intensity=args.intensity,
        scale=scale,
        verbose=verbose,
    )
    spec = dataclasses.replace(
        how.spec,
        threshold=args.threshold,
        tile_size=tile_size(args, model, run_config),
        overlap=args.overlap,
        tta=args.tta,
        precision=args.precision,
    )
    return how._replace(spec=_exported.fitted_tiles(model, spec))


def tile_size(args, model, run_config=None):
    """`--tile-size`, or its default for `model`: for a volume model the patch size its
    run trained on (`run_config`: the `(path, options)` of its `config.json`)."""
    if args.tile_size is not None:
        return tuple(args.tile_size)
    return default_tile_size(model, run_config)


def default_tile_size(model, run_config=None):
    """The tile `predict` gives `model` without `--tile-size`: `InferenceSpec`'s for an
    image model; for a volume model the patch size its run trained on (`run_config`: the
    `(path, options)` of its `config.json`, or of an export's JSON file), else a cube of
    `VOLUME_TILE`."""
    if not is_volume_model(model):
        return InferenceSpec().tile_size
    return volume_patch((run_config or (None, {}))[1]) or (VOLUME_TILE,) * 3


def check_tile_size(args, model, run_config=None):
    """Refuses a `--tile-size` below the model's minimum tile (`2**depth`), or of three
    sides for an image model."""
    tile, minimum = tile_size(args, model, run_config), minimum_tile_size(model)
    sides = "x".join(map(str, tile))
    if len(tile) == 3 and not is_volume_model(model):
        raise UsageError(f"{args.command}: --tile-size {sides} has three sides; the model is 2D.")
    if min(tile) < minimum:
        raise UsageError(
            f"{args.command}: --tile-size {sides} is below the model's minimum "
            f"tile of {minimum}x{minimum} (2**depth): a smaller tile is padded up inside "
            f"the model, which changes the masks. Give --tile-size {minimum} or more."
        )


def run(args):
    runtime = _exported.runtime(args.model, args.runtime)
    # Every input, and where the files go, before the model.
    volumes = named_volumes(args.inputs)
    _check_files(args, volumes)
    model, run_config = _exported.load(args.model, runtime)
    if is_volume_model(model) != volumes:  # TIFF stacks for a 3D model, or NIfTI for 2D
        _check_files(args, not volumes)
    check_tile_size(args, model, run_config)
    how = reading(args, model, run_config, args.scale)
    spec = how.spec
    model = _exported.inference_model(model, runtime, args)
    with user_errors(UserError):  # the library names the file at fault
        predict_directory(
            model,
            args.inputs,
            args.out,
            spec=spec,
            batch_size=args.batch_size,
            overlay_mode=args.overlay_mode,
            class_colors=how.palette,
            class_names=how.class_names,
            overwrite=args.overwrite,
        )
    return 0


def _check_files(args, volumes):
    with user_errors(UserError, FileNotFoundError, FileExistsError):
        files = list_inputs(args.inputs, volumes=volumes)
        check_outputs(
            args.inputs, files, args.out, args.overwrite, "--out", "--overwrite", volumes=volumes
        )
