"""What `evaluate` and `demo` print and write of an evaluation report."""

import os
import sys

import numpy as np

from keras_unet_seg import _atomic
from keras_unet_seg.commands._errors import PROG

METRICS = ("dice", "iou", "precision", "recall")
TRUE_COLOR = (0, 255, 0)
PREDICTED_COLOR = (255, 0, 0)
# Below it, the demo warns that its training fell short.
TARGET_DICE = 0.9


# The report's keys before `class_names`, in the order of the JSON file.
_FIRST_KEYS = ("data", "subset", "threshold", "num_images", "overall", "classes")


def named_report(model_path, report, class_names):
    """`evaluate_directory`'s report with the model's path and the run's class names."""
    first = {key: report.pop(key) for key in _FIRST_KEYS}
    return {"model": model_path, **first, "class_names": class_names, **report}


def records(report):
    """The HTML report's records: each image's name, arrays and scores."""
    return [
        {
            "name": _display_name(row["image"], report["data"], report["subset"]),
            "image": prediction["image"],
            "truth": prediction["y_true"],
            "prediction": prediction["y_pred"],
            "scores": row["classes"],
        }
        for row, prediction in zip(report["per_image"], report["predictions"], strict=True)
    ]


def print_class_table(report):
    """Prints each class's pooled overlap scores and mean boundary scores."""
    from keras_unet_seg.evaluation import METRICS as CLASS_METRICS

    header = f"{'class':<10}  " + "  ".join(f"{m:>9}" for m in CLASS_METRICS)
    print()
    print(header)
    print("-" * len(header))
    for class_id, row in report["classes"].items():
        print(f"{class_id:<10}  " + "  ".join(f"{row[m]:>9.4f}" for m in CLASS_METRICS))
    print(
        "(Dice, IoU, precision, recall pooled; HD95 and ASSD in units of --spacing and NSD "
        "at --tolerance, means over the images where both truth and prediction hold the "
        "class.)"
    )


def write_report(directory, report, spacing=None, tolerance=1.0):
    """Writes the HTML report, the CSV and the JSON summary of `report` into `directory`
    (`spacing`: the option; `None`, 1 for images, each file's own for volumes)."""
    from keras_unet_seg.report import write_report as write

    details = {
        "model": report["model"],
        "data": report["data"],
        "subset": report["subset"],
        "threshold": report["threshold"],
        "spacing": "each file's" if spacing is None else "x".join(f"{v:g}" for v in spacing),
        "tolerance": tolerance,
    }
    names = report.get("class_names")
    return write(
        directory,
        records(report),
        report["classes"],
        report["confusion"],
        class_names=names if names and len(names) == len(report["confusion"]) else None,
        title=f"Evaluation of {os.path.basename(report['model'])}",
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


def write_metrics(path, report, trained, epochs, seconds):
    _atomic.write_json(
        path,
        {
            "model": report["model"],
            "validation": report["overall"],
            "num_validation_images": report["num_images"],
            "threshold": report["threshold"],
            "best_epoch": None if trained.best_epoch is None else trained.best_epoch + 1,
            "epochs": epochs,
            "seconds": round(seconds["seconds"], 1),
            "training_seconds": round(seconds["training_seconds"], 1),
            "classes": report["classes"],
            "per_image": report["per_image"],
        },
    )


def write_overlays(out, names, predictions):
    """Each validation image with the true outline (green) and the predicted one (red)."""
    from keras_unet_seg import viz

    outlined = [
        viz.overlay_mask(p["image"], p["mask"] > 0, color=TRUE_COLOR, alpha=1.0, mode="contour")
        for p in predictions
    ]
    return viz.save_overlays(
        outlined,
        [p["probabilities"] for p in predictions],
        os.path.join(out, "overlays"),
        names=names,
        color=PREDICTED_COLOR,
        alpha=1.0,
        mode="contour",
    )


def write_grid(out, predictions, count=4):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    from keras_unet_seg import viz

    chosen = predictions[:count]
    figure = viz.plot_predictions(
        [p["image"] for p in chosen],
        [p["mask"] for p in chosen],
        [p["probabilities"] for p in chosen],
        mode="contour",
        alpha=1.0,
    )
    path = os.path.join(out, "predictions.png")
    _atomic.save_figure(path, figure)
    return path


def print_summary(overall, written, seconds):
    print(
        f"\nDemo finished in {seconds:.0f} s. Validation: Dice {overall['dice']:.3f}, "
        f"IoU {overall['iou']:.3f}, precision {overall['precision']:.3f}, "
        f"recall {overall['recall']:.3f}."
    )
    for label, path in written.items():
        print(f"  {label:<13} {path}")
    if overall["dice"] < TARGET_DICE:
        print(
            f"{PROG}: warning: validation Dice {overall['dice']:.3f} is below "
            f"{TARGET_DICE}; try more --epochs.",
            file=sys.stderr,
        )
