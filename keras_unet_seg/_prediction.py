"""Predicting image files: listing the inputs, scaling, and writing masks and overlays.

The work of `keras_unet_seg.inference.predict_directory` and
`keras_unet_seg.evaluation.evaluate_directory` (and of the `predict` and `evaluate`
commands) on files, around `predict_tiled`.
"""

import os

import numpy as np

from keras_unet_seg import _atomic, _outputs, data
from keras_unet_seg._errors import DataError, InvalidArgumentError


def list_inputs(inputs, verbose=1):
    """`[(path, name)]` for every image in `inputs`, each file checked (header only).

    `inputs` is a path or a list of paths of image files and folders (read
    recursively). A file's name is its stem; a folder's files are named by their path
    relative to the folder, without extension. A dataset folder (holding `images/` and
    `masks/`) gives its images only. Two inputs with the same name are refused.

    Raises:
        FileNotFoundError: if an input does not exist.
        ValueError: if an input is not an image file, a folder holds none, two inputs
            have the same name, or a file cannot be read (`InvalidFileError`).
    """
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    found = []
    for item in map(os.fspath, inputs):
        if not os.path.exists(item):
            raise FileNotFoundError(f"input '{item}' does not exist.")
        found.extend(_folder_images(item, verbose) if os.path.isdir(item) else [_file(item)])
    _check_unique_names(found)
    unique = list({os.path.abspath(path): (path, name) for path, name in found}.values())
    for path, _ in unique:
        if not os.path.isfile(path):  # a FIFO would read as empty, or block
            raise DataError(f"input '{path}' is not a regular file (a pipe, socket or device).")
        data.read_header(path)
    return unique


def _folder_images(folder, verbose):
    if all(os.path.isdir(os.path.join(folder, kind)) for kind in ("images", "masks")):
        if verbose:
            print(f"'{folder}' is a dataset folder: predicting its images/, not its masks/.")
        folder = os.path.join(folder, "images")
    paths = data.list_image_files(folder)
    if not paths:
        raise DataError(
            f"input folder '{folder}' holds no image files (extensions "
            f"{', '.join(data.IMAGE_EXTENSIONS)})."
        )
    return [
        (path, os.path.splitext(os.path.relpath(path, folder))[0].replace(os.sep, "/"))
        for path in paths
    ]


def _file(path):
    if os.path.splitext(path)[1].lower() not in data.IMAGE_EXTENSIONS:
        raise DataError(
            f"input '{path}' is not an image file: expected one of the extensions "
            f"{', '.join(data.IMAGE_EXTENSIONS)}."
        )
    return path, os.path.splitext(os.path.basename(path))[0]


def _check_unique_names(found):
    seen = {}
    for path, name in found:
        if name in seen and os.path.abspath(seen[name]) != os.path.abspath(path):
            raise DataError(
                f"inputs '{seen[name]}' and '{path}' would both be written as '{name}.png'; "
                "rename one, or predict them into different --out folders."
            )
        seen[name] = path


def scaled_size(size, scale, channels=1, source="the image"):
    """`(height, width)` resized by the `(height, width)` factors `scale`, checked.

    Rounded, at least 1.

    Raises:
        ValueError: the resized image would be larger than a file may decode to
            (`keras_unet_seg.data.read_header`'s limits), naming `scale` and `source`.
    """
    from keras_unet_seg.data._decoding import size_excess

    height, width = size
    scaled = (max(1, round(height * scale[0])), max(1, round(width * scale[1])))
    excess = size_excess(*scaled, channels, 1)
    if excess is not None:
        raise InvalidArgumentError(
            f"Invalid value for argument `scale` (--scale): {scale[0]:g} x {scale[1]:g} "
            f"would resize {source} ({height}x{width}) to {excess}, the limit of the "
            "files read. Give a smaller scale (native: the files' own size)."
        )
    return scaled


def check_outputs(inputs, files, output_dir, overwrite, option="output_dir", flag="overwrite=True"):
    """Raises unless predicting the `files` of `inputs` into `output_dir` writes
    outside every input and replaces (with `overwrite`) only an earlier prediction's
    masks and overlays (`keras_unet_seg._outputs`)."""
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    folders = [os.path.join(output_dir, kind) for kind in ("masks", "overlays")]
    _outputs.check_outside_inputs(folders, inputs, output_dir, option)
    targets = [path for _, name in files for path in _output_paths(output_dir, name)]
    _outputs.check_writable(targets, overwrite, output_dir, output_dir, option, flag)


def _output_paths(output_dir, name):
    return tuple(os.path.join(output_dir, kind, f"{name}.png") for kind in ("masks", "overlays"))


def rescaled(predict, images, scale):
    """`predict(images)` of `images` resized by the `(height, width)` factors `scale`
    (`resize_bilinear`, in float32), resized back to their size."""
    if tuple(scale) == (1.0, 1.0):
        return predict(images)
    size = images.shape[-3:-1]
    small = resize_bilinear(
        images.astype(np.float32, copy=False), scaled_size(size, scale, images.shape[-1])
    )
    return resize_bilinear(predict(small), size)


def resize_bilinear(images, size):
    """Float32 `images` `(..., height, width, channels)` resized to `size`.

    Bilinear, with half-pixel centres and no antialiasing (`tf.image.resize`'s
    `"bilinear"`, which the training pipeline uses), one axis after the other, in
    float32: the docs' ONNX Runtime program repeats these lines exactly.
    """
    for axis, length in zip((-3, -2), size, strict=True):
        old = images.shape[axis]
        if old == length:
            continue
        centres = np.clip((np.arange(length) + 0.5) * (old / length) - 0.5, 0, old - 1)
        low = np.floor(centres).astype(np.int64)
        high = np.minimum(low + 1, old - 1)
        shape = [1] * images.ndim
        shape[axis] = length
        fraction = (centres - low).astype(np.float32).reshape(shape)
        lower = np.take(images, low, axis=axis)
        images = lower + (np.take(images, high, axis=axis) - lower) * fraction
    return images


def class_ids(probabilities, threshold):
    """Predicted class ids `(height, width)`: thresholded (one channel) or the argmax,
    in the smallest unsigned dtype that holds them."""
    num_classes = probabilities.shape[-1]
    if num_classes == 1:
        return (probabilities[..., 0] >= threshold).view(np.uint8)
    dtype = np.uint8 if num_classes <= 256 else np.uint16
    return np.argmax(probabilities, axis=-1).astype(dtype)


def mask_png(probabilities, threshold):
    """A mask PNG array: uint8 0/255 for one class, class ids for several."""
    ids = class_ids(probabilities, threshold)
    if probabilities.shape[-1] == 1:
        ids *= 255
    return ids


def display_image(image):
    """A normalised image as overlays draw it: its first (or first three) channels,
    in [0, 1] (values beyond, as percentiles and standardisation give, are rescaled
    by their percentiles and clipped)."""
    image = image[..., :3] if image.shape[-1] >= 3 else image[..., :1]
    if image.min() < 0 or image.max() > 1:
        image = np.clip(data.normalize_image(image, "percentile"), 0.0, 1.0)
    return image


def class_colors(num_classes, palette=None):
    """Colours by class id: `palette`'s (the training masks'), else the overlays' defaults."""
    from keras_unet_seg import viz

    palette = palette or []
    return {
        k: tuple(palette[k]) if k < len(palette) else viz.class_color(k) for k in range(num_classes)
    }


def class_names(num_classes, names=None):
    """Names by class id (0 left out): `names` (the run's `--class-names`), else defaults."""
    names = names or []
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


def predict_files(model, files, output_dir, color_mode, intensity, options, verbose=1):
    """Predicts the `(path, name)` files of `list_inputs`; writes their masks and overlays.

    `options`: `tiling` (`predict_tiled`'s arguments) and those of
    `write_prediction`. Returns a dict of paths per image (`image`, `mask`, `overlay`).
    """
    import keras

    from keras_unet_seg.inference import predict_tiled

    progress = keras.utils.Progbar(len(files), unit_name="image", verbose=verbose)
    written = []
    scale = options["tiling"]["scale"]
    with _outputs.recording(output_dir):
        for index, (path, name) in enumerate(files):
            image = data.read_image(path, color_mode, intensity)
            scaled_size(image.shape[:2], scale, image.shape[-1], f"'{path}'")  # names the file
            probabilities = predict_tiled(model, image, **options["tiling"])
            mask, overlay = write_prediction(output_dir, name, image, probabilities, options)
            written.append({"image": path, "mask": mask, "overlay": overlay})
            progress.update(index + 1)
    if verbose:
        masks = "mask" if len(files) == 1 else "masks"
        masks_dir, overlays_dir = (os.path.join(output_dir, k) for k in ("masks", "overlays"))
        print(f"Wrote {len(files)} {masks} to '{masks_dir}' and overlays to '{overlays_dir}'.")
    return written


def write_prediction(output_dir, name, image, probabilities, options):
    """Writes `masks/<name>.png` and `overlays/<name>.png`; returns their paths.

    `options`: `threshold`, `overlay_mode`, `class_colors` and `class_names` (lists
    by class id, or `None`).
    """
    from keras_unet_seg import viz

    threshold = options["threshold"]
    num_classes = max(probabilities.shape[-1], 2)
    colors = class_colors(num_classes, options["class_colors"])
    multiclass = probabilities.shape[-1] > 1
    mask_path, _ = _output_paths(output_dir, name)
    save_mask(mask_path, mask_png(probabilities, threshold), colors if multiclass else {})
    subfolder, base = os.path.split(name)
    mode = options["overlay_mode"]
    [overlay_path] = viz.save_overlays(
        [display_image(image)],
        [probabilities],
        os.path.join(output_dir, "overlays", subfolder),
        names=[base],
        threshold=threshold,
        mode=mode,
        alpha=1.0 if mode == "contour" else 0.5,
        color_mapping={k: c for k, c in colors.items() if k > 0},
        legend=class_names(num_classes, options["class_names"]) if multiclass else None,
    )
    return mask_path, overlay_path
