"""Run the whole pipeline on synthetic data: data, training, evaluation, overlays.

Writes a synthetic dataset of textured shapes (`make_synthetic_dataset`, binary or
with `--num-classes` classes) into `OUT/data`, trains a small UNet on it (a couple of
minutes on two CPU cores), scores the best checkpoint on the validation images, and
writes into `OUT`: `model.keras` (last epoch) and `best.keras`, `metrics.json`
(validation Dice, IoU, precision and recall, overall, per class and per image),
`report/report.html` (the evaluation report of `evaluate --report`),
`overlays/*.png` (each validation image with the true outline in green and the
predicted outline in red, or in its class colour), `predictions.png` (a grid of
images, masks, predictions and overlays), `curves.png`, `log.csv` and `config.json`
(the training options, reusable with `train --config`). A file there that an earlier
demo did not write is never replaced: the folder is refused before anything is
written (`keras_unet_seg._outputs`). With --volumes, the same on synthetic volumes
(`make_synthetic_volumes`: NIfTI ellipsoids at a spacing of 2x1x1) with a 3D UNet,
the overlays and thumbnails showing their middle slices.
"""

import os
import time

from keras_unet_seg import _outputs, _types
from keras_unet_seg._errors import UserError
from keras_unet_seg.commands import _config, _models, _reading, _report_output
from keras_unet_seg.commands._errors import CommandError, UsageError, user_errors
from keras_unet_seg.training import TrainingConfig, TrainingError, _run_folder, train_run

NAME = "demo"


def add_arguments(parser):
    parser.add_argument("--out", default="demo_out", metavar="DIR", help="folder to write to")
    parser.add_argument("--epochs", type=_types.positive_int, default=12, help="training epochs")
    parser.add_argument(
        "--seed", type=_types.non_negative_int, default=0, help="seeds the data and the training"
    )
    parser.add_argument(
        "--volumes",
        action="store_true",
        help="synthetic volumes (NIfTI) and a 3D UNet trained on them, whole volumes as patches",
    )
    parser.add_argument(
        "--image-size",
        type=_types.tile_size,
        default=None,
        metavar="N|HxW|DxHxW",
        help="size of the synthetic images (default 128x128) or volumes (default 24x32x32), "
        "each side at least 16",
    )
    parser.add_argument(
        "--num-train",
        type=_types.positive_int,
        default=None,
        help="training images (96; 8 volumes)",
    )
    parser.add_argument(
        "--num-val",
        type=_types.positive_int,
        default=None,
        help="validation images (16; 2 volumes)",
    )
    parser.add_argument(
        "--num-classes",
        type=_types.positive_int,
        default=1,
        help="classes of the synthetic masks, background included (1: binary)",
    )
    parser.add_argument(
        "--base-filters",
        type=_types.positive_int,
        default=8,
        help="filters of the UNet's first level",
    )
    parser.add_argument(
        "--batch-size",
        type=_types.positive_int,
        default=None,
        help="images per training step (8; 2 volumes)",
    )
    return parser


# The defaults of images and of volumes (--volumes): size, counts and batch size.
_DEFAULTS = {
    False: {"image_size": (128, 128), "num_train": 96, "num_val": 16, "batch_size": 8},
    True: {"image_size": (24, 32, 32), "num_train": 8, "num_val": 2, "batch_size": 2},
}


def _with_defaults(args):
    """`args` with the defaults of images or volumes filled in; a square size is a cube
    for volumes, and three sides mean volumes."""
    args.volumes = args.volumes or len(args.image_size or ()) == 3
    for name, value in _DEFAULTS[args.volumes].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    size = tuple(args.image_size)
    if args.volumes and len(size) == 2:
        if size[0] != size[1]:
            raise UsageError(f"demo: --image-size for --volumes is N or DxHxW, got {size}.")
        args.image_size = size[:1] * 3
    if args.volumes and args.num_classes > 1:
        raise UsageError("demo: --volumes makes binary masks; leave out --num-classes.")
    return args


def run(args):
    start = time.perf_counter()
    args = _with_defaults(args)
    out = args.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise CommandError(f"output folder '{out}' is a file, not a folder.")
    if min(args.image_size) < 16:
        raise UsageError(f"demo: --image-size must be at least 16, got {args.image_size}.")
    _check_outputs(out, args)
    with _outputs.recording(out):
        return _run(args, start)


def _check_outputs(out, args):
    """Refuses a file where the demo writes that an earlier demo did not write."""
    from keras_unet_seg.report import report_files

    name = "case_{:03d}.png" if args.volumes else "{:05d}.png"
    overlays = (os.path.join(out, "overlays", name.format(i)) for i in range(args.num_val))
    targets = [
        *(os.path.join(out, name) for name in ("metrics.json", "predictions.png")),
        *report_files(os.path.join(out, "report")).values(),
        *overlays,
    ]
    with user_errors(FileExistsError):
        _outputs.check_writable(targets, True, out, out, option="--out")
    with user_errors(TrainingError):
        _run_folder.check_own_files(out)


def _run(args, start):
    out = args.out
    with user_errors(UserError):  # data/ holding files an earlier demo did not write
        data_dir = _write_data(os.path.join(out, "data"), args)

    kind = "3D UNet" if args.volumes else "UNet"
    print(
        f"Training a {kind} (base_filters={args.base_filters}, depth=3) for {args.epochs} epochs."
    )
    # A demo folder is the demo's own (it holds data/): a previous demo's run files
    # are replaced.
    with user_errors(TrainingError):
        trained = train_run(_training_config(data_dir, args), out, overwrite=True)
    train_seconds = time.perf_counter() - start

    best_path = trained.written.get("best_model", trained.written["model"])
    report = _evaluate(best_path, data_dir, args)
    report_path = _report_output.write_report(os.path.join(out, "report"), report)["html"]
    predictions = report.pop("predictions")
    from keras_unet_seg.data import volume_stem

    names = [volume_stem(row["image"]) for row in report["per_image"]]  # .png or .nii.gz
    overlays = _report_output.write_overlays(out, names, predictions)
    grid = _report_output.write_grid(out, predictions)

    metrics_path = os.path.join(out, "metrics.json")
    seconds = {"seconds": time.perf_counter() - start, "training_seconds": train_seconds}
    _report_output.write_metrics(metrics_path, report, trained, args.epochs, seconds)
    written = {
        "model": trained.written["model"],
        "best model": best_path,
        "metrics": metrics_path,
        "report": report_path,
        "overlays": f"{os.path.dirname(overlays[0])}{os.sep} ({len(overlays)} PNGs)",
    }
    if grid:
        written["predictions"] = grid
    if "curves" in trained.written:
        written["curves"] = trained.written["curves"]
    written["training log"] = trained.written["log"]
    written["data"] = data_dir
    _report_output.print_summary(report["overall"], written, time.perf_counter() - start)
    return 0


def _write_data(data_dir, args):
    from keras_unet_seg.data import make_synthetic_dataset, make_synthetic_volumes

    if args.volumes:
        shape = "x".join(map(str, args.image_size))
        print(
            f"Writing {args.num_train} + {args.num_val} synthetic {shape} volumes to '{data_dir}'."
        )
        return make_synthetic_volumes(
            data_dir,
            num_train=args.num_train,
            num_val=args.num_val,
            shape=args.image_size,
            seed=args.seed,
            overwrite=True,
        )
    height, width = args.image_size
    print(
        f"Writing {args.num_train} + {args.num_val} synthetic {height}x{width} pairs "
        f"to '{data_dir}'."
    )
    return make_synthetic_dataset(
        data_dir,
        num_train=args.num_train,
        num_val=args.num_val,
        image_size=(height, width),
        seed=args.seed,
        num_classes=args.num_classes,
        overwrite=True,
    )


def _training_config(data_dir, args):
    return TrainingConfig(
        data=data_dir,
        image_size=tuple(args.image_size),
        batch_size=args.batch_size,
        base_filters=args.base_filters,
        depth=3,
        epochs=args.epochs,
        steps_per_epoch=0,  # one pass over its 96 images an epoch
        # 3x Adam's usual rate: on this data it halves the loss of 12 epochs (background
        # probabilities ~0.05 instead of ~0.2) and reaches a validation Dice of ~0.99.
        learning_rate=3e-3,
        seed=args.seed,
        num_classes=args.num_classes,
    )


def _evaluate(best_path, data_dir, args):
    """Scores the best model on the validation images, as `evaluate` does; prints it."""
    from keras_unet_seg.evaluation import evaluate_directory

    print(f"\nScoring '{best_path}' on the validation images.")
    model = _models.inference_model(_models.load_model(best_path))
    reading = _reading.image_reading(model, _config.saved_run_config(best_path), scale="auto")
    report = evaluate_directory(
        model,
        data_dir,
        subset="val",
        color_mode=reading.spec.color_mode,
        intensity=reading.spec.intensity,
        scale=reading.spec.scale,
        tile_size=tuple(args.image_size),
        tta=reading.spec.tta,  # as `evaluate` scores it
        return_predictions=True,
    )
    report = _report_output.named_report(best_path, report, reading.class_names)
    _report_output.print_table(report)
    _report_output.print_class_table(report)
    return report
