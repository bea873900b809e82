"""Sliding-window (tiled) inference on images of any size.

The numeric work here is host-side orchestration and is written in NumPy on
purpose: the image and the output live in host memory, tiles are cut with
slicing, and overlapping predictions are accumulated in place
(`acc[y:y + h, x:x + w] += ...`), which NumPy does without copies while
`keras.ops` tensors are immutable on the JAX and TensorFlow backends. A
2048x2048 image never has to fit on the accelerator: only one batch of tiles
at a time goes through the model.
"""

import numbers

import keras
import numpy as np

_BLEND_MODES = ("gaussian", "constant")
_PADDING_MODES = ("constant", "reflect", "symmetric", "edge")
_FLIPS = {"horizontal": (2,), "vertical": (1,), "both": (1, 2)}
# An overlap may make at most this many times the tiles of no overlap.
_MAX_TILE_FACTOR = 100
# verbose="auto" shows a progress bar past this many model calls.
_PROGRESS_MIN_CALLS = 100


def predict_tiled(
    model,
    image,
    tile_size,
    overlap=0.25,
    batch_size=4,
    blend="gaussian",
    sigma_scale=0.125,
    tta=False,
    preprocess=None,
    padding_mode="constant",
    padding_value=0.0,
    verbose="auto",
):
    """Predicts a segmentation map of an image of any size, tile by tile.

    The image is covered by overlapping tiles of `tile_size`: the tiles'
    starts are spread evenly between the top-left corner and the last
    position that aligns with the bottom or right border, so every pixel is
    covered, the last tile ends exactly at the border, and neighbouring
    tiles overlap by at least `overlap`. A side shorter than the tile is
    given to the model as it is (the tile shrinks to it) when the model
    takes inputs of any size, as a `UNet` does (it pads to a multiple of
    `2**depth` itself), so an image that fits in one tile is predicted
    exactly as `model.predict` would; for a model with a fixed input size
    it is padded up to the tile (with `padding_mode`) and the padding is
    cropped from the result. Tiles go through the model in batches of `batch_size`
    (with `model.predict_on_batch`, which runs without gradients and is
    compiled on every backend; a plain callable is called instead). The
    predictions of overlapping tiles are blended with a weight map (a
    Gaussian centred on the tile by default, MONAI's convention: overlap
    0.25, sigma = 0.125 x tile size) accumulated and normalised by the sum
    of the weights, so no seams show.

    The function does not guess the normalisation of the image: pass a
    float image already normalised the way the model was trained, or a
    `preprocess` callable (for example `lambda x: x / 255.0`). An integer
    image without `preprocess` is refused.

    Memory stays bounded: the model sees at most `batch_size` tiles at a
    time (times one pass per flip with `tta`), the output and one weight
    accumulator of the padded image's size are kept on the host. The last
    batch is filled up to the batch size so that the model always sees the
    same input shape (no retracing or recompilation between batches). An
    `overlap` that would predict each pixel more than 100 times as often as
    tiles without overlap is refused rather than run for hours.

    Args:
        model: a Keras model (or any callable) mapping `(n, h, w, channels)`
            to `(n, h, w, num_classes)` probabilities of the same height and
            width, such as `keras_unet_seg.UNet`.
        image: one image `(height, width, channels)` or a batch
            `(batch, height, width, channels)`, a NumPy array or a backend
            tensor, of any height and width. The images of a batch share
            one size; predict images of different sizes one at a time.
        tile_size: int or tuple of two ints `(tile_height, tile_width)`, the
            size of the tiles given to the model.
        overlap: float in `[0, 1)`, the minimum fraction of a tile shared
            with its neighbour along each axis. Defaults to `0.25`.
        batch_size: int, number of tiles per model call. Defaults to `4`.
        blend: `"gaussian"` (weights fall off from the tile centre with
            standard deviation `sigma_scale * tile_size`) or `"constant"`
            (plain average of the overlapping predictions). Defaults to
            `"gaussian"`.
        sigma_scale: float > 0, standard deviation of the Gaussian weights
            as a fraction of the tile size. Defaults to `0.125`.
        tta: flip test-time augmentation. `False` for none; `True` for the
            three flips `"horizontal"`, `"vertical"` and `"both"` (four
            model passes per tile, the prediction becomes exactly
            equivariant to both flips); or a tuple of some of these names.
            Each flipped prediction is flipped back and all are averaged.
            Defaults to `False`.
        preprocess: callable or `None`, applied to each batch of tiles (as
            float32, after padding) before the model, for example
            `lambda x: x / 255.0` or a `keras.layers.Rescaling`. It must
            work pixel by pixel (it sees tiles, not the whole image).
            Required for integer images. Defaults to `None`.
        padding_mode: how a side shorter than the tile is padded, one of
            the `numpy.pad` modes `"constant"`, `"reflect"`, `"symmetric"`
            or `"edge"`. Padding is in the input's own value range, before
            `preprocess`. Defaults to `"constant"`.
        padding_value: float, the value of `"constant"` padding. Defaults
            to `0.0`.
        verbose: `"auto"`, `0` or `1`: a progress bar of the tiles (`1`),
            none (`0`), or one only for predictions of more than 100 model
            calls (`"auto"`). Defaults to `"auto"`.

    Returns:
        A float32 NumPy array of probabilities of the image's own height and
        width: `(height, width, num_classes)` for one image,
        `(batch, height, width, num_classes)` for a batch.

    Raises:
        ValueError: if an argument is invalid (tile size, overlap or the
            number of tiles it makes, batch size, blend, sigma, TTA, padding
            mode, the image's rank, a list of images of different sizes, an
            image whose channels are not the model's, or an integer image
            without `preprocess`), or if the model's output does not have the
            tiles' batch size, height and width.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> inputs = keras.Input((None, None, 3))
    >>> x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    >>> outputs = keras.layers.Conv2D(1, 1, activation="sigmoid")(x)
    >>> model = keras.Model(inputs, outputs)
    >>> image = np.random.default_rng(0).random((300, 200, 3), dtype="float32")
    >>> probs = predict_tiled(model, image, tile_size=128)
    >>> probs.shape, probs.dtype
    ((300, 200, 1), dtype('float32'))

    A uint8 photo, normalised the way the model was trained:

    >>> photo = np.zeros((100, 75, 3), dtype="uint8")
    >>> predict_tiled(model, photo, 64, preprocess=lambda x: x / 255.0).shape
    (100, 75, 1)

    Reference:
        MONAI's `sliding_window_inference`
        (https://docs.monai.io/en/stable/inferers.html).
    """
    tile_h, tile_w = _validate_tile_size(tile_size)
    if isinstance(overlap, bool) or not isinstance(overlap, numbers.Real) or not 0 <= overlap < 1:
        raise ValueError(
            "Invalid value for argument `overlap`. Expected a float in [0, 1). "
            f"Received: overlap={overlap!r}"
        )
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ValueError(
            "Invalid value for argument `batch_size`. Expected a positive integer. "
            f"Received: batch_size={batch_size!r}"
        )
    if blend not in _BLEND_MODES:
        raise ValueError(
            f"Invalid value for argument `blend`. Expected one of {_BLEND_MODES}. "
            f"Received: blend={blend!r}"
        )
    if (
        isinstance(sigma_scale, bool)
        or not isinstance(sigma_scale, numbers.Real)
        or not sigma_scale > 0
    ):
        raise ValueError(
            "Invalid value for argument `sigma_scale`. Expected a positive float. "
            f"Received: sigma_scale={sigma_scale!r}"
        )
    flips = _validate_tta(tta)
    if preprocess is not None and not callable(preprocess):
        raise ValueError(
            "Invalid value for argument `preprocess`. Expected a callable or None. "
            f"Received: preprocess={preprocess!r}"
        )
    if padding_mode not in _PADDING_MODES:
        raise ValueError(
            f"Invalid value for argument `padding_mode`. Expected one of {_PADDING_MODES}. "
            f"Received: padding_mode={padding_mode!r}"
        )

    if verbose not in ("auto", 0, 1):
        raise ValueError(
            "Invalid value for argument `verbose`. Expected 'auto', 0 or 1. "
            f"Received: verbose={verbose!r}"
        )

    images = _images_to_numpy(image)
    if images.ndim not in (3, 4) or min(images.shape) < 1:
        raise ValueError(
            "Invalid value for argument `image`. Expected one image of shape "
            "(height, width, channels) or a batch of shape (batch, height, width, channels) "
            f"(add a channel axis to a grayscale image with image[..., None]). "
            f"Received: image.shape={images.shape}"
        )
    single = images.ndim == 3
    if single:
        images = images[None]
    if images.dtype == bool or not np.issubdtype(images.dtype, np.number):
        raise ValueError(
            "Invalid value for argument `image`. Expected a numeric image. "
            f"Received: image.dtype={images.dtype}"
        )
    if not np.issubdtype(images.dtype, np.floating) and preprocess is None:
        raise ValueError(
            "Invalid value for argument `image`. Expected a float image normalised the way "
            "the model was trained, or a `preprocess` callable such as "
            "`preprocess=lambda x: x / 255.0` (predict_tiled does not guess the "
            "normalisation; if the model rescales its input itself, pass "
            "image.astype('float32')). "
            f"Received: image.dtype={images.dtype} and preprocess=None"
        )

    num_images, height, width, channels = images.shape
    required_h, required_w, required_channels = _model_input_shape(model)
    if required_channels is not None and channels != required_channels:
        shape = images.shape[1:] if single else images.shape
        raise ValueError(
            "Invalid value for argument `image`. Expected the model's "
            f"{required_channels} input channels (convert a grayscale image to RGB, or "
            f"read it in the model's color mode). Received: image.shape={shape}"
        )
    # A side shorter than the tile is given as it is to a model that takes any size.
    if height < tile_h and required_h is None:
        tile_h = height
    if width < tile_w and required_w is None:
        tile_w = width
    padded_h, padded_w = max(height, tile_h), max(width, tile_w)
    if (padded_h, padded_w) != (height, width):
        pad = [(0, 0), (0, padded_h - height), (0, padded_w - width), (0, 0)]
        if padding_mode == "constant":
            images = np.pad(images, pad, mode="constant", constant_values=padding_value)
        else:
            images = np.pad(images, pad, mode=padding_mode)

    starts_y = _tile_starts(padded_h, tile_h, overlap)
    starts_x = _tile_starts(padded_w, tile_w, overlap)
    without_overlap = -(-padded_h // tile_h) * -(-padded_w // tile_w)
    if len(starts_y) * len(starts_x) > _MAX_TILE_FACTOR * without_overlap:
        raise ValueError(
            "Invalid value for argument `overlap`. Expected an overlap that needs at most "
            f"{_MAX_TILE_FACTOR} times the tiles of no overlap ({without_overlap} tiles of "
            f"{tile_h}x{tile_w} for a {height}x{width} image), such as 0.25 or 0.5. "
            f"Received: overlap={overlap!r}, which needs {len(starts_y) * len(starts_x)} tiles"
        )
    tiles = [(b, y, x) for b in range(num_images) for y in starts_y for x in starts_x]
    weights = _weight_map(tile_h, tile_w, blend, sigma_scale)
    weight_sum = np.zeros((padded_h, padded_w), dtype="float32")
    for y in starts_y:
        for x in starts_x:
            weight_sum[y : y + tile_h, x : x + tile_w] += weights

    model_batch = min(int(batch_size), len(tiles))
    calls = -(-len(tiles) // model_batch)
    show = verbose == 1 or (verbose == "auto" and calls > _PROGRESS_MIN_CALLS)
    progress = keras.utils.Progbar(len(tiles), unit_name="tile") if show else None
    output = None
    for first in range(0, len(tiles), model_batch):
        chunk = tiles[first : first + model_batch]
        batch = np.zeros((model_batch, tile_h, tile_w, channels), dtype="float32")
        for i, (b, y, x) in enumerate(chunk):
            batch[i] = images[b, y : y + tile_h, x : x + tile_w]
        if preprocess is not None:
            batch = _to_numpy(preprocess(batch)).astype("float32", copy=False)
        probs = _predict_with_flips(model, batch, flips)
        if output is None:
            output = np.zeros((num_images, padded_h, padded_w, probs.shape[-1]), dtype="float32")
        for (b, y, x), prob in zip(chunk, probs[: len(chunk)], strict=True):
            output[b, y : y + tile_h, x : x + tile_w] += prob * weights[..., None]
        if progress is not None:
            progress.update(first + len(chunk))

    output /= weight_sum[None, :, :, None]
    output = output[:, :height, :width]
    if (padded_h, padded_w) != (height, width):
        output = np.ascontiguousarray(output)
    return output[0] if single else output


def _validate_tile_size(tile_size):
    values = tile_size if isinstance(tile_size, (tuple, list)) else (tile_size, tile_size)
    valid = len(values) == 2 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in values
    )
    if not valid:
        raise ValueError(
            "Invalid value for argument `tile_size`. Expected a positive integer or a tuple "
            f"of two positive integers (tile_height, tile_width). Received: tile_size={tile_size!r}"
        )
    return int(values[0]), int(values[1])


def _validate_tta(tta):
    if tta is False or tta is None:
        return ()
    if tta is True:
        return tuple(_FLIPS)
    if isinstance(tta, (tuple, list)) and all(name in _FLIPS for name in tta):
        return tuple(dict.fromkeys(tta))
    raise ValueError(
        "Invalid value for argument `tta`. Expected a bool or a tuple of flips among "
        f"{tuple(_FLIPS)}. Received: tta={tta!r}"
    )


def _to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    if keras.ops.is_tensor(x):
        return keras.ops.convert_to_numpy(x)
    return np.asarray(x)


def _images_to_numpy(image):
    """The image (or batch, or list of same-size images) as one NumPy array."""
    if isinstance(image, (list, tuple)):
        shapes = [tuple(np.shape(item)) for item in image]
        if len(set(shapes)) > 1:
            raise ValueError(
                "Invalid value for argument `image`. Expected one image, a batch, or a list "
                "of images of one size (call predict_tiled on each image of another size). "
                f"Received: a list of {len(shapes)} images of shapes {shapes}"
            )
    return _to_numpy(image)


def _model_input_shape(model):
    """`(height, width, channels)` the model requires: `None` for any (or unknown)."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        shape = None
    if (
        isinstance(shape, tuple)
        and len(shape) == 4
        and all(d is None or isinstance(d, int) for d in shape)
    ):
        return shape[1:]
    for weight in getattr(model, "weights", None) or ():  # a convolutional model's first kernel
        if len(weight.shape) == 4:
            return None, None, int(weight.shape[2])
    return None, None, None


def _tile_starts(length, tile, overlap):
    """Evenly spread starts from 0 to `length - tile`, stride <= tile * (1 - overlap)."""
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1 - overlap)))
    count = -(-(length - tile) // stride) + 1
    return [int(s) for s in np.round(np.linspace(0, length - tile, count))]


def _weight_map(tile_h, tile_w, blend, sigma_scale):
    """The blending weights of one tile, shape `(tile_h, tile_w)`, max 1, never 0.

    The Gaussian is centred at `(size - 1) / 2`, so the map is symmetric
    under flips (MONAI centres it at `size // 2`).
    """
    if blend == "constant":
        return np.ones((tile_h, tile_w), dtype="float32")
    profiles = []
    for size in (tile_h, tile_w):
        coords = np.arange(size, dtype="float64") - (size - 1) / 2
        sigma = sigma_scale * size
        profiles.append(np.exp(-0.5 * (coords / sigma) ** 2))
    weights = np.outer(profiles[0], profiles[1])
    # Far from the centre a small sigma underflows to 0; every pixel needs a weight.
    return np.maximum(weights / weights.max(), 1e-12).astype("float32")


def _predict_with_flips(model, batch, flips):
    probs = _predict(model, batch)
    if not flips:
        return probs
    total = probs.copy()
    for name in flips:
        axes = _FLIPS[name]
        flipped = np.ascontiguousarray(np.flip(batch, axis=axes))
        total += np.flip(_predict(model, flipped), axis=axes)
    total /= len(flips) + 1
    return total


def _predict(model, batch):
    if hasattr(model, "predict_on_batch"):
        probs = model.predict_on_batch(batch)
    else:
        probs = model(batch)
    if isinstance(probs, (dict, list, tuple)):
        raise ValueError(
            "Invalid value for argument `model`. Expected a model with a single output "
            f"tensor. Received: a model returning {type(probs).__name__}"
        )
    probs = _to_numpy(probs)
    if probs.ndim != 4 or probs.shape[:3] != batch.shape[:3]:
        raise ValueError(
            "Invalid value for argument `model`. Expected the model to keep the tiles' "
            "batch size, height and width: an output of shape "
            f"({batch.shape[0]}, {batch.shape[1]}, {batch.shape[2]}, num_classes) for tiles of "
            f"shape {batch.shape}. Received: output.shape={probs.shape}"
        )
    return probs.astype("float32", copy=False)


_OVERLAY_MODES = ("contour", "fill")


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
    verbose=1,
):
    """Predicts every image of a folder and writes its mask and overlay PNGs.

    What `keras-unet-seg predict` does (see the Inference guide): each image is read
    by `keras_unet_seg.data.read_image`, predicted with `predict_tiled` at its own
    size, and written as `output_dir/masks/<name>.png` (binary: 0/255; several
    classes: a palette PNG of class ids) and `output_dir/overlays/<name>.png`. A
    folder's files keep their relative path as name; a dataset folder (holding
    `images/` and `masks/`) gives its images. Every input is checked first.

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
        class_colors: list of RGB colours by class id (such as the training masks'
            palette); `None` for the overlays' defaults.
        class_names: list of names by class id, background first, for the legends.
        verbose: int, default 1. 0 prints nothing; 1 a progress bar and a summary.

    Returns:
        A list of dicts, one per image: `{"image", "mask", "overlay"}` paths.

    Raises:
        FileNotFoundError: if an input does not exist.
        ValueError: if an input is not a readable image (it is named), a folder holds
            none, two inputs have the same name, or an argument is invalid.
    """
    from keras_unet_seg import _prediction, _validation

    options = {
        "threshold": _validation.check_probability("threshold", threshold),
        "overlay_mode": _validation.check_choice("overlay_mode", overlay_mode, _OVERLAY_MODES),
        "class_colors": class_colors,
        "class_names": class_names,
        "scale": _validation.check_scale("scale", scale),
        "tiling": dict(tile_size=tile_size, overlap=overlap, batch_size=batch_size, tta=tta),
    }
    files = _prediction.list_inputs(inputs, verbose=verbose)
    return _prediction.predict_files(
        model, files, output_dir, color_mode, intensity, options, verbose
    )
