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
`--spacing`; `keras_unet_seg.evaluation`). `--report DIR` writes `report.html` (one
self-contained page: summary, confusion matrix, Dice histogram, every image with its
thumbnails, sortable, worst first), `per_image.csv` and `summary.json`.
"""

import os

import numpy as np

from keras_unet_seg import _atomic
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
        "--report",
        metavar="DIR",
        help="folder to write report.html, per_image.csv and summary.json into",
    )
    parser.add_argument(
        "--spacing",
        type=_common.positive_pair,
        default=(1.0, 1.0),
        metavar="S|SHxSW",
        help="pixel size along height and width, the unit of HD95 and ASSD",
    )
    parser.add_argument(
        "--tolerance",
        type=_common.positive_float,
        default=1.0,
        help="boundary distance within which truth and prediction agree (normalized "
        "surface Dice), in units of --spacing",
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
    print_class_table(report)
    if args.report:
        paths = write_report(args, report)
        print(f"Report written to '{paths['html']}'.")
    if args.json:
        kept = ("predictions", "records", "confusion")
        _atomic.write_json(args.json, {k: v for k, v in report.items() if k not in kept})
        print(f"Scores written to '{args.json}'.")
    return 0


def _validation_split(args, subset):
    """The run's `validation_split` and `seed` when it trained on this flat folder."""
    if subset is not None or args.subset is not None:
        return {}
    _, saved = _common.saved_run_config(args.model)
    same_data = saved.get("data") and os.path.abspath(saved["data"]) == os.path.abspath(args.data)
    if saved.get("validation_split") and same_data:
        return {"validation_split": saved["validation_split"], "seed": saved.get("seed", 0)}
    return {}


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
    from keras_unet_seg.evaluation import confusion_matrix, segmentation_scores, summarize

    model = predict.inference_model(model, args, verbose=verbose)
    subset = _subset(args.data, args.subset)
    split = _validation_split(args, subset)
    if split:
        subset = "validation"
        if verbose:
            fraction, seed = split["validation_split"], split["seed"]
            print(
                f"Scoring the run's validation pairs: --validation-split {fraction} --seed "
                f"{seed} of the flat folder, from the run's config.json."
            )
    num_classes = num_classes_of(model)
    if args.image_size is not None:
        args.scale = "native"  # the pairs are resized as training did
    reading = _common.image_reading(args, model, verbose=verbose)
    try:
        dataset = SegmentationDataset.from_directory(
            args.data,
            subset=subset,
            image_size=None if args.image_size is None else tuple(args.image_size),
            batch_size=None,
            **split,
            color_mode=reading.color_mode,
            intensity=reading.intensity,
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
    per_image, predictions, records = [], [], []
    confusion = np.zeros((max(num_classes, 2),) * 2, np.int64)
    progress = keras.utils.Progbar(len(dataset.image_paths), unit_name="image", verbose=verbose)
    pairs = zip(dataset.image_paths, dataset.mask_paths, dataset.as_numpy_iterator(), strict=True)
    for index, (image_path, mask_path, (image, mask)) in enumerate(pairs):
        probabilities = predict.predict_image(model, image, args, reading.scale)
        scores = {}
        for name in METRICS:
            single[name].reset_state()
            single[name].update_state(mask[None], probabilities[None])
            pooled[name].update_state(mask[None], probabilities[None])
            scores[name] = float(single[name].result())
        truth, predicted = _class_ids(mask, probabilities, args.threshold)
        by_class = segmentation_scores(
            truth, predicted, len(confusion), spacing=args.spacing, tolerance=args.tolerance
        )
        confusion += confusion_matrix(truth, predicted, len(confusion))
        per_image.append({"image": image_path, "mask": mask_path, **scores, "classes": by_class})
        if args.report:
            records.append(
                {
                    "name": _display_name(image_path, args.data, subset),
                    "image": predict.display_image(image),
                    "truth": truth,
                    "prediction": predicted,
                    "scores": by_class,
                }
            )
        if keep_predictions:
            predictions.append((image, mask, probabilities))
        progress.update(index + 1)
    report = {
        "data": args.data,
        "subset": subset,
        "threshold": args.threshold,
        "num_images": len(per_image),
        "overall": {name: float(pooled[name].result()) for name in METRICS},
        "classes": summarize([row["classes"] for row in per_image]),
        "class_names": reading.class_names,
        "per_image": per_image,
        "confusion": confusion,
        "records": records,
    }
    if keep_predictions:
        report["predictions"] = predictions
    return report


def _class_ids(mask, probabilities, threshold):
    """Truth and predicted class ids `(height, width)` (binary: 0/1)."""
    if probabilities.shape[-1] == 1:
        return mask[..., 0].astype(np.int64), (probabilities[..., 0] >= threshold).astype(np.int64)
    return mask[..., 0].astype(np.int64), np.argmax(probabilities, axis=-1)


def print_class_table(report):
    """Prints each class's pooled overlap scores and mean boundary scores."""
    from keras_unet_seg.evaluation import METRICS as CLASS_METRICS

    classes = report["classes"]
    header = f"{'class':<10}  " + "  ".join(f"{m:>9}" for m in CLASS_METRICS)
    print()
    print(header)
    print("-" * len(header))
    for class_id, row in classes.items():
        print(f"{class_id:<10}  " + "  ".join(f"{row[m]:>9.4f}" for m in CLASS_METRICS))
    print(
        "(Dice, IoU, precision, recall pooled; HD95 and ASSD in units of --spacing and NSD "
        "at --tolerance, means over the images where both truth and prediction hold the "
        "class.)"
    )


def write_report(args, report):
    """Writes the HTML report, the CSV and the JSON summary into `--report`."""
    from keras_unet_seg.report import write_report as write

    details = {
        "model": args.model,
        "data": args.data,
        "subset": report["subset"],
        "threshold": args.threshold,
        "spacing": "x".join(f"{v:g}" for v in args.spacing),
        "tolerance": args.tolerance,
    }
    names = report.get("class_names")
    return write(
        args.report,
        report["records"],
        report["classes"],
        report["confusion"],
        class_names=names if names and len(names) == len(report["confusion"]) else None,
        title=f"Evaluation of {os.path.basename(args.model)}",
        details=details,
    )


def print_table(report):
    """Prints the per-image and overall scores as a table."""
    names = [
        _display_name(row["image"], report["data"], report["subset"]) for row in report["per_image"]
    ]
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


def _display_name(path, data, subset):
    root = os.path.join(data, subset or "", "images")
    relative = os.path.relpath(path, root)
    return path if relative.startswith("..") else relative
