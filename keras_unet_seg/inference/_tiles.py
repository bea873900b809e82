"""`predict_tiled`: a model's probabilities of images or volumes of any size, tile by
tile (the package's docstring says how)."""

import functools
import itertools
import math

import keras
import numpy as np

from keras_unet_seg._arrays import to_numpy
from keras_unet_seg._model_facts import input_shape
from keras_unet_seg._validation import (
    check_choice,
    check_positive,
    check_positive_int,
    check_rate,
    check_scale,
    check_size,
    invalid_value,
)
from keras_unet_seg.inference._resize import rescaled

BLEND_MODES = ("gaussian", "constant")
_PADDING_MODES = ("constant", "reflect", "symmetric", "edge")
# Axes from the end of a channels-last batch: in plane for images and volumes alike.
_FLIPS = {"horizontal": (-2,), "vertical": (-3,), "both": (-3, -2)}
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
    scale=None,
):
    """Predicts a segmentation map of an image or a volume of any size, tile by tile.

    Overlapping tiles go through the model `batch_size` at a time and are
    blended back with a weight map, so no seams show (`keras_unet_seg.inference`).
    Pass a float image normalised as in training, or a `preprocess` callable.
    A volume model (such as a 3D `UNet`) gets 3D tiles: sliding-window inference.

    Args:
        model: a Keras model (or any callable) mapping `(n, h, w, channels)`
            to `(n, h, w, num_classes)` probabilities (`(n, d, h, w, ...)` for volumes).
        image: one image `(height, width, channels)` (volume: `(depth, height, width,
            channels)`), or a batch (or list) of one size; a NumPy array or a tensor.
        tile_size: int or one size an axis, the model's input size. The spatial rank
            is the model's, else the length of `tile_size`, else 2.
        overlap: float in `[0, 1)`, the minimum fraction of a tile shared
            with its neighbour along each axis. Defaults to `0.25`.
        batch_size: int, number of tiles per model call. Defaults to `4`.
        blend: `"gaussian"` or `"constant"` (a plain average). Defaults to `"gaussian"`.
        sigma_scale: float > 0, the Gaussian's standard deviation as a fraction of
            the tile size (along each axis). Defaults to `0.125`.
        tta: flip test-time augmentation: `False`, `True` (flips `"horizontal"`,
            `"vertical"` and `"both"`, in plane, averaged) or a tuple of some.
        preprocess: callable applied pixel by pixel to each float32 batch of tiles, such
            as `lambda x: x / 255.0`, or `None` (default). Required for integer images.
        padding_mode: the `numpy.pad` mode (`"constant"` (default), `"reflect"`,
            `"symmetric"`, `"edge"`) of a side shorter than a fixed-size model's tile.
        padding_value: float, of `"constant"` padding. Defaults to `0.0`.
        verbose: `"auto"` (default: a progress bar past 100 model calls), `0` or `1`.
        scale: a factor or `(height, width)` factors to resize images by first (and
            the probabilities back; not volumes). Defaults to `None` (1).

    Returns:
        A float32 NumPy array of probabilities, `(height, width, num_classes)`
        for one image, `(batch, height, width, num_classes)` for a batch.

    Raises:
        ValueError: an invalid argument, a `tile_size` below the model's
            `minimum_tile_size`, an overlap of over 100 times the tiles of none,
            an image of other channels than the model's or of integers without
            `preprocess`, or a model output of another size than its tiles.

    Example:

    >>> inputs = keras.Input((None, None, 3))
    >>> outputs = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs)
    >>> model = keras.Model(inputs, outputs)
    >>> image = np.random.default_rng(0).random((300, 200, 3), dtype="float32")
    >>> predict_tiled(model, image, tile_size=128).shape
    (300, 200, 1)
    >>> photo = np.zeros((100, 75, 3), dtype="uint8")
    >>> predict_tiled(model, photo, 64, preprocess=lambda x: x / 255.0).shape
    (100, 75, 1)

    Reference:
        MONAI's `sliding_window_inference` (https://docs.monai.io/en/stable/inferers.html).
    """
    required = _required_shape(model, tile_size)
    options = _Options(
        required, tile_size, overlap, batch_size, blend, sigma_scale, tta, preprocess
    )
    options.check_padding_and_verbose(padding_mode, verbose)
    _check_tile_size(model, tile_size, options.tile_size)
    images, single = _checked_images(image, preprocess, required)
    output = _scaled_tiles(model, images, required, options, (padding_mode, padding_value), scale)
    return output[0] if single else output


def _required_shape(model, tile_size):
    """`input_shape(model)`; for a model that does not say, as many spatial axes as
    `tile_size` gives (2 for an int)."""
    required = input_shape(model)
    if required[-1] is None and isinstance(tile_size, (tuple, list)) and len(tile_size) > 2:
        return (None,) * (len(tile_size) + 1)
    return required


def _scaled_tiles(model, images, required, options, padding, scale):
    """The blended tile predictions of `images` resized by `scale`, resized back."""

    def tiled(images):
        grid = _Grid(required[:-1], images, options)
        return _blend_tiles(model, grid.pad(images, *padding), grid, options)

    if len(required) > 3:
        if scale is not None and check_scale("scale", scale) != (1.0, 1.0):
            raise invalid_value("scale", "None (1): volumes are predicted at their own size", scale)
        return tiled(images)
    return rescaled(tiled, images, check_scale("scale", scale))


def minimum_tile_size(model):
    """The smallest tile side `model` takes: `2**depth` for a `UNet` (a smaller tile is
    padded up inside the model, and its masks change), else 1."""
    depth = getattr(model, "depth", None)
    return 2**depth if isinstance(depth, int) else 1


def _check_tile_size(model, tile_size, checked):
    minimum = minimum_tile_size(model)
    if min(checked) < minimum:
        raise invalid_value(
            "tile_size",
            f"at least the model's minimum tile of {'x'.join([str(minimum)] * len(checked))} "
            "(2**depth): a smaller tile is padded up inside the model, which changes the masks",
            tile_size,
        )


class _Options:
    """The checked tiling options of `predict_tiled`."""

    def __init__(
        self, required, tile_size, overlap, batch_size, blend, sigma_scale, tta, preprocess
    ):
        self.tile_size = check_size("tile_size", tile_size, rank=len(required) - 1)
        self.overlap = check_rate("overlap", overlap)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.blend = check_choice("blend", blend, BLEND_MODES)
        self.sigma_scale = check_positive("sigma_scale", sigma_scale)
        self.flips = check_tta(tta)
        if preprocess is not None and not callable(preprocess):
            raise invalid_value("preprocess", "a callable or None", preprocess)
        self.preprocess = preprocess

    def check_padding_and_verbose(self, padding_mode, verbose):
        self.padding_mode = check_choice("padding_mode", padding_mode, _PADDING_MODES)
        self.verbose = check_choice("verbose", verbose, ("auto", 0, 1))


class _Grid:
    """Where the tiles of a batch of images (or volumes) go, for a model of `required_size`.

    A side shorter than the tile is given as it is to a model that takes any
    size (the tile shrinks to it), and padded up to the tile for a model of
    fixed input size.
    """

    def __init__(self, required_size, images, options):
        num_images, *self.size, self.channels = images.shape
        self.size = tuple(self.size)
        sides = zip(self.size, options.tile_size, required_size, strict=True)
        self.tile = tuple(
            length if length < tile and required is None else tile
            for length, tile, required in sides
        )
        self.padded = tuple(map(max, self.size, self.tile))
        self.axis_starts = [
            _tile_starts(length, tile, options.overlap)
            for length, tile in zip(self.padded, self.tile, strict=True)
        ]
        self._check_count(math.prod(map(len, self.axis_starts)), options.overlap)
        self.tiles = [
            (b, *start) for b in range(num_images) for start in itertools.product(*self.axis_starts)
        ]

    def _check_count(self, count, overlap):
        without_overlap = math.prod(-(-p // t) for p, t in zip(self.padded, self.tile, strict=True))
        if count > _MAX_TILE_FACTOR * without_overlap:
            kind = "image" if len(self.size) == 2 else "volume"
            raise invalid_value(  # the command's --overlap too
                "overlap",
                f"an overlap that needs at most {_MAX_TILE_FACTOR} times the tiles of no "
                f"overlap ({without_overlap} tiles of {_sides(self.tile)} for a "
                f"{_sides(self.size)} {kind}), such as 0.25 or 0.5",
                received=f"overlap={overlap!r}, which needs {count} tiles",
            )

    def pad(self, images, padding_mode, padding_value):
        """The images padded to `padded` with `padding_mode`."""
        if self.padded == self.size:
            return images
        pad = [(0, 0), *((0, p - s) for p, s in zip(self.padded, self.size, strict=True)), (0, 0)]
        if padding_mode == "constant":
            return np.pad(images, pad, mode="constant", constant_values=padding_value)
        return np.pad(images, pad, mode=padding_mode)

    def window(self, start):
        """The slices of the tile that starts at `start` (one index an axis)."""
        return tuple(slice(s, s + t) for s, t in zip(start, self.tile, strict=True))

    def crop(self, output):
        """The output without the padding, contiguous."""
        if self.padded == self.size:
            return output
        return np.ascontiguousarray(output[(slice(None), *(slice(0, s) for s in self.size))])


def _sides(sizes):
    return "x".join(map(str, sizes))


def _outer(vectors):
    """The outer product of 1D arrays: an array of one axis per vector."""
    return functools.reduce(np.multiply.outer, vectors)


def _blend_tiles(model, images, grid, options):
    """The blended predictions of every tile of `images`, on `grid`.

    The weights are separable and the tiles a grid, so their sum is the outer product
    of one vector an axis: no map of the image's size is needed besides the output.
    """
    profiles = _weight_profiles(grid.tile, options.blend, options.sigma_scale)
    weights = _outer(profiles)[..., None]
    sums = [np.zeros(length, dtype="float32") for length in grid.padded]
    for total, starts, profile in zip(sums, grid.axis_starts, profiles, strict=True):
        for start in starts:
            total[start : start + len(profile)] += profile
    model_batch = min(options.batch_size, len(grid.tiles))
    calls = -(-len(grid.tiles) // model_batch)
    show = options.verbose == 1 or (options.verbose == "auto" and calls > _PROGRESS_MIN_CALLS)
    progress = keras.utils.Progbar(len(grid.tiles), unit_name="tile") if show else None
    output = None
    for first in range(0, len(grid.tiles), model_batch):
        chunk = grid.tiles[first : first + model_batch]
        probs = _predict_chunk(model, images, grid, chunk, model_batch, options)
        if output is None:
            output = np.zeros((*images.shape[:-1], probs.shape[-1]), dtype="float32")
        for (b, *start), prob in zip(chunk, probs[: len(chunk)], strict=True):
            output[(b, *grid.window(start))] += prob * weights
        if progress is not None:
            progress.update(first + len(chunk))
    for top in range(0, grid.padded[0], grid.tile[0]):  # a band along the first axis at a time
        band = slice(top, top + grid.tile[0])
        output[:, band] /= _outer([sums[0][band], *sums[1:]])[None, ..., None]
    return grid.crop(output)


def _predict_chunk(model, images, grid, chunk, model_batch, options):
    """The predictions of the tiles `chunk`, in a batch filled up to `model_batch`.

    The batch keeps one shape, so the model is not retraced for the last one.
    """
    batch = np.zeros((model_batch, *grid.tile, grid.channels), dtype="float32")
    for i, (b, *start) in enumerate(chunk):
        batch[i] = images[(b, *grid.window(start))]
    if options.preprocess is not None:
        batch = to_numpy(options.preprocess(batch)).astype("float32", copy=False)
    return _predict_with_flips(model, batch, options.flips)


def check_tta(tta):
    if tta is False or tta is None:
        return ()
    if tta is True:
        return tuple(_FLIPS)
    if isinstance(tta, (tuple, list)) and all(name in _FLIPS for name in tta):
        return tuple(dict.fromkeys(tta))
    raise invalid_value("tta", f"a bool or a tuple of flips among {tuple(_FLIPS)}", tta)


def _checked_images(image, preprocess, required):
    """`(images, single)`: the input as a numeric batch, and whether it was one image
    (or volume), for a model taking `required` `(*spatial, channels)`."""
    images = _imagesto_numpy(image)
    rank = len(required) - 1
    if images.ndim not in (rank + 1, rank + 2) or min(images.shape) < 1:
        kind, axes = ("image", "height, width") if rank == 2 else ("volume", "depth, height, width")
        raise invalid_value(
            "image",
            f"one {kind} of shape ({axes}, channels) or a batch of shape (batch, {axes}, "
            f"channels) (add a channel axis to a grayscale {kind} with image[..., None])",
            received=f"image.shape={images.shape}",
        )
    if images.dtype == bool or not np.issubdtype(images.dtype, np.number):
        raise invalid_value("image", "a numeric image", received=f"image.dtype={images.dtype}")
    if not np.issubdtype(images.dtype, np.floating) and preprocess is None:
        raise invalid_value(
            "image",
            "a float image normalised the way the model was trained, or a `preprocess` "
            "callable such as `preprocess=lambda x: x / 255.0` (predict_tiled does not guess "
            "the normalisation; if the model rescales its input itself, pass "
            "image.astype('float32'))",
            received=f"image.dtype={images.dtype} and preprocess=None",
        )
    if required[-1] is not None and images.shape[-1] != required[-1]:
        raise invalid_value(
            "image",
            f"the model's {required[-1]} input channels (convert a grayscale image to RGB, "
            "or read it in the model's color mode)",
            received=f"image.shape={images.shape}",
        )
    single = images.ndim == rank + 1
    return (images[None] if single else images), single


def _imagesto_numpy(image):
    """The image (or batch, or list of same-size images) as one NumPy array."""
    if isinstance(image, (list, tuple)):
        shapes = [tuple(np.shape(item)) for item in image]
        if len(set(shapes)) > 1:
            raise invalid_value(
                "image",
                "one image, a batch, or a list of images of one size (call predict_tiled on "
                "each image of another size)",
                received=f"a list of {len(shapes)} images of shapes {shapes}",
            )
    return to_numpy(image)


def _tile_starts(length, tile, overlap):
    """Evenly spread starts from 0 to `length - tile`, stride <= tile * (1 - overlap)."""
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1 - overlap)))
    count = -(-(length - tile) // stride) + 1
    return [int(s) for s in np.round(np.linspace(0, length - tile, count))]


def _weight_profiles(tile, blend, sigma_scale):
    """The blending weights of one tile along each of its axes (their outer product
    is the tile's map), each max 1 and never below 1e-6.

    The Gaussian is centred at `(size - 1) / 2`, so the map is symmetric
    under flips (MONAI centres it at `size // 2`).
    """
    if blend == "constant":
        return [np.ones(size, dtype="float32") for size in tile]
    profiles = []
    for size in tile:
        coords = np.arange(size, dtype="float64") - (size - 1) / 2
        profile = np.exp(-0.5 * (coords / (sigma_scale * size)) ** 2)
        # Far from the centre a small sigma underflows to 0; every pixel needs a weight.
        profiles.append(np.maximum(profile / profile.max(), 1e-6).astype("float32"))
    return profiles


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
        raise invalid_value(
            "model",
            "a model with a single output tensor",
            received=f"a model returning {type(probs).__name__}",
        )
    probs = to_numpy(probs)
    if probs.ndim != batch.ndim or probs.shape[:-1] != batch.shape[:-1]:
        axes = "height and width" if batch.ndim == 4 else "depth, height and width"
        raise invalid_value(
            "model",
            f"the model to keep the tiles' batch size, {axes}: an output of shape "
            f"({', '.join(map(str, batch.shape[:-1]))}, num_classes) for tiles of shape "
            f"{batch.shape}",
            received=f"output.shape={probs.shape}",
        )
    return probs.astype("float32", copy=False)
