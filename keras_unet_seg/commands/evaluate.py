"""Score a trained model on a folder of images and masks: Dice, IoU, precision, recall.

Pairs are read with `SegmentationDataset.from_directory` (so with the checks and the
normalisation of training) at their own size, unless `--image-size` resizes them as
training did, and predicted tile by tile with `predict_tiled`. Scores are given for
each image and overall; the overall scores come from the confusion counts pooled over
every pixel of every image (not a mean of the per-image scores). They are printed as
a table and written as JSON with `--json`.
"""

import os

import numpy as np

from keras_unet_seg import _io
from keras_unet_seg.commands import _common, predict
from keras_unet_seg.commands._common import CommandError

NAME = "evaluate"

METRICS = ("dice", "iou", "precision", "recall")


def add_arguments(parser):
    parser.add_argument(
        "--model", required=True, metavar="FILE", help=".keras model, such as RUN/model.keras"
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="dataset root holding <subset>/images and <subset>/masks, or images/ and masks/",
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
        "--image-size",
        type=_common.image_size,
        default=None,
        metavar="N|HxW",
        help="resize pairs to this size first, as training did (default: their own size)",
    )
    predict.add_inference_arguments(parser)
    return parser


def run(args):
    _common.require_folder(args.data, "data folder")
    model = _common.load_model(args.model)
    report = evaluate(model, args)
    report = {"model": args.model, **report}
    print_table(report)
    if args.json:
        _io.write_json(args.json, report)
        print(f"Scores written to '{args.json}'.")
    return 0


def _subset(data, subset):
    if subset is None:
        return None if os.path.isdir(os.path.join(data, "images")) else "val"
    return None if subset.lower() == "none" else subset


def num_classes_of(model):
    """The number of output channels of a model."""
    num_classes = getattr(model, "num_classes", None)
    if isinstance(num_classes, int):
        return num_classes
    channels = _common.input_channels(model) or 3
    return int(model.compute_output_shape((1, 32, 32, channels))[-1])


def evaluate(model, args, verbose=1, keep_predictions=False):
    """Scores `model` on `args.data`; returns the report (and predictions if asked).

    Returns:
        A dict: `data`, `subset`, `threshold`, `num_images`, `overall` (scores from
        pooled counts) and `per_image` (a list of dicts with the image and mask paths
        and their scores). With `keep_predictions=True`, also `predictions`: a list of
        `(image, mask, probabilities)` arrays.
    """
    import keras

    from keras_unet_seg.data import SegmentationDataset

    model = predict.inference_model(model, args, verbose=verbose)
    subset = _subset(args.data, args.subset)
    num_classes = num_classes_of(model)
    color_mode = args.color_mode or _common.color_mode_for(_common.input_channels(model))
    _common.check_data_files(os.path.join(args.data, subset or ""), "evaluation")
    try:
        dataset = SegmentationDataset.from_directory(
            args.data,
            subset=subset,
            image_size=None if args.image_size is None else tuple(args.image_size),
            batch_size=None,
            color_mode=color_mode,
            num_classes=num_classes,
            shuffle=False,
        )
    except ValueError as error:  # the data module names the folder or file at fault
        raise CommandError(str(error)) from None

    def make_metrics():
        return {
            name: _common.get_metric(
                name, "evaluate", num_classes=num_classes, threshold=args.threshold
            )
            for name in METRICS
        }

    pooled, single = make_metrics(), make_metrics()
    per_image, predictions = [], []
    progress = keras.utils.Progbar(len(dataset.image_paths), unit_name="image", verbose=verbose)
    pairs = zip(dataset.image_paths, dataset.mask_paths, dataset.as_numpy_iterator(), strict=True)
    for index, (image_path, mask_path, (image, mask)) in enumerate(pairs):
        probabilities = predict.predict_image(model, image, args)
        scores = {}
        for name in METRICS:
            single[name].reset_state()
            single[name].update_state(mask[None], probabilities[None])
            pooled[name].update_state(mask[None], probabilities[None])
            scores[name] = float(single[name].result())
        per_image.append({"image": image_path, "mask": mask_path, **scores})
        if keep_predictions:
            predictions.append((image, mask, probabilities))
        progress.update(index + 1)
    report = {
        "data": args.data,
        "subset": subset,
        "threshold": args.threshold,
        "num_images": len(per_image),
        "overall": {name: float(pooled[name].result()) for name in METRICS},
        "per_image": per_image,
    }
    if keep_predictions:
        report["predictions"] = predictions
    return report


def print_table(report):
    """Prints the per-image and overall scores as a table."""
    names = [_display_name(row["image"], report) for row in report["per_image"]]
    width = max([len("overall (pooled)"), *(len(n) for n in names)])
    header = f"{'image':<{width}}  " + "  ".join(f"{m:>9}" for m in METRICS)
    print(header)
    print("-" * len(header))
    for name, row in zip(names, report["per_image"], strict=True):
        print(f"{name:<{width}}  " + "  ".join(f"{row[m]:>9.4f}" for m in METRICS))
    print("-" * len(header))
    overall = report["overall"]
    print(f"{'overall (pooled)':<{width}}  " + "  ".join(f"{overall[m]:>9.4f}" for m in METRICS))
    if report["per_image"]:
        means = {m: float(np.mean([row[m] for row in report["per_image"]])) for m in METRICS}
        print(f"{'mean of images':<{width}}  " + "  ".join(f"{means[m]:>9.4f}" for m in METRICS))


def _display_name(path, report):
    root = os.path.join(report["data"], report["subset"] or "", "images")
    relative = os.path.relpath(path, root)
    return path if relative.startswith("..") else relative
