"""Per-image and per-class segmentation scores, boundary distances included.

NumPy arrays in, plain Python numbers out: what `keras-unet-seg evaluate` reports for
each image and class, usable on any predicted mask (from this library or not).

Conventions:

- Overlap scores (Dice, IoU, precision, recall) are exact ratios of the pixel counts,
  with the rule of 0/0 of the metrics (`keras_unet_seg.metrics`) and the losses: a
  score whose denominator is 0 is 1 when nothing was got wrong and 0 otherwise. So
  an empty prediction of an empty mask scores 1 everywhere; an empty prediction of a
  non-empty mask has Dice, IoU, recall and precision 0; a non-empty prediction of
  an empty mask has Dice, IoU, precision and recall 0.
- Masks are images `(height, width)` or volumes `(depth, height, width)`; what is
  said of pixels holds for voxels.
- Boundaries are the mask's pixels with a neighbour outside it across a face (4 in
  2-D, 6 in 3-D; pixels on the image's border count as boundary, as in MONAI).
  Distances are Euclidean, in units of `spacing`: the size of a pixel along each
  axis, `(height, width)` or `(depth, height, width)` (such as micrometres, or a
  NIfTI file's voxel spacing in millimetres), one number for each axis of the masks.
- `hd95`: the larger of the two directed 95th percentiles of boundary distances
  (MONAI's `percentile=95`); `assd`: the average symmetric surface distance;
  `nsd`: the normalized surface Dice (Nikolov et al., 2021), the fraction of both
  boundaries within `tolerance` of the other.
- When both masks are empty the boundaries agree: `hd95 = assd = 0`, `nsd = 1`. When
  exactly one is empty they cannot be compared: `hd95 = assd = inf`, `nsd = 0`.
"""

import math
import os

import keras
import numpy as np

from keras_unet_seg import _model_facts, _validation
from keras_unet_seg._overlap import SCORES, score_numpy
from keras_unet_seg.data._images import channels_for
from keras_unet_seg.inference._files import class_ids, display_image, is_volume_model
from keras_unet_seg.inference._resize import scaled_size
from keras_unet_seg.inference._spec import spec_of
from keras_unet_seg.inference._tiles import predict_tiled

__all__ = [
    "boundary_distances",
    "confusion_matrix",
    "evaluate_directory",
    "segmentation_scores",
    "summarize",
]

METRICS = ("dice", "iou", "precision", "recall", "hd95", "assd", "nsd")
# The scores of each image and the pooled ones of `evaluate_directory`.
IMAGE_METRICS = ("dice", "iou", "precision", "recall")


def _import_ndimage():
    try:
        from scipy import ndimage
    except ImportError:  # pragma: no cover - scipy is a dependency
        raise ImportError(
            "Boundary metrics need SciPy's distance transforms: `pip install scipy`."
        ) from None
    return ndimage


# The spatial axes of a mask of each rank, as the messages name them.
_AXES = {2: "(height, width)", 3: "(depth, height, width)"}


def _as_ids(mask, name):
    """Class ids of a 2-D or 3-D mask, a trailing axis of 1 (a channel) dropped."""
    array = np.asarray(mask)
    if array.ndim in (3, 4) and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in _AXES or array.dtype.kind not in "biu":
        expected = (
            "a 2-D or 3-D array of class ids, (height, width) or (depth, height, width) "
            "with an optional trailing axis of 1, integers or bools"
        )
        received = _validation.Summary(f"array of shape {array.shape} and dtype {array.dtype}")
        raise _validation.invalid_value(name, expected, received)
    return array.astype(np.int64)


def _check_pair(y_true, y_pred, names=("y_true", "y_pred")):
    """Both masks as int64 class ids of one shape; errors name the arguments `names`."""
    y_true, y_pred = _as_ids(y_true, names[0]), _as_ids(y_pred, names[1])
    if y_true.shape != y_pred.shape:
        received = f"{names[0]}.shape={y_true.shape}, {names[1]}.shape={y_pred.shape}"
        raise _validation.invalid_value(list(names), "masks of the same shape", received=received)
    return y_true, y_pred


def _spacing(spacing, ndim):
    """`spacing` as `ndim` positive floats: `None` (1), a number, or one per axis."""
    if spacing is None:
        return (1.0,) * ndim
    expected = f"a positive number or {ndim} positive numbers, one per axis {_AXES[ndim]}"
    try:
        values = np.broadcast_to(np.asarray(spacing, float), (ndim,))
    except (TypeError, ValueError):
        raise _validation.invalid_value("spacing", expected, spacing) from None
    if not all(v > 0 and math.isfinite(v) for v in values):
        raise _validation.invalid_value("spacing", expected, spacing)
    return tuple(float(v) for v in values)


def confusion_matrix(y_true, y_pred, num_classes, ignore_class=None):
    """Pixel counts by true class (rows) and predicted class (columns).

    Args:
        y_true: class ids `(height, width)` or `(depth, height, width)` (or with a
            trailing axis of 1).
        y_pred: predicted class ids, the same shape.
        num_classes: int, the number of classes (2 for a binary mask: background and
            foreground).
        ignore_class: int or `None`. Pixels of this true class are not counted.

    Returns:
        An int64 array `(num_classes, num_classes)`.

    Example:

    >>> import numpy as np
    >>> confusion_matrix(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]]), 2).tolist()
    [[1, 0], [1, 2]]
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    keep = np.ones(y_true.shape, bool) if ignore_class is None else y_true != ignore_class
    true, pred = y_true[keep], y_pred[keep]
    for name, ids in (("y_true", true), ("y_pred", pred)):
        if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            received = _validation.Summary(f"values in [{ids.min()}, {ids.max()}]")
            raise _validation.invalid_value(name, f"class ids in [0, {num_classes - 1}]", received)
    flat = true * num_classes + pred
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def _boundary(mask):
    ndimage = _import_ndimage()
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def boundary_distances(true_mask, pred_mask, spacing=None):
    """Distances from each boundary pixel of one mask to the other mask's boundary.

    Images or volumes: a boundary pixel (or voxel) is one of the mask with a
    neighbour outside it across a face (4 neighbours in 2-D, 6 in 3-D); the distances
    are Euclidean, in units of `spacing`.

    Args:
        true_mask: bool array `(height, width)` or `(depth, height, width)` (or with a
            trailing axis of 1).
        pred_mask: bool array, the same shape.
        spacing: the size of a pixel along each axis, `(height, width)` or
            `(depth, height, width)` (such as the voxel spacing of a NIfTI file, in
            millimetres), or one number for every axis. Defaults to 1.

    Returns:
        `(true_to_pred, pred_to_true)`: float arrays, one distance per boundary pixel
        of `true_mask` and of `pred_mask`. Empty when a mask is empty; `None` for
        both when exactly one mask is empty (there is no boundary to reach).

    Raises:
        InvalidArgumentError: for masks of different shapes or of another rank, or a
            `spacing` with another number of axes than the masks.

    Example:

    >>> import numpy as np
    >>> cube = np.zeros((12, 8, 8), bool)
    >>> cube[2:6, 2:6, 2:6] = True
    >>> moved = np.roll(cube, 3, axis=0)  # 3 voxels deeper
    >>> to_pred, to_true = boundary_distances(cube, moved, spacing=(2.0, 0.5, 0.5))
    >>> float(to_pred.max()), float(to_true.max())  # 3 voxels of 2 mm
    (6.0, 6.0)
    """
    ndimage = _import_ndimage()
    true_mask, pred_mask = (np.asarray(m, bool) for m in (true_mask, pred_mask))
    true_mask, pred_mask = _check_pair(true_mask, pred_mask, ("true_mask", "pred_mask"))
    spacing = _spacing(spacing, true_mask.ndim)
    true_edge, pred_edge = _boundary(true_mask != 0), _boundary(pred_mask != 0)
    if not true_edge.any() and not pred_edge.any():
        return np.zeros(0), np.zeros(0)
    if not true_edge.any() or not pred_edge.any():
        return None, None
    to_pred = ndimage.distance_transform_edt(~pred_edge, sampling=spacing)
    to_true = ndimage.distance_transform_edt(~true_edge, sampling=spacing)
    return to_pred[true_edge], to_true[pred_edge]


def _boundary_scores(true_mask, pred_mask, spacing, tolerance):
    true_to_pred, pred_to_true = boundary_distances(true_mask, pred_mask, spacing)
    if true_to_pred is None:
        return {"hd95": math.inf, "assd": math.inf, "nsd": 0.0}
    both = np.concatenate([true_to_pred, pred_to_true])
    if not both.size:
        return {"hd95": 0.0, "assd": 0.0, "nsd": 1.0}
    return {
        "hd95": float(max(np.percentile(true_to_pred, 95), np.percentile(pred_to_true, 95))),
        "assd": float(both.mean()),
        "nsd": float(np.mean(both <= tolerance)),
    }


def _overlap_scores(tp, fp, fn):
    return {name: float(score_numpy(SCORES[name], tp, fp, fn)) for name in IMAGE_METRICS}


def segmentation_scores(
    y_true,
    y_pred,
    num_classes=2,
    *,
    spacing=None,
    tolerance=1.0,
    ignore_class=None,
    include_background=False,
    boundary=True,
):
    """Scores of one predicted mask against its truth, class by class.

    Args:
        y_true: class ids of an image `(height, width)` or a volume
            `(depth, height, width)` (or with a trailing axis of 1); for a binary mask,
            0/1 (or bools).
        y_pred: predicted class ids, the same shape (threshold probabilities first).
        num_classes: int, default 2 (background and foreground of a binary mask).
        spacing: the size of a pixel along each axis, `(height, width)` or
            `(depth, height, width)` (a volume's voxel spacing, as read from its file),
            or one number for every axis (default 1): the unit of `hd95`, `assd` and
            `tolerance`.
        tolerance: float, default 1.0. Distance within which boundaries agree, for
            `nsd`.
        ignore_class: int or `None`. True pixels of this class are left out of the
            counts and of both masks' boundaries.
        include_background: bool, default `False`. Score class 0 too.
        boundary: bool, default `True`. Compute `hd95`, `assd` and `nsd` (SciPy).

    Returns:
        A dict by class id: `{"tp", "fp", "fn", "dice", "iou", "precision",
        "recall"}` and, with `boundary`, `{"hd95", "assd", "nsd"}`; see the module's
        conventions for empty masks.

    Example:

    >>> import numpy as np
    >>> truth = np.zeros((8, 8), int)
    >>> truth[2:6, 2:6] = 1
    >>> scores = segmentation_scores(truth, np.roll(truth, 1, axis=1))[1]
    >>> round(scores["dice"], 3), scores["hd95"], scores["nsd"]
    (0.75, 1.0, 1.0)
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    spacing = _spacing(spacing, y_true.ndim)
    matrix = confusion_matrix(y_true, y_pred, num_classes, ignore_class)
    valid = np.ones(y_true.shape, bool) if ignore_class is None else y_true != ignore_class
    scores = {}
    for class_id in range(0 if include_background else 1, num_classes):
        tp = int(matrix[class_id, class_id])
        fp = int(matrix[:, class_id].sum()) - tp
        fn = int(matrix[class_id].sum()) - tp
        entry = {"tp": tp, "fp": fp, "fn": fn, **_overlap_scores(tp, fp, fn)}
        if boundary:
            true_mask = (y_true == class_id) & valid
            pred_mask = (y_pred == class_id) & valid
            entry.update(_boundary_scores(true_mask, pred_mask, spacing, tolerance))
        scores[class_id] = entry
    return scores


def summarize(per_image):
    """Per-class summary of per-image scores: pooled overlap and mean boundary scores.

    Args:
        per_image: a list of `segmentation_scores` results.

    Returns:
        A dict by class id: Dice, IoU, precision and recall from the confusion counts
        pooled over every image (as the streaming metrics compute them), and the mean
        of each boundary score over the images where it is finite, with
        `"images"` (how many images) and `"infinite"` (how many had an infinite
        `hd95`: exactly one of truth and prediction empty).
    """
    summary = {}
    for class_id in sorted({c for scores in per_image for c in scores}):
        entries = [scores[class_id] for scores in per_image if class_id in scores]
        tp, fp, fn = (sum(entry[k] for entry in entries) for k in ("tp", "fp", "fn"))
        row = {"tp": tp, "fp": fp, "fn": fn, **_overlap_scores(tp, fp, fn)}
        if "hd95" in entries[0]:
            for name in ("hd95", "assd", "nsd"):
                finite = [entry[name] for entry in entries if math.isfinite(entry[name])]
                row[name] = float(np.mean(finite)) if finite else math.inf
            row["infinite"] = sum(not math.isfinite(entry["hd95"]) for entry in entries)
        row["images"] = len(entries)
        summary[class_id] = row
    return summary


def evaluate_directory(
    model,
    directory,
    *,
    subset="auto",
    image_size=None,
    validation_split=None,
    seed=0,
    color_mode="rgb",
    intensity="auto",
    mask_threshold=None,
    scale=None,
    tile_size=256,
    overlap=0.25,
    batch_size=4,
    tta=False,
    threshold=0.5,
    spacing=None,
    tolerance=1.0,
    spec=None,
    return_predictions=False,
    thumbnail_size=None,
    verbose=1,
):
    """Scores a model on a folder of images and masks, image by image and pooled.

    What `keras-unet-seg evaluate` computes (the Evaluation guide); pooled over all pixels.
    A model built on volumes scores pairs of volume files (`from_volumes`' folders).

    Args:
        model: a Keras model returning probabilities, such as a `UNet`.
        directory: str, holding `<subset>/images` and `<subset>/masks` (or `images/`).
        subset: str or `None`, default `"auto"`: `"validation"` with a
            `validation_split`, `None` (`directory/images`) when it exists, else `"val"`.
        image_size: `None` (default: own size), or an int or `(height, width)` to resize to.
        validation_split, seed: the fraction of a flat folder held out and its seed.
        color_mode, intensity, mask_threshold: how images and masks are read, as in
            training (`SegmentationDataset`); default `"rgb"`, `"auto"`, `None`.
        scale: `None` (default: 1), or a factor or `(height, width)` factors to resize
            images by before the model (and the probabilities back).
        tile_size, overlap, batch_size, tta: `predict_tiled`'s tiling, default 256,
            0.25, 4 and `False`.
        threshold: float in [0, 1], default 0.5. Foreground at or above it (one class).
        spacing: pixel size (a number or a pair, default 1; volumes: `(z, y, x)`, default
            each file's voxel spacing), the unit of the distances.
        tolerance: float, default 1.0. Boundary agreement distance of `nsd`.
        spec: `None` (default), or an `InferenceSpec` (`InferenceSpec.from_run(run)`)
            that gives `color_mode`, `intensity`, `scale`, the tiling and `threshold`
            (leave those arguments at their defaults), as `predict_directory` takes it.
        return_predictions: bool, default `False`. Also return each image's arrays.
        thumbnail_size: int or `None` (default: full size). With `return_predictions`,
            each image's arrays subsampled (nearest) to this longer side at most.
        verbose: int, default 1. 0 is silent; 1 shows a progress bar.

    Returns:
        A dict: `data`, `subset`, `threshold`, `num_images`, `overall` (pooled Dice,
        IoU, precision, recall), `classes` (`summarize`), `per_image` (`image`, `mask`,
        the four scores, `classes`), `confusion` (int64, at least 2x2); with
        `return_predictions`, `predictions`: per image `image` (as overlays draw it),
        `mask`, `probabilities`, `y_true` and `y_pred` (class ids; a volume's middle slice).

    Raises:
        ValueError: naming the folder, file or argument at fault.
    """
    covered = dict(color_mode=color_mode, intensity=intensity, scale=scale, tile_size=tile_size)
    covered.update(overlap=overlap, tta=tta, threshold=threshold)
    spec = spec_of(spec, covered, evaluate_directory)
    volumes = is_volume_model(model)
    tiling = {**spec.tiled_arguments(volumes), "batch_size": batch_size}
    distances = _distances(spacing, tolerance, volumes)
    reading = _reading(spec, mask_threshold, directory, (subset, validation_split, seed))
    reading["num_classes"] = _model_facts.num_classes(model, channels_for(spec.color_mode) or 3)
    dataset = (_VolumePairs if volumes else _read_pairs)(directory, image_size, reading)
    scoring = _Scoring(reading["num_classes"], spec.threshold, distances)
    keep = _kept(return_predictions, thumbnail_size)
    predictions = list(_score_pairs(model, dataset, tiling, scoring, keep, verbose))
    report = {"data": directory, "subset": reading["subset"], "threshold": spec.threshold}
    report.update(scoring.report(), **({"predictions": predictions} if keep else {}))
    return report


def _kept(return_predictions, thumbnail_size):
    """What `_score_pairs` keeps of each pair: nothing (`False`), its arrays (`True`), or
    its arrays subsampled to `thumbnail_size` (checked)."""
    if thumbnail_size is not None:
        _validation.check_positive_int("thumbnail_size", thumbnail_size)
    return return_predictions and (thumbnail_size or True)


def _distances(spacing, tolerance, volumes):
    """The checked `spacing` and `tolerance` of `evaluate_directory`; the spacing is
    `None` for volumes without one: that of each volume's file."""
    tolerance = _validation.check_positive("tolerance", tolerance)
    if volumes and spacing is None:
        return {"spacing": None, "tolerance": tolerance}
    return {"spacing": _spacing(spacing, 3 if volumes else 2), "tolerance": tolerance}


def _reading(spec, mask_threshold, directory, split):
    """`from_directory`'s arguments of `evaluate_directory`'s: how images and masks are
    read, and the `subset` (and the split: `(subset, validation_split, seed)`)."""
    subset, validation_split, seed = split
    reading = {"color_mode": spec.color_mode, "intensity": spec.intensity}
    reading.update(mask_threshold=mask_threshold)
    reading["subset"] = _resolve_subset(directory, subset, validation_split)
    if validation_split is not None:
        reading.update(validation_split=validation_split, seed=seed)
    return reading


def _resolve_subset(directory, subset, validation_split):
    if subset != "auto":
        return subset
    if validation_split is not None:
        return "validation"
    return None if os.path.isdir(os.path.join(directory, "images")) else "val"


def _read_pairs(directory, image_size, reading):
    from keras_unet_seg.data import SegmentationDataset

    image_size = _validation.check_size("image_size", image_size, allow_none=True)
    return SegmentationDataset.from_directory(
        directory, image_size=image_size, batch_size=None, shuffle=False, **reading
    )


class _VolumePairs:
    """The pairs of a folder of volumes (`SegmentationDataset.from_volumes` finds and
    checks them), read whole one at a time, with what `_score_pairs` takes of a dataset:
    `image_paths`, `mask_paths`, `spacings` and `as_numpy_iterator()`."""

    def __init__(self, directory, image_size, reading):
        from keras_unet_seg.data import SegmentationDataset

        for name, value in (("image_size", image_size), ("validation_split", None)):
            value = reading.get(name, value)
            if value is not None:  # volumes: at their own size, from split or flat folders
                raise _validation.invalid_value(name, "None for volumes", value)
        self.reading = reading
        found = SegmentationDataset.from_volumes(
            directory,
            reading["subset"],
            patch_size=(8, 8, 8),  # found and checked only: no patch is cut
            batch_size=None,
            num_classes=reading["num_classes"],
            mask_threshold=reading["mask_threshold"],
            intensity=reading["intensity"],
            shuffle=False,
        )
        self.image_paths, self.mask_paths = found.image_paths, found.mask_paths
        self.spacings = found.spacings

    def as_numpy_iterator(self):
        """`(image, mask)` of each pair: the normalised volume and its mask's target."""
        from keras_unet_seg.data import normalize_volume, read_volume
        from keras_unet_seg.data._masks import convert_mask

        for image_path, mask_path in zip(self.image_paths, self.mask_paths, strict=True):
            values = read_volume(mask_path).array[..., 0]
            if values.dtype.kind in "fb":  # checked integers (from_volumes)
                values = values.astype(np.int64)
            mask = convert_mask(
                values, mask_path, self.reading["num_classes"], self.reading["mask_threshold"]
            )
            yield normalize_volume(read_volume(image_path).array, self.reading["intensity"]), mask


class _Scoring:
    """The four metrics of each image and pooled, and the per-class scores and counts."""

    def __init__(self, num_classes, threshold, distances):
        self.threshold = threshold
        self.distances = distances  # `spacing` and `tolerance` of the boundary scores
        self.pooled = self._metrics(num_classes, threshold)
        self.single = self._metrics(num_classes, threshold)
        self.per_image = []
        self.confusion = np.zeros((max(num_classes, 2),) * 2, np.int64)

    @staticmethod
    def _metrics(num_classes, threshold):
        from keras_unet_seg.metrics import DiceCoefficient, IoUScore, Precision, Recall

        classes = (DiceCoefficient, IoUScore, Precision, Recall)
        return {
            name: cls(num_classes=num_classes, threshold=threshold)
            for name, cls in zip(IMAGE_METRICS, classes, strict=True)
        }

    def add(self, paths, mask, probabilities, ids, spacing=None):
        """Scores one image (`ids`: its true and predicted class ids); `spacing`, that of
        its file, counts where the scoring has none."""
        y_true, y_pred = ids
        scores = {}
        for name in IMAGE_METRICS:
            self.single[name].reset_state()
            self.single[name].update_state(mask[None], probabilities[None])
            self.pooled[name].update_state(mask[None], probabilities[None])
            scores[name] = float(self.single[name].result())
        distances = {**self.distances, "spacing": self.distances["spacing"] or spacing}
        by_class = segmentation_scores(y_true, y_pred, len(self.confusion), **distances)
        self.confusion += confusion_matrix(y_true, y_pred, len(self.confusion))
        image, mask_path = paths
        self.per_image.append({"image": image, "mask": mask_path, **scores, "classes": by_class})

    def report(self):
        return {
            "num_images": len(self.per_image),
            "overall": {name: float(self.pooled[name].result()) for name in IMAGE_METRICS},
            "classes": summarize([row["classes"] for row in self.per_image]),
            "per_image": self.per_image,
            "confusion": self.confusion,
        }


def _subsampled(array, size):
    """`array` (height and width first) subsampled so its longer side is at most `size`."""
    step = -(-max(array.shape[:2]) // size)
    return np.ascontiguousarray(array[::step, ::step]) if step > 1 else array


def _score_pairs(model, dataset, tiling, scoring, keep, verbose):
    """Predicts (`predict_tiled`'s `tiling` arguments) and scores each pair; yields its
    arrays if `keep` (`True`: full size; an int: subsampled to that longer side)."""
    progress = keras.utils.Progbar(len(dataset.image_paths), unit_name="image", verbose=verbose)
    spacings = getattr(dataset, "spacings", [None] * len(dataset.image_paths))
    pairs = zip(dataset.image_paths, dataset.mask_paths, dataset.as_numpy_iterator(), strict=True)
    for index, (image_path, mask_path, (image, mask)) in enumerate(pairs):
        if image.ndim == 3:
            scaled_size(image.shape[:2], tiling["scale"], image.shape[-1], f"'{image_path}'")
        probabilities = predict_tiled(model, image, **tiling)
        y_true = mask[..., 0].astype(np.int64)
        y_pred = class_ids(probabilities, scoring.threshold)
        ids = (y_true, y_pred)
        scoring.add((image_path, mask_path), mask, probabilities, ids, spacings[index])
        if keep:
            arrays = {
                "image": image,
                "mask": mask,
                "probabilities": probabilities,
                "y_true": y_true,
                "y_pred": y_pred,
            }
            if image.ndim == 4:  # a volume: its middle slice along depth
                arrays = {name: array[len(array) // 2] for name, array in arrays.items()}
            arrays["image"] = display_image(arrays["image"])
            if keep is not True:
                arrays = {name: _subsampled(array, keep) for name, array in arrays.items()}
            yield arrays
        progress.update(index + 1)
