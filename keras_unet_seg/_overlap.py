"""The overlap core that the losses and the metrics share.

From `y_true` and `y_pred` to float32 maps and their sums: the target map of
`y_pred`'s shape (one-hot from class ids where needed), the valid-pixel map of
`ignore_class`, pixel weights from `sample_weight`, probabilities from logits,
soft or hard confusion sums (true positives, false positives, false negatives
per class), the NaN penalty of invalid predictions and the classes that take
part in a class average; and the one definition of the scores from those counts,
`score` (`keras.ops`) and its NumPy twin `score_numpy`. Inputs are channels-last,
`(batch, *spatial, channels)`, images or volumes alike: every reduction reads its
axes from the tensor's rank. Private:
`keras_unet_seg.losses`, `keras_unet_seg.metrics` and `keras_unet_seg.evaluation`
are its users.

The scores: Dice `2 TP / (2 TP + FP + FN)`, IoU `TP / (TP + FP + FN)`, precision
`TP / (TP + FP)`, recall `TP / (TP + FN)` and the Tversky index
`TP / (TP + alpha FP + beta FN)`; a loss adds `smooth` to the numerator and the
denominator. The rule of 0/0, shared by the losses, the metrics, `evaluation` and
the evaluate report: a score whose denominator is 0 is 1 when nothing was got wrong
(no false positive and no false negative) and 0 otherwise. So every score of an
empty prediction of an empty mask is 1; precision of an empty prediction is 1 for
an empty mask and 0 for a non-empty one; recall of an empty mask is 1 for an empty
prediction and 0 for a non-empty one; a non-empty prediction of an empty mask and
an empty prediction of a non-empty mask score 0 everywhere else. Per class in
multi-class mode, each class scored on its own; the average over classes is the
caller's (the metrics leave out a class absent from labels and predictions, the
losses average every scored class).
"""

import math

import numpy as np
from keras import ops

from keras_unet_seg._validation import Shaped, Summary, invalid_value

# Probabilities are clipped to [EPSILON, 1 - EPSILON] before a log (as Keras
# does), and a zero count of valid pixels is floored to it.
EPSILON = 1e-7
# Logits are clipped to [-LOGIT_LIMIT, LOGIT_LIMIT]: an infinite logit is a saturated
# probability, and gives a finite loss (inf - inf would be NaN).
LOGIT_LIMIT = 1e4


# --------------------------------------------------------------------------- #
# The scores and their rule of 0/0
# --------------------------------------------------------------------------- #


def tversky(alpha, beta):
    """The terms of the Tversky index: `(tp, tp + alpha fp + beta fn)` from counts."""
    return lambda tp, fp, fn: (tp, tp + alpha * fp + beta * fn)


# Each score of confusion counts as (numerator, denominator) terms. Every one is a
# Tversky index (Dice is (0.5, 0.5), written with 2 TP so that `smooth` is added as
# MONAI and segmentation_models.pytorch add it).
SCORES = {
    "dice": lambda tp, fp, fn: (2 * tp, 2 * tp + fp + fn),
    "iou": tversky(1.0, 1.0),
    "precision": tversky(1.0, 0.0),
    "recall": tversky(0.0, 1.0),
}


def ratio(numerator, denominator, errors):
    """`numerator / denominator`; where the denominator is 0, 1 if `errors` is 0, else 0.

    `keras.ops` tensors (float32, the denominator >= 0); the module's rule of 0/0. A
    NaN stays NaN, and the gradient is finite everywhere else.
    """
    positive = ops.not_equal(denominator, 0.0)
    value = numerator / ops.where(positive, denominator, 1.0)
    no_error = ops.cast(ops.equal(errors, 0.0), value.dtype)
    return ops.where(positive, value, no_error)


def ratio_numpy(numerator, denominator, errors):
    """`ratio` of NumPy numbers or arrays, in float64."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    positive = denominator != 0
    value = numerator / np.where(positive, denominator, 1.0)
    return np.where(positive, value, (np.asarray(errors) == 0).astype(float))


def score(terms, true_pos, false_pos, false_neg, smooth=0.0):
    """`(numerator + smooth) / (denominator + smooth)` of `terms`, by the rule of 0/0.

    The one definition of every overlap score, for the losses and the metrics.

    Args:
        terms: a function of the counts giving `(numerator, denominator)`:
            `SCORES[name]` or `tversky(alpha, beta)`.
        true_pos, false_pos, false_neg: float32 `keras.ops` counts (soft or hard),
            of the same shape (per class, per image).
        smooth: float >= 0 added to the numerator and the denominator (losses);
            0 for the exact score.

    Returns:
        The scores, in [0, 1] for counts >= 0; NaN where a count is NaN.
    """
    numerator, denominator = terms(true_pos, false_pos, false_neg)
    return ratio(numerator + smooth, denominator + smooth, false_pos + false_neg)


def score_numpy(terms, true_pos, false_pos, false_neg, smooth=0.0):
    """`score` of NumPy counts (numbers or arrays), in float64."""
    true_pos, false_pos, false_neg = (
        np.asarray(c, float) for c in (true_pos, false_pos, false_neg)
    )
    numerator, denominator = terms(true_pos, false_pos, false_neg)
    return ratio_numpy(numerator + smooth, denominator + smooth, false_pos + false_neg)


# --------------------------------------------------------------------------- #
# Arguments
# --------------------------------------------------------------------------- #


def check_class_weights(value):
    """Accepts `None` or a list of non-negative numbers, not all zero; returns floats."""
    if value is None:
        return None
    expected = "None or a list of non-negative numbers, one per class"
    try:
        weights = [float(w) for w in value]
    except (TypeError, ValueError):
        raise invalid_value("class_weights", expected, value) from None
    if (
        not weights
        or not all(math.isfinite(w) and w >= 0 for w in weights)
        or not any(w > 0 for w in weights)
    ):
        raise invalid_value("class_weights", expected + ", not all zero", value)
    return weights


def scored_classes(num_channels, include_background, ignore_class):
    """Indices of the channels that take part in the class average."""
    if num_channels == 1:
        return [0]
    classes = [
        c for c in range(num_channels) if (include_background or c != 0) and c != ignore_class
    ]
    if not classes:
        expected = (
            f"at least one class left to score (ignore_class={ignore_class} with "
            f"{num_channels} channels)"
        )
        raise invalid_value("include_background", expected, include_background)
    return classes


# --------------------------------------------------------------------------- #
# Inputs -> float32 target and valid-pixel maps
# --------------------------------------------------------------------------- #


def channels(y_pred):
    """The number of channels of a channels-last `y_pred` of rank >= 3."""
    num_channels = y_pred.shape[-1]
    if len(y_pred.shape) < 3 or num_channels is None:
        raise invalid_value(
            "y_pred",
            "a channels-last tensor of rank >= 3, (batch, *spatial, channels), "
            "with a known number of channels",
            Shaped(y_pred),
        )
    return int(num_channels)


def _check_same_size(y_true, y_pred):
    """Batch and spatial sizes must agree (where both are known): no silent broadcasting."""
    pairs = zip(y_true.shape[:-1], y_pred.shape[:-1], strict=True)
    if any(a is not None and b is not None and a != b for a, b in pairs):
        expected = (
            f"the batch and spatial size of `y_pred`, whose shape is {tuple(y_pred.shape)} "
            "(every axis but the last must agree)"
        )
        raise invalid_value("y_true", expected, Shaped(y_true))


def _is_sparse(y_true, num_channels, sparse_y_true):
    """Whether `y_true` holds class ids; checks its last axis against `y_pred`'s channels."""
    last = y_true.shape[-1]
    if num_channels == 1:
        sparse = False
        expected = "a binary mask with one channel, since `y_pred` has one channel"
    else:
        sparse = (last == 1) if sparse_y_true is None else sparse_y_true
        kind = "sparse class ids (last axis 1)" if sparse else "one-hot labels"
        expected = f"{kind} for `y_pred` with {num_channels} channels"
    if last != (1 if sparse or num_channels == 1 else num_channels):
        raise invalid_value("y_true", expected, Shaped(y_true))
    return sparse


def _standardize_y_true(y_true, y_pred, sparse_y_true):
    """Gives `y_true` the rank of `y_pred`; decides between one-hot and sparse."""
    num_channels = channels(y_pred)
    rank = len(y_pred.shape)
    if len(y_true.shape) == rank - 1:
        y_true = ops.expand_dims(y_true, -1)
    if len(y_true.shape) != rank:
        raise invalid_value(
            "y_true",
            f"a tensor of rank {rank} or {rank - 1} to match `y_pred` of shape "
            f"{tuple(y_pred.shape)}",
            Shaped(y_true),
        )
    _check_same_size(y_true, y_pred)
    return y_true, _is_sparse(y_true, num_channels, sparse_y_true)


def _one_hot_valid(target, ignore_class, num_channels):
    """The valid-pixel map of one-hot labels: pixels not of channel `ignore_class`."""
    if not 0 <= ignore_class < num_channels:
        raise invalid_value(
            "ignore_class",
            f"a channel index in [0, {num_channels}) when `y_true` is one-hot",
            ignore_class,
        )
    ignored = target[..., ignore_class : ignore_class + 1]
    return ops.cast(ops.less(ignored, 0.5), "float32")


def _known_count(flags):
    """How many of the boolean `flags` are true, or `None` inside a traced graph.

    Under `tf.function` or `jax.jit` the values are not known while the graph is
    built, and no Python error can be raised from them.
    """
    try:
        return int(ops.convert_to_numpy(ops.sum(ops.cast(flags, "int32"))))
    except (RuntimeError, TypeError):  # a symbolic tf.Tensor; a JAX tracer
        return None


def _out_of_range(target, sparse, num_channels, ignore_class):
    """The map of target values outside the labels: NaN, or a value the labels cannot hold.

    Raises the `ValueError` when the values are known (eagerly) and some finite one
    is out of range (NaN targets are left to make the loss NaN).
    """
    if sparse:
        high = num_channels - 1
        expected = f"class ids in [0, {high}]"
        wrong = ops.logical_or(
            ops.not_equal(target, ops.round(target)),
            ops.logical_or(ops.less(target, 0.0), ops.greater(target, float(high))),
        )
    else:
        expected = "values in [0, 1]" + (
            " (a binary mask: divide a 0/255 mask by 255)" if num_channels == 1 else ""
        )
        wrong = ops.logical_or(ops.less(target, 0.0), ops.greater(target, 1.0))
    if ignore_class is not None:
        wrong = ops.logical_and(wrong, ops.not_equal(target, float(ignore_class)))
    count = _known_count(wrong)
    if count:
        low = float(ops.convert_to_numpy(ops.min(ops.where(wrong, target, float("inf")))))
        high = float(ops.convert_to_numpy(ops.max(ops.where(wrong, target, float("-inf")))))
        ignored = "" if ignore_class is None else f" or ignore_class={ignore_class}"
        outside = Summary(f"{count} values outside it, between {low:g} and {high:g}")
        raise invalid_value("y_true", expected + ignored, outside)
    return ops.logical_or(wrong, ops.isnan(target))


def targets_and_valid(y_true, y_pred, sparse_y_true, ignore_class):
    """Float32 target map of `y_pred`'s shape, and a (..., 1) valid-pixel map or None.

    The target is zero on the pixels that `valid` leaves out. Target values that the
    labels cannot hold (outside [0, 1], or class ids outside the classes, except
    `ignore_class`) raise a `ValueError` where the values are known (eager
    execution); inside a traced graph (`tf.function`, `jax.jit`), where no error can
    be raised, they and NaN targets make their pixels' target NaN, so that a loss or
    a score is NaN, never a silently wrong number.
    """
    y_true, sparse = _standardize_y_true(y_true, y_pred, sparse_y_true)
    num_channels = channels(y_pred)
    target = ops.cast(y_true, "float32")
    invalid = _out_of_range(target, sparse, num_channels, ignore_class)
    valid = None
    if num_channels > 1 and not sparse:
        if ignore_class is not None:
            valid = _one_hot_valid(target, ignore_class, num_channels)
    else:
        if ignore_class is not None:
            valid = ops.cast(ops.not_equal(target, float(ignore_class)), "float32")
        if num_channels > 1:
            class_ids = ops.arange(num_channels, dtype="float32")
            # Comparing with every class id gives the one-hot map; out-of-range
            # ids (an ignore label such as 255) give an all-zero row.
            target = ops.cast(ops.equal(target, class_ids), "float32")
    if valid is not None:
        target = target * valid
    # NaN on the channels of every invalid pixel (a one-hot row of a wrong id is all 0).
    target = target + ops.where(ops.any(invalid, axis=-1, keepdims=True), float("nan"), 0.0)
    return target, valid


def sample_weights(sample_weight, rank, per_image):
    """Splits `sample_weight` into `(image_weight, pixel_weight)`, one of them `None`.

    `(batch,)` weights are image weights with `per_image=True`; with
    `per_image=False` they weigh each image's pixels, as `(batch, ...)` and
    `(batch, ..., 1)` weights do. Pixel weights come back as float32
    `(batch, ..., 1)` (or broadcastable) maps.
    """
    sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
    weight_rank = len(sample_weight.shape)
    if weight_rank == 1:
        if per_image:
            return sample_weight, None
        return None, ops.reshape(sample_weight, (-1,) + (1,) * (rank - 1))
    if weight_rank == rank - 1:
        return None, ops.expand_dims(sample_weight, -1)
    if weight_rank == rank and sample_weight.shape[-1] == 1:
        return None, sample_weight
    raise invalid_value(
        "sample_weight",
        "weights of shape (batch,), (batch, *spatial) or (batch, *spatial, 1)",
        Shaped(sample_weight),
    )


# --------------------------------------------------------------------------- #
# Predictions and sums
# --------------------------------------------------------------------------- #


def probabilities(y_pred, from_logits):
    """Float32 probabilities; for binary logits also the shared exp(-|z|) term."""
    y_pred = ops.cast(y_pred, "float32")
    if not from_logits:
        return y_pred, None
    y_pred = ops.clip(y_pred, -LOGIT_LIMIT, LOGIT_LIMIT)
    if channels(y_pred) > 1:
        return ops.softmax(y_pred, axis=-1), None
    # A sigmoid written with exp(-|z|): never overflows, and its gradient stays
    # exact (not rounded to zero) on both saturated sides, e.g. at z = +30.
    positive = ops.greater_equal(y_pred, 0.0)
    exp_neg_abs = ops.exp(ops.where(positive, -y_pred, y_pred))
    probs = ops.where(positive, 1.0, exp_neg_abs) / (1.0 + exp_neg_abs)
    return probs, exp_neg_abs


def non_finite_penalty(y_pred, from_logits, axes):
    """0, or NaN where `y_pred` holds an invalid value, summed over `axes`.

    Added to a loss or to counts, it makes them NaN for a NaN prediction (and an
    infinite probability) instead of letting a comparison or a clip hide it; its
    gradient is zero.
    """
    y_pred = ops.cast(y_pred, "float32")
    invalid = ops.isnan(y_pred) if from_logits else ops.logical_not(ops.isfinite(y_pred))
    return ops.sum(ops.where(invalid, float("nan"), 0.0), axis=axes)


def reduce_axes(rank, per_image):
    """The axes summed per image (spatial), or over the whole batch."""
    return tuple(range(1, rank - 1)) if per_image else tuple(range(rank - 1))


def confusion_sums(target, predicted, axes, weight=None):
    """(Weighted) true positives, false positives and false negatives per class.

    Soft for probabilities, counts for 0/1 predictions. `axes=None` pools every
    pixel of the batch into `(classes,)` sums.
    """
    overlap = target * predicted
    # p - p*t >= 0 and t - p*t >= 0 hold exactly in floating point for p, t in
    # [0, 1], so the sums are never negative and every score stays in [0, 1].
    maps = (overlap, predicted - overlap, target - overlap)
    if weight is not None:
        maps = tuple(m * weight for m in maps)
    if axes is None:
        # Flattened against the static class count rather than summed over the
        # axes of the runtime shape: TensorFlow's oneDNN Conv2D returns an empty
        # batch (what a MirroredStrategy replica gets from a short last batch)
        # with the input's channel count, e.g. (0, h, w, 2) for 1 output channel.
        maps = tuple(ops.reshape(m, (-1, target.shape[-1])) for m in maps)
        axes = 0
    return tuple(ops.sum(m, axis=axes) for m in maps)


def take_classes(values, classes, num_channels):
    """The entries of the last (class) axis listed in `classes`."""
    if len(classes) == num_channels:
        return values
    return ops.take(values, classes, axis=-1)


def class_average(values, classes, class_weights, num_channels):
    """Averages the last (class) axis over `classes`, weighted by `class_weights`."""
    if class_weights is not None and len(class_weights) != num_channels:
        raise invalid_value(
            "class_weights",
            f"one weight per channel of `y_pred` ({num_channels})",
            class_weights,
        )
    values = take_classes(values, classes, num_channels)
    if class_weights is None:
        return ops.mean(values, axis=-1)
    weights = [class_weights[c] for c in classes]
    total = sum(weights)
    if total <= 0:
        raise invalid_value(
            "class_weights", "a positive weight for at least one scored class", class_weights
        )
    weights = ops.convert_to_tensor([w / total for w in weights], dtype="float32")
    return ops.sum(values * weights, axis=-1)
