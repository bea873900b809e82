"""Export a trained model to ONNX, LiteRT, SavedModel or OpenVINO, checked in its runtime.

The model is folded (batch normalization into the convolutions, unless --no-fold)
and written by Keras' own exporter with any height and width (or --image-size).
The written file is then run with its runtime (ONNX Runtime, the LiteRT
interpreter, TensorFlow, OpenVINO) on sample images (--images, read as predict
reads them; else random images of 64x64 and 100x75) the way `predict` runs them
(the run's training scale, tiles, threshold), and so is the model as `predict`
runs it (folded, at its default precision); the largest difference and the mask
pixels that differ are printed, and the command fails if a mask differs beyond
what a lower precision explains. Beside it, PATH.json records the run's inference
specification (input normalization and scale from the run's config.json,
tiling, flip test-time augmentation, threshold), the steps that reproduce
`predict` with it, the output, class names and colours: what a program in another
language needs. The export is written under a temporary name and renamed once
checked, so a failed export leaves the old files as they were. An existing --out
is replaced only with --overwrite and only if an earlier export wrote it
(`keras_unet_seg._outputs`); --out is never an input (--model, --images,
--calibration, --validation).

A model built on volumes (a 3D U-Net) exports to onnx, saved_model or openvino
(LiteRT cannot run its 3D pooling; int8 is for images) with any depth, height and
width (or --image-size DxHxW), checked on volume files (--images: .nii, .nii.gz,
.tif stacks; else random volumes of 16x24x20 and 13x30x17) by sliding-window
inference over the run's training patches, as `predict` runs them; `predict
--model model.onnx` then reads NIfTI files and writes masks with their header.

--quantize int8 (onnx, litert) writes a statically quantized model, calibrated on up
to --num-calibration images of --calibration read as predict reads them, then scores
it and the float32 model as evaluate does on validation pairs (--validation, or
--calibration's val subset or held-out quarter): the Dice of each and the mask
pixels that differ are printed and recorded in PATH.json, and a Dice drop beyond
--max-dice-drop fails the command with nothing written (--keep-float leaves the first
convolution or the head in float32).
"""

import argparse
import dataclasses
import os

from keras_unet_seg import _outputs, _types
from keras_unet_seg.commands import _config, _models, _parser, _reading, predict
from keras_unet_seg.commands._errors import UsageError, user_errors

NAME = "export"


def add_arguments(parser):
    from keras_unet_seg.export import EXPORT_FORMATS

    parser.add_argument(
        "--model", required=True, metavar="FILE", help=".keras model, such as RUN/best.keras"
    )
    parser.add_argument(
        "--format", required=True, choices=EXPORT_FORMATS, help="the format to write"
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="file to write (model.onnx, model.tflite, model.xml) or SavedModel folder",
    )
    _parser.add_overwrite_argument(parser, "the files of an earlier export at --out")
    parser.add_argument(
        "--no-fold",
        dest="fold",
        action="store_false",
        help="keep batch normalization as separate layers (to compare)",
    )
    parser.add_argument(
        "--precision",
        choices=("float32", "float16"),
        default="float32",
        help="weights of the export; float16 for litert only",
    )
    parser.add_argument(
        "--image-size",
        type=_types.tile_size,
        default=None,
        metavar="N|HxW|DxHxW",
        help="fix the input size in the exported graph (default: any height and width; "
        "DxHxW or N, a cube, for a model built on volumes)",
    )
    parser.add_argument(
        "--threshold",
        type=_types.probability,
        default=0.5,
        help="probability at or above which a pixel is foreground, recorded in PATH.json",
    )
    parser.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="record flip test-time augmentation in PATH.json, as predict's --tta (four "
        "passes of the model a tile; --no-tta: one)",
    )
    parser.add_argument(
        "--images",
        nargs="+",
        default=None,
        metavar="IMAGE",
        help="image files or folders to check the export on (volume files for a model "
        "built on volumes; default: random images)",
    )
    _parser.add_reading_arguments(parser)
    add_quantization_arguments(parser)
    return parser


def add_quantization_arguments(parser):
    from keras_unet_seg.export._quantizing import KEEP_FLOAT, QUANTIZATIONS

    group = parser.add_argument_group("int8 quantization (onnx, litert)")
    group.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        default=None,
        help="static quantization, calibrated on --calibration's images read as predict "
        "reads them, then checked on validation images against the float32 model",
    )
    group.add_argument(
        "--calibration",
        metavar="DIR",
        help="images to calibrate on: split folders (train calibrates, val checks), a flat "
        "images/ and masks/ folder (75%% calibrate, the rest check), or a folder of images",
    )
    group.add_argument(
        "--validation",
        metavar="DIR",
        help="images and masks to check the quantized model on, as evaluate --data takes "
        "(default: --calibration's held-out pairs)",
    )
    group.add_argument(
        "--num-calibration",
        type=_types.positive_int,
        default=32,
        metavar="N",
        help="the most calibration images, spread over the sorted files",
    )
    group.add_argument(
        "--max-dice-drop",
        type=float,
        default=0.005,
        metavar="DROP",
        help="fail, writing nothing, if the validation Dice drops by more than this (in "
        "[-1, 1]; -1 refuses every model)",
    )
    group.add_argument(
        "--keep-float",
        nargs="+",
        choices=KEEP_FLOAT,
        default=None,
        help="layers to leave in float32 (head: the last convolution and its activation)",
    )
    return group


def run(args):
    from keras_unet_seg import export
    from keras_unet_seg._model_facts import input_channels
    from keras_unet_seg.export.exporting import written_files
    from keras_unet_seg.inference._files import is_volume_model, named_volumes, read_input

    _models.check_model_file(args.model)
    _check_quantization_options(args)
    # Every image, and where the export goes, before the model.
    volumes = bool(args.images) and named_volumes(args.images)
    with user_errors(ValueError, FileNotFoundError, FileExistsError):
        files = _check_files(args, volumes)
        targets = written_files(args.out, args.format)
        folders = [folder for folder in (args.calibration, args.validation) if folder]
        inputs = [args.model, *(args.images or []), *folders]
        _outputs.check_outside_inputs(targets, inputs, args.out, option="--out")
        folder = os.path.dirname(os.path.abspath(args.out))
        _outputs.check_writable(targets, args.overwrite, folder, args.out, "--out", "--overwrite")
    model = _models.load_model(args.model)
    if is_volume_model(model) != volumes:  # TIFF stacks for a 3D model, or NIfTI for 2D
        volumes = not volumes
        with user_errors(ValueError, FileNotFoundError):
            files = _check_files(args, volumes)
    if volumes and args.quantize:
        raise UsageError(
            "export: --quantize int8 is for models built on images; a model built on "
            "volumes exports in float32 (int8 calibration reads images)."
        )
    run_config = _config.saved_run_config(args.model)
    reading = _reading.image_reading(
        model,
        run_config,
        color_mode=args.color_mode,
        intensity=args.intensity,
        scale="auto",
    )
    spec = dataclasses.replace(
        reading.spec,
        threshold=args.threshold,
        tta=args.tta,
        tile_size=predict.default_tile_size(model, run_config),
    )
    with user_errors(ImportError, ValueError, FileExistsError):
        check_images = [read_input(path, spec, volumes)[0][None] for path, _ in files]
        _check_channels(check_images, files, input_channels(model))
        export.export_model(
            model,
            args.out,
            args.format,
            fold=args.fold,
            precision=args.precision,
            image_size=_image_size(args, volumes),
            spec=spec,
            class_names=reading.class_names,
            class_colors=reading.palette,
            check_images=check_images or None,
            overwrite=args.overwrite,
            **_quantization(args),
        )
    return 0


def _check_channels(images, files, channels):
    """Refuses an `--images` file read with other channels than the model takes."""
    for image, (path, _) in zip(images, files, strict=True):
        if image.shape[-1] != channels:
            raise UsageError(
                f"export: --images '{path}' has {image.shape[-1]} channels; the model takes "
                f"{channels}."
            )


def _check_files(args, volumes):
    """`[(path, name)]` of `--images` (volume files with `volumes`), checked."""
    from keras_unet_seg.inference._files import list_inputs

    return list_inputs(args.images, volumes=volumes) if args.images else []


def _image_size(args, volumes):
    """`--image-size` for a model built on volumes (`volumes`: N or DxHxW) or on images."""
    size = args.image_size
    if size is None:
        return None
    if volumes and len(size) == 2 and size[0] == size[1]:
        return (size[0],) * 3  # N: a cube, as predict's --tile-size takes it
    if len(size) != (3 if volumes else 2):
        sides = "x".join(map(str, size))
        kind = "built on volumes: give DxHxW or N" if volumes else "2D: give HxW or N"
        raise UsageError(
            f"export: --image-size {sides} has {len(size)} sides; the model is {kind}."
        )
    return size


def _quantization(args):
    """`export_model`'s `quantize` argument of the options."""
    if args.quantize is None:
        return {}
    return {
        "quantize": {
            "method": args.quantize,
            "calibration": args.calibration,
            "validation": args.validation,
            "num_calibration": args.num_calibration,
            "max_dice_drop": args.max_dice_drop,
            "keep_float": tuple(args.keep_float or ()),
        }
    }


def _check_quantization_options(args):
    """Refuses --quantize without --calibration, and quantization options without it."""
    if args.quantize and not args.calibration:
        raise UsageError(
            "export: --quantize int8 needs --calibration DIR (images to calibrate on)."
        )
    given = [
        option
        for option, value in (
            ("--calibration", args.calibration),
            ("--validation", args.validation),
            ("--keep-float", args.keep_float),
        )
        if value
    ]
    if given and not args.quantize:
        raise UsageError(f"export: {', '.join(given)} apply with --quantize int8 only.")
