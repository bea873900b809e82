"""Score a trained model on a folder of images and masks: Dice, IoU, precision, recall.

Pairs are read with `SegmentationDataset.from_directory` (so with the checks, and
the color mode and intensity normalization of training, from the run's `config.json`
beside the model) at their own size, unless `--image-size` resizes them as
training did, and predicted tile by tile with `predict_tiled`. Scores are given for
each image and overall; the overall scores come from the confusion counts pooled over
every pixel of every image (not a mean of the per-image scores). They are printed as
a table and written as JSON with `--json`. A second table gives each class its
pooled Dice, IoU, precision and recall and its mean boundary scores (HD95, average
symmetric surface distance and normalized surface Dice at `--tolerance`, in units of
`--spacing`; `keras_unet_seg.evaluation.evaluate_directory`). `--report DIR` writes
`report.html` (one self-contained page: summary, confusion matrix, Dice histogram,
every image with its thumbnails, sortable, worst first), `per_image.csv` and
`summary.json`. Neither is written inside --data, and an existing file is replaced
only with --overwrite and only if an earlier evaluate wrote it
(`keras_unet_seg._outputs`). A model built on volumes scores pairs of volume files
(NIfTI, TIFF stacks: the folders of `SegmentationDataset.from_volumes`), each whole by
sliding window, at its file's voxel spacing unless --spacing gives one; the report's
thumbnails are the middle slices.
"""

import os

from keras_unet_seg import _atomic, _outputs, _types
from keras_unet_seg._errors import UserError
from keras_unet_seg.commands import _config, _exported, _parser, predict
from keras_unet_seg.commands._errors import require_folder, user_errors
from keras_unet_seg.commands._report_output import (
    named_report,
    print_class_table,
    print_table,
    write_report,
)
from keras_unet_seg.inference._files import is_volume_model

NAME = "evaluate"


def add_arguments(parser):
    predict.add_model_arguments(parser)
    parser.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="dataset root holding <subset>/images and <subset>/masks, or images/ and masks/ "
        "(volume files for a 3D model)",
    )
    parser.add_argument(
        "--subset",
        default=None,
        help="subfolder to score (default: val, or none when DIR holds images/ itself)",
    )
    parser.add_argument(
        "--json",
        "--out",
        dest="json",
        metavar="FILE",
        help="JSON file to write the scores to",
    )
    parser.add_argument(
        "--report",
        metavar="DIR",
        help="folder to write report.html, per_image.csv and summary.json into",
    )
    _parser.add_overwrite_argument(parser, "the files of an earlier evaluate (--json, --report)")
    parser.add_argument(
        "--spacing",
        type=_types.spacing,
        default=None,
        metavar="S|SHxSW|SZxSYxSX",
        help="pixel size along height and width (volumes: depth, height and width), the "
        "unit of HD95 and ASSD (default: 1; volumes: each file's voxel spacing)",
    )
    parser.add_argument(
        "--tolerance",
        type=_types.positive_float,
        default=1.0,
        help="boundary distance within which truth and prediction agree (normalized "
        "surface Dice), in units of --spacing",
    )
    parser.add_argument(
        "--image-size",
        type=_types.image_size,
        default=None,
        metavar="N|HxW",
        help="resize pairs to this size first, as training did (default: their own size)",
    )
    predict.add_inference_arguments(parser)
    return parser


def run(args):
    require_folder(args.data, "data folder")
    with user_errors(UserError, FileExistsError):  # where the files go, before the model
        for option, out, root, targets in _outputs_of(args):
            _outputs.check_outside_inputs(targets, [args.data, args.model], out, option)
            _outputs.check_writable(targets, args.overwrite, root, out, option, "--overwrite")
    runtime = _exported.runtime(args.model, args.runtime)
    model, run_config = _exported.load(args.model, runtime)
    predict.check_tile_size(args, model, run_config)
    report = evaluate(model, args, run_config=run_config, runtime=runtime)
    print_table(report)
    print_class_table(report)
    if args.report:
        spacing = args.spacing or (None if is_volume_model(model) else (1.0, 1.0))
        with _outputs.recording(args.report):
            paths = write_report(args.report, report, spacing=spacing, tolerance=args.tolerance)
        print(f"Report written to '{paths['html']}'.")
    if args.json:
        kept = ("predictions", "confusion")
        with _outputs.recording(_folder(args.json)):
            _atomic.write_json(args.json, {k: v for k, v in report.items() if k not in kept})
        print(f"Scores written to '{args.json}'.")
    return 0


def _outputs_of(args):
    """`(option, value, folder, paths written)` of the options that write files."""
    from keras_unet_seg.report import report_files

    found = []
    if args.report:
        found.append(
            ("--report", args.report, args.report, list(report_files(args.report).values()))
        )
    if args.json:
        found.append(("--json", args.json, _folder(args.json), [args.json]))
    return found


def _folder(path):
    return os.path.dirname(os.path.abspath(path))


def evaluate(model, args, verbose=1, run_config=None, runtime="keras"):
    """`evaluate_directory` of the options: the report the command prints and writes.

    The run's `config.json` beside `--model` (read once; `run_config`: an export's
    JSON file in its place) gives how to read the images, and for a run trained on
    this flat folder, its validation split. With `--report`, the report keeps each
    image's arrays at thumbnail size (`predictions`).
    """
    from keras_unet_seg.evaluation import evaluate_directory
    from keras_unet_seg.report import THUMBNAIL_SIZE

    run_config = run_config or _config.saved_run_config(args.model)
    split = _validation_split(args, run_config[1], verbose)
    # Pairs resized as training did are predicted at that size.
    scale = "native" if args.image_size is not None else args.scale
    reading = predict.reading(args, model, run_config, scale, verbose)
    spec = reading.spec
    model = _exported.inference_model(model, runtime, args, verbose)
    with user_errors(UserError):  # the library names the folder or file at fault
        report = evaluate_directory(
            model,
            args.data,
            subset=_subset(args.subset, split),
            image_size=args.image_size,
            **split,
            mask_threshold=run_config[1].get("mask_threshold"),
            spec=spec,
            batch_size=args.batch_size,
            spacing=args.spacing,
            tolerance=args.tolerance,
            return_predictions=bool(args.report),
            thumbnail_size=THUMBNAIL_SIZE,  # the report keeps thumbnails only
            verbose=verbose,
        )
    return named_report(args.model, report, reading.class_names)


def _subset(subset, split):
    if split or subset is None:
        return "auto"
    return None if subset.lower() == "none" else subset


def _validation_split(args, saved, verbose):
    """The run's `validation_split` and `seed` when it trained on this flat folder."""
    flat = os.path.isdir(os.path.join(args.data, "images"))
    same_data = saved.get("data") and os.path.abspath(saved["data"]) == os.path.abspath(args.data)
    if args.subset is not None or not flat or not (saved.get("validation_split") and same_data):
        return {}
    split = {"validation_split": saved["validation_split"], "seed": saved.get("seed", 0)}
    if verbose:
        print(
            f"Scoring the run's validation pairs: --validation-split {split['validation_split']} "
            f"--seed {split['seed']} of the flat folder, from the run's config.json."
        )
    return split
