"""Segment image files of any size with a trained model (tiled inference).

Inputs are image files or folders (read recursively). Each image is read the way
`SegmentationDataset` read the training images (`read_image`: upright, with the
run's color mode and intensity normalization from the `config.json` beside the
model, or `--color-mode` and `--intensity`), predicted tile by tile with
`predict_tiled` at its own size, and written as `OUT/masks/<name>.png` (binary:
0/255; several classes: class ids) and `OUT/overlays/<name>.png`. Files of a folder
keep their relative path.
"""

import os

import numpy as np

from keras_unet_seg import _atomic, data
from keras_unet_seg.commands import _common
from keras_unet_seg.commands._common import CommandError

NAME = "predict"


def add_arguments(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    parser.add_argument(
        "--model", required=True, metavar="FILE", help=".keras model, such as RUN/model.keras"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write to")
    add_inference_arguments(parser)
    parser.add_argument(
        "--overlay-mode",
        choices=("contour", "fill"),
        default="contour",
        help="outline the predicted regions, or fill them",
    )
    return parser


def add_inference_arguments(parser):
    """The options of tiled inference, shared by `predict` and `evaluate`."""
    group = parser.add_argument_group("inference")
    group.add_argument(
        "--tile-size",
        type=_common.image_size,
        default=(256, 256),
        metavar="N|HxW",
        help="size of the tiles given to the model",
    )
    group.add_argument(
        "--overlap", type=_common.fraction, default=0.25, help="fraction shared by neighbour tiles"
    )
    group.add_argument(
        "--batch-size", type=_common.positive_int, default=4, help="tiles per model call"
    )
    group.add_argument(
        "--threshold",
        type=_common.probability,
        default=0.5,
        help="probability at or above which a pixel is foreground (one class)",
    )
    group.add_argument(
        "--tta", action="store_true", help="average the predictions of the flipped images"
    )
    group.add_argument(
        "--scale",
        type=_common.scale_choice,
        default="auto",
        metavar="auto|native|F|FHxFW",
        help="resize images by this factor before the model (predictions are resized "
        "back); auto: the run's training scale, from --image-size and the training images' "
        "size on disk (config.json beside --model), native: the files' own size",
    )
    _common.add_reading_arguments(group)
    _common.add_speed_arguments(group, training=False)
    group.add_argument(
        "--no-fold",
        dest="fold",
        action="store_false",
        help="keep batch normalization as separate layers (by default it is folded into "
        "the convolutions: faster, and the same masks in float32)",
    )
    return group


def inference_model(model, args, verbose=1):
    """`model` under `--precision` (same weights), batch normalization folded unless
    `--no-fold`, with `--jit-compile` applied.

    Only a `UNet` is rebuilt under another precision; other models keep their own
    under `auto`, and an explicit other precision is refused.
    """
    import keras

    from keras_unet_seg import UNet, performance
    from keras_unet_seg.export import fold_batch_normalization

    if isinstance(model, UNet):
        model = performance.with_precision(model, args.precision, training=False)
    elif args.precision not in ("auto", model.dtype_policy.name):
        raise CommandError(
            f"--precision {args.precision} applies to UNet models; this model is a "
            f"{type(model).__name__} and computes in {model.dtype_policy.name}: use "
            "--precision auto."
        )
    folded = getattr(args, "fold", True) and any(
        isinstance(layer, keras.layers.BatchNormalization) for layer in model._flatten_layers()
    )
    if folded:
        try:
            model = fold_batch_normalization(model)
        except ValueError as error:
            raise CommandError(f"{error}; use --no-fold to predict without folding.") from None
    model.jit_compile = performance.resolve_jit_compile(args.jit_compile, training=False)
    if verbose:
        summary = _common.speed_summary(model.dtype_policy.name, model.jit_compile)
        print(f"Predicting in {summary}.")
        if folded:
            print("Batch normalization folded into the convolutions (--no-fold keeps it).")
    return model


def run(args):
    _common.check_model_file(args.model)
    files = collect_inputs(args.inputs)
    model = _common.load_model(args.model)
    predict_files(model, files, args, _common.image_reading(args, model))
    return 0


def collect_inputs(inputs):
    """`[(path, name)]` for every image in `inputs`, checked before anything runs.

    A file's name is its stem; a folder's files are named by their path relative to
    the folder, without extension. A dataset folder (holding `images/` and `masks/`)
    gives its images only. Two inputs with the same name are refused.
    """

    found = []
    for item in inputs:
        if not os.path.exists(item):
            raise CommandError(f"input '{item}' does not exist.")
        if os.path.isdir(item):
            if all(os.path.isdir(os.path.join(item, kind)) for kind in ("images", "masks")):
                print(f"'{item}' is a dataset folder: predicting its images/, not its masks/.")
                item = os.path.join(item, "images")
            paths = data.list_image_files(item)
            if not paths:
                raise CommandError(
                    f"input folder '{item}' holds no image files (extensions "
                    f"{', '.join(data.IMAGE_EXTENSIONS)})."
                )
            for path in paths:
                name = os.path.splitext(os.path.relpath(path, item))[0]
                found.append((path, name.replace(os.sep, "/")))
        else:
            extension = os.path.splitext(item)[1].lower()
            if extension not in data.IMAGE_EXTENSIONS:
                raise CommandError(
                    f"input '{item}' is not an image file: expected one of the extensions "
                    f"{', '.join(data.IMAGE_EXTENSIONS)}."
                )
            found.append((item, os.path.splitext(os.path.basename(item))[0]))
    seen = {}
    for path, name in found:
        if name in seen and os.path.abspath(seen[name]) != os.path.abspath(path):
            raise CommandError(
                f"inputs '{seen[name]}' and '{path}' would both be written as '{name}.png'; "
                "rename one, or predict them into different --out folders."
            )
        seen[name] = path
    unique = list({os.path.abspath(path): (path, name) for path, name in found}.values())
    for path, _ in unique:
        if not os.path.isfile(path):  # a FIFO would read as empty, or block
            raise CommandError(f"input '{path}' is not a regular file (a pipe, socket or device).")
        read_header(path)
    return unique


def read_header(path):

    try:
        return data.read_header(path)
    except data.InvalidFileError as error:
        raise CommandError(str(error)) from None


def read_image(path, reading):
    """Reads an image exactly as `SegmentationDataset` does (`reading`: a `Reading`)."""
    from keras_unet_seg.data import InvalidFileError
    from keras_unet_seg.data import read_image as read

    try:
        return read(path, reading.color_mode, reading.intensity)
    except InvalidFileError as error:
        raise CommandError(str(error)) from None


def predict_image(model, image, args, scale=(1.0, 1.0)):
    """Probabilities `(height, width, num_classes)` of one image, by tiles.

    With a `scale` other than 1, the image is resized by it first (bilinear, as the
    training pipeline resizes) and the probabilities back to the image's size.
    """
    if scale != (1.0, 1.0):
        import tensorflow as tf

        height, width = image.shape[:2]
        size = (max(1, round(height * scale[0])), max(1, round(width * scale[1])))
        resized = tf.image.resize(image, size, method="bilinear").numpy()
        probabilities = predict_image(model, resized, args)
        return tf.image.resize(probabilities, (height, width), method="bilinear").numpy()
    from keras_unet_seg.inference import predict_tiled

    try:
        return predict_tiled(
            model,
            image,
            tile_size=tuple(args.tile_size),
            overlap=args.overlap,
            batch_size=args.batch_size,
            tta=args.tta,
        )
    except ValueError as error:
        raise CommandError(str(error)) from None


def mask_from_probabilities(probabilities, threshold):
    """A uint8 mask PNG array: 0/255 for one class, class ids for several."""
    if probabilities.shape[-1] == 1:
        return np.where(probabilities[..., 0] >= threshold, 255, 0).astype(np.uint8)
    ids = np.argmax(probabilities, axis=-1)
    return ids.astype(np.uint8 if probabilities.shape[-1] <= 256 else np.uint16)


def class_colors(num_classes, reading):
    """Colours by class id: the training masks' palette, else the overlays' defaults."""
    from keras_unet_seg import viz

    palette = reading.palette or []
    return {
        k: tuple(palette[k]) if k < len(palette) else viz.class_color(k) for k in range(num_classes)
    }


def class_names(num_classes, reading):
    """Names by class id (0 left out): the run's `--class-names`, else defaults."""
    names = reading.class_names or []
    default = ["background", "foreground"] if num_classes <= 2 else []
    return {
        k: names[k] if k < len(names) else (default[k] if k < len(default) else f"class {k}")
        for k in range(1, max(num_classes, 2))
    }


def save_mask(path, mask, colors):
    """Writes a mask PNG: binary 0/255 as gray; class ids (uint8) as a palette PNG
    whose indices are the ids, coloured by `colors`, so any viewer shows them."""
    from PIL import Image

    if not colors or mask.dtype != np.uint8:  # binary, or more than 256 classes
        _atomic.save_png(path, mask)
        return
    image = Image.fromarray(mask, mode="L").convert("P")
    flat = [0, 0, 0] * 256
    for class_id, rgb in colors.items():
        flat[3 * class_id : 3 * class_id + 3] = [int(c) for c in rgb]
    image.putpalette(flat)
    with _atomic.atomic_path(path) as temporary:
        image.save(temporary, format="PNG")


def display_image(image):
    """A normalised image as overlays draw it: its first (or first three) channels,
    in [0, 1] (values beyond, as percentiles and standardisation give, are rescaled
    by their percentiles and clipped)."""
    from keras_unet_seg.data import normalize_image

    image = image[..., :3] if image.shape[-1] >= 3 else image[..., :1]
    if image.min() < 0 or image.max() > 1:
        image = np.clip(normalize_image(image, "percentile"), 0.0, 1.0)
    return image


def predict_files(model, files, args, reading, verbose=1):
    import keras

    from keras_unet_seg import viz

    model = inference_model(model, args, verbose=verbose)
    masks_dir = os.path.join(args.out, "masks")
    overlays_dir = os.path.join(args.out, "overlays")
    progress = keras.utils.Progbar(len(files), unit_name="image", verbose=verbose)
    for index, (path, name) in enumerate(files):
        image = read_image(path, reading)
        probabilities = predict_image(model, image, args, reading.scale)
        mask = mask_from_probabilities(probabilities, args.threshold)
        num_classes = max(probabilities.shape[-1], 2)
        colors = class_colors(num_classes, reading)
        multiclass = probabilities.shape[-1] > 1
        save_mask(os.path.join(masks_dir, f"{name}.png"), mask, colors if multiclass else {})
        subfolder, base = os.path.split(name)
        viz.save_overlays(
            [display_image(image)],
            [probabilities],
            os.path.join(overlays_dir, subfolder),
            names=[base],
            threshold=args.threshold,
            mode=args.overlay_mode,
            alpha=1.0 if args.overlay_mode == "contour" else 0.5,
            color_mapping={k: c for k, c in colors.items() if k > 0},
            legend=class_names(num_classes, reading) if multiclass else None,
        )
        progress.update(index + 1)
    if verbose:
        masks = "mask" if len(files) == 1 else "masks"
        print(f"Wrote {len(files)} {masks} to '{masks_dir}' and overlays to '{overlays_dir}'.")
    return masks_dir, overlays_dir
