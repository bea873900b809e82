"""Predicting image and volume files: the inputs listed and checked, masks and overlays
written.

`predict_directory` (what the `predict` command runs) over `predict_tiled`; class ids
and the image as overlays draw it, which `keras_unet_seg.evaluation` shares. A model
built on volumes reads volume files (NIfTI, TIFF stacks) the same way, writes each mask
in its input's format and header, and the overlay of its middle slice.
"""

import dataclasses
import os

import keras
import numpy as np
from PIL import Image

from keras_unet_seg import _atomic, _outputs, data, viz
from keras_unet_seg._errors import DataError, UserError
from keras_unet_seg._model_facts import input_shape
from keras_unet_seg._validation import check_choice
from keras_unet_seg.data.volumes import (
    VOLUME_EXTENSIONS,
    read_volume,
    volume_extension,
    write_volume,
)
from keras_unet_seg.inference._resize import scaled_size
from keras_unet_seg.inference._spec import spec_of
from keras_unet_seg.inference._tiles import predict_tiled

OVERLAY_MODES = ("contour", "fill")


def list_inputs(inputs, verbose=1, volumes=False):
    """`[(path, name)]` for every image in `inputs`, each file checked (header only).

    `inputs` is a path or a list of paths of image files and folders (read
    recursively). A file's name is its stem; a folder's files are named by their path
    relative to the folder, without extension. A dataset folder (holding `images/` and
    `masks/`) gives its images only. Two inputs with the same name are refused. With
    `volumes`, the files are volumes (`.nii`, `.nii.gz`, `.tif` stacks), read whole later.

    Raises:
        FileNotFoundError: if an input does not exist.
        ValueError: if an input is not an image file, a folder holds none, two inputs
            have the same name, or a file cannot be read (`InvalidFileError`).
    """
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    kind = _VOLUMES if volumes else _IMAGES
    found = []
    for item in map(os.fspath, inputs):
        if not os.path.exists(item):
            raise FileNotFoundError(f"input '{item}' does not exist.")
        found.extend(
            _folder_files(item, kind, verbose) if os.path.isdir(item) else [_file(item, kind)]
        )
    _check_unique_names(found)
    unique = list({os.path.abspath(path): (path, name) for path, name in found}.values())
    for path, _ in unique:
        if not os.path.isfile(path):  # a FIFO would read as empty, or block
            raise DataError(f"input '{path}' is not a regular file (a pipe, socket or device).")
        if not volumes:
            data.read_header(path)
    return unique


def named_volumes(inputs):
    """Whether `inputs` (a path or a list of paths) name NIfTI files, or folders holding
    some: volumes for any model (a TIFF file is an image or a stack, as the model says)."""
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    nifti = (".nii", ".nii.gz")
    for item in map(os.fspath, inputs):
        paths = data.list_image_files(item, nifti) if os.path.isdir(item) else [item]
        if any(path.lower().endswith(nifti) for path in paths):
            return True
    return False


@dataclasses.dataclass(frozen=True)
class _Kind:
    """Files of images or of volumes: their word and extensions."""

    word: str
    extensions: tuple

    def stem(self, path):
        """`path` without its extension (both of `.nii.gz`), or `None` if it has none of ours."""
        lower = path.lower()
        matches = [e for e in self.extensions if lower.endswith(e)]
        return path[: -len(max(matches, key=len))] if matches else None


_IMAGES = _Kind("image", data.IMAGE_EXTENSIONS)
_VOLUMES = _Kind("volume", VOLUME_EXTENSIONS)


def _folder_files(folder, kind, verbose):
    if all(os.path.isdir(os.path.join(folder, sub)) for sub in ("images", "masks")):
        if verbose:
            print(f"'{folder}' is a dataset folder: predicting its images/, not its masks/.")
        folder = os.path.join(folder, "images")
    paths = data.list_image_files(folder, kind.extensions)
    if not paths:
        raise DataError(
            f"input folder '{folder}' holds no {kind.word} files (extensions "
            f"{', '.join(kind.extensions)})."
        )
    return [(path, kind.stem(os.path.relpath(path, folder)).replace(os.sep, "/")) for path in paths]


def _file(path, kind):
    if kind.stem(path) is None:
        raise DataError(
            f"input '{path}' is not {'an' if kind.word == 'image' else 'a'} {kind.word} file: "
            f"expected one of the extensions {', '.join(kind.extensions)}."
        )
    return path, kind.stem(os.path.basename(path))


def _check_unique_names(found):
    seen = {}
    for path, name in found:
        if name in seen and os.path.abspath(seen[name]) != os.path.abspath(path):
            raise DataError(
                f"inputs '{seen[name]}' and '{path}' would both be written as '{name}.png'; "
                "rename one, or predict them into different --out folders."
            )
        seen[name] = path


def check_outputs(
    inputs, files, output_dir, overwrite, option="output_dir", flag="overwrite=True", volumes=False
):
    """Raises unless predicting the `files` of `inputs` into `output_dir` writes
    outside every input and replaces (with `overwrite`) only an earlier prediction's
    masks and overlays (`keras_unet_seg._outputs`); `volumes`: the files are volumes."""
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    folders = [os.path.join(output_dir, kind) for kind in ("masks", "overlays")]
    _outputs.check_outside_inputs(folders, inputs, output_dir, option)
    targets = [
        target for path, name in files for target in _output_paths(output_dir, name, path, volumes)
    ]
    _outputs.check_writable(targets, overwrite, output_dir, output_dir, option, flag)


def _output_paths(output_dir, name, path=None, volumes=False):
    """The mask and overlay of the input `path` named `name`: a mask PNG for an image,
    a volume in the input's format (`.nii.gz`, `.tif`, ...) for a volume."""
    mask = name + (volume_extension(path) if volumes else ".png")
    return os.path.join(output_dir, "masks", mask), os.path.join(
        output_dir, "overlays", f"{name}.png"
    )


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


def predict_directory(
    model,
    inputs,
    output_dir,
    *,
    color_mode="rgb",
    intensity="auto",
    scale=None,
    tile_size=256,
    overlap=0.25,
    batch_size=4,
    tta=False,
    threshold=0.5,
    overlay_mode="contour",
    class_colors=None,
    class_names=None,
    spec=None,
    overwrite=False,
    verbose=1,
):
    """Predicts every image of a folder and writes its mask and overlay PNGs.

    What `keras-unet-seg predict` does (see the Inference guide): each image is read
    by `keras_unet_seg.data.read_image`, predicted with `predict_tiled` at its own
    size, and written as `output_dir/masks/<name>.png` (binary: 0/255; several
    classes: a palette PNG of class ids) and `output_dir/overlays/<name>.png`. A
    folder's files keep their relative path as name; a dataset folder (holding
    `images/` and `masks/`) gives its images. Inputs and outputs are checked first:
    nothing is written among the inputs or over a file no prediction wrote. A `spec`
    (`InferenceSpec.from_run(run)`) reads, scales, tiles and thresholds as the command
    does; the model is used as given (the command folds it, under `spec.precision`).
    A model built on volumes reads volume files (`read_volume`: `.nii`, `.nii.gz`,
    `.tif` stacks), slides its window over each (an int `tile_size` is a cube), and
    writes its mask of class ids with the input's format and header (`write_volume`)
    and the overlay of its middle slice.

    Args:
        model: a Keras model (or callable) returning probabilities, such as a `UNet`.
        inputs: path of an image file or a folder (read recursively), or a list of them.
        output_dir: str, the folder to write `masks/` and `overlays/` into.
        color_mode: str, default `"rgb"`. How images are read, as for training.
        intensity: the intensity normalization of training, default `"auto"`.
        scale: `None` (default: 1), or a factor or `(height, width)` factors to resize
            images by before the model (and the probabilities back).
        tile_size: int or `(height, width)`, default 256. `predict_tiled`'s tiles.
        overlap: float in [0, 1), default 0.25. Fraction shared by neighbour tiles.
        batch_size: int, default 4. Tiles per model call.
        tta: bool, default `False`. Average the predictions of the flipped images.
        threshold: float in [0, 1], default 0.5. Foreground at or above it (one class).
        overlay_mode: `"contour"` (default: outlines) or `"fill"`.
        class_colors: RGB colours by class id (the training masks' palette), or `None`.
        class_names: list of names by class id, background first, for the legends.
        spec: `None` (default), or an `InferenceSpec` that gives `color_mode`,
            `intensity`, `scale`, the tiling and `threshold` (leave those arguments
            at their defaults).
        overwrite: bool, default `False`. Replace the masks and overlays of an earlier
            prediction in `output_dir` (other files are never replaced).
        verbose: int, default 1. 0 prints nothing; 1 a progress bar and a summary.

    Returns:
        A list of dicts, one per image: `{"image", "mask", "overlay"}` paths.

    Raises:
        FileNotFoundError: if an input does not exist.
        ValueError: an unreadable input (named), a folder without images, two inputs of
            one name, an `output_dir` among the inputs, or an invalid argument.
        FileExistsError: a file to write exists, and no prediction wrote it or
            `overwrite` is `False`.
    """
    covered = dict(color_mode=color_mode, intensity=intensity, scale=scale, tile_size=tile_size)
    covered.update(overlap=overlap, tta=tta, threshold=threshold)
    spec = spec_of(spec, covered, predict_directory)
    writing = Writing(spec.threshold, overlay_mode, class_colors, class_names)
    volumes = is_volume_model(model)
    files = list_inputs(inputs, verbose=verbose, volumes=volumes)
    check_outputs(inputs, files, output_dir, overwrite, volumes=volumes)
    return _predict_files(model, files, output_dir, (spec, batch_size), writing, verbose)


def is_volume_model(model):
    """Whether `model` was built on volumes `(batch, depth, height, width, channels)`."""
    return len(input_shape(model)) == 4


def read_input(path, spec, volume):
    """`(image, volume)`: the file at `path` read and normalised by `spec` as a model
    input (an image, or with `volume` a `Volume`'s array), and the `Volume` (or `None`).

    Raises:
        ValueError: the file cannot be read, or its values normalised (naming it).
    """
    if not volume:
        image = data.read_image(path, spec.color_mode, spec.intensity)
        scaled_size(image.shape[:2], spec.scale, image.shape[-1], f"'{path}'")  # names the file
        return image, None
    volume = read_volume(path)
    try:
        return data.normalize_volume(volume.array, spec.intensity), volume
    except UserError as error:
        raise data.InvalidFileError(f"File '{path}': {error}", path) from None


def _predict_files(model, files, output_dir, how, writing, verbose):
    """Predicts the `(path, name)` `files` by `how` (the spec and the batch size); writes
    their masks and overlays (`writing`). Returns their paths."""
    spec, batch_size = how
    volumes = is_volume_model(model)
    tiling = {**spec.tiled_arguments(volumes), "batch_size": batch_size}
    progress = keras.utils.Progbar(len(files), unit_name="file", verbose=verbose)
    written = []
    with _outputs.recording(output_dir):
        for index, (path, name) in enumerate(files):
            image, volume = read_input(path, spec, volumes)
            probabilities = predict_tiled(model, image, **tiling)
            mask, overlay = writing.write(output_dir, name, image, probabilities, like=volume)
            written.append({"image": path, "mask": mask, "overlay": overlay})
            progress.update(index + 1)
    if verbose:
        masks = "mask" if len(files) == 1 else "masks"
        masks_dir, overlays_dir = (os.path.join(output_dir, k) for k in ("masks", "overlays"))
        print(f"Wrote {len(files)} {masks} to '{masks_dir}' and overlays to '{overlays_dir}'.")
    return written


@dataclasses.dataclass(frozen=True)
class Writing:
    """How a prediction is written: `threshold` (one class), the overlays' `overlay_mode`,
    and the `class_colors` and `class_names` by class id (lists, or `None`)."""

    threshold: float
    overlay_mode: str = "contour"
    class_colors: list | None = None
    class_names: list | None = None

    def __post_init__(self):
        check_choice("overlay_mode", self.overlay_mode, OVERLAY_MODES)

    def write(self, output_dir, name, image, probabilities, like=None):
        """Writes `masks/<name>.png` and `overlays/<name>.png`; returns their paths.

        For a volume (`like`: the `Volume` read), the mask of class ids is written with
        `like`'s format and header (`keras_unet_seg.data.write_volume`), and the overlay
        is that of the middle slice along depth.
        """
        num_classes = max(probabilities.shape[-1], 2)
        colors = class_colors(num_classes, self.class_colors)
        multiclass = probabilities.shape[-1] > 1
        if like is None:
            mask_path, _ = _output_paths(output_dir, name)
            save_mask(
                mask_path, mask_png(probabilities, self.threshold), colors if multiclass else {}
            )
        else:
            mask_path, _ = _output_paths(output_dir, name, like.path, volumes=True)
            mask = class_ids(probabilities, self.threshold)
            write_volume(mask_path, mask, like=like, overwrite=True)  # checked before
            image, probabilities = image[len(image) // 2], probabilities[len(image) // 2]
        subfolder, base = os.path.split(name)
        mode = self.overlay_mode
        [overlay_path] = viz.save_overlays(
            [display_image(image)],
            [probabilities],
            os.path.join(output_dir, "overlays", subfolder),
            names=[base],
            threshold=self.threshold,
            mode=mode,
            alpha=1.0 if mode == "contour" else 0.5,
            color_mapping={k: c for k, c in colors.items() if k > 0},
            legend=class_names(num_classes, self.class_names) if multiclass else None,
        )
        return mask_path, overlay_path
