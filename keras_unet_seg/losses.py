"""Overlap losses for segmentation: Dice, Jaccard, Tversky, focal Tversky, BCE + Dice.

Each loss is a pure `keras.ops` function (`dice_loss`, `jaccard_loss`, ...) plus
a thin `keras.losses.Loss` subclass (`DiceLoss`, `JaccardLoss`, ...), so it runs
on the TensorFlow, JAX and PyTorch backends and survives `model.save`.

Conventions shared by every loss here:

- `y_pred` is channels-last. One channel means binary segmentation
  (probabilities, or logits through a sigmoid with `from_logits=True`); more
  than one channel means multi-class (probabilities, or logits through a
  softmax over the channel axis). `y_true` is a 0/1 mask for binary, and
  either one-hot or sparse integer class ids (`(batch, ..., 1)` or
  `(batch, ...)`) for multi-class.
- Everything is computed in float32 whatever the input dtype: a float16 sum of
  a 256x256 mask passes float16's maximum of 65504.
- `smooth` (default `1e-5`) is added to the numerator and the denominator of
  each overlap score, so an empty prediction of an empty mask scores 1 and
  has loss 0. With `smooth=0` the score of that case is 0 (loss 1), as in
  `keras.losses.Dice`; it stays finite either way.
- `per_image=True` scores each image over its spatial axes, then averages the
  images; `per_image=False` pools the whole batch into one score.
- In multi-class mode, each class is scored on its own and the class losses
  are averaged (weighted by `class_weights`); `include_background=False`
  leaves channel 0 out of that average, and `ignore_class` leaves out both
  the pixels labelled with it and, when it is a channel, that channel.
- `y_true` and `y_pred` must agree in batch and spatial size (a `ValueError`
  names both shapes; checked where the shapes are known, so always in eager
  mode).
- A NaN prediction, or an infinite probability, makes the loss NaN (it never
  scores as perfect, and `keras.callbacks.TerminateOnNaN` sees it). Infinite
  logits are saturated probabilities: logits are clipped to `[-1e4, 1e4]`, so
  the loss stays finite.
"""

import math
import numbers

import keras
from keras import ops

__all__ = [
    "BCEDiceLoss",
    "CombinedLoss",
    "DiceLoss",
    "FocalTverskyLoss",
    "JaccardLoss",
    "TverskyLoss",
    "bce_dice_loss",
    "dice_loss",
    "focal_tversky_loss",
    "get",
    "jaccard_loss",
    "tversky_loss",
]

_PACKAGE = "keras_unet_seg"
# Probabilities are clipped to [_EPSILON, 1 - _EPSILON] before a log (as Keras
# does), and a zero denominator (possible only with smooth=0) is floored to it.
_EPSILON = 1e-7
# Logits are clipped to [-_LOGIT_LIMIT, _LOGIT_LIMIT]: an infinite logit is a saturated
# probability, and gives a finite loss (inf - inf would be NaN).
_LOGIT_LIMIT = 1e4


# --------------------------------------------------------------------------- #
# Argument validation (shared with metrics.py)
# --------------------------------------------------------------------------- #


def _invalid(name, expected, value):
    return ValueError(
        f"Invalid value for argument `{name}`. Expected {expected}. Received: {name}={value!r}"
    )


class _Shaped:
    """Shows a tensor in an error message by its shape: `<tensor of shape (2, 8)>`."""

    def __init__(self, tensor):
        self.shape = tuple(tensor.shape)

    def __repr__(self):
        return f"<tensor of shape {self.shape}>"


def _is_real(value):
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise _invalid(name, "a boolean (True or False)", value)
    return value


def _check_optional_bool(name, value):
    if value is not None and not isinstance(value, bool):
        raise _invalid(name, "None (detect from the shapes), True or False", value)
    return value


def _check_non_negative(name, value):
    if not _is_real(value) or value < 0:
        raise _invalid(name, "a finite number >= 0", value)
    return float(value)


def _check_positive(name, value):
    if not _is_real(value) or value <= 0:
        raise _invalid(name, "a finite number > 0", value)
    return float(value)


def _check_ignore_class(value):
    if value is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool)):
        raise _invalid("ignore_class", "None or an integer class id", value)
    return None if value is None else int(value)


def _check_class_weights(value):
    if value is None:
        return None
    try:
        weights = [float(w) for w in value]
    except (TypeError, ValueError):
        raise _invalid(
            "class_weights", "None or a list of non-negative numbers, one per class", value
        ) from None
    if (
        not weights
        or not all(math.isfinite(w) and w >= 0 for w in weights)
        or not any(w > 0 for w in weights)
    ):
        raise _invalid(
            "class_weights",
            "None or a list of non-negative numbers, one per class, not all zero",
            value,
        )
    return weights


# --------------------------------------------------------------------------- #
# The shared core: inputs -> float32 (target, probability, valid-pixel) maps
# --------------------------------------------------------------------------- #


def _channels(y_pred):
    num_channels = y_pred.shape[-1]
    if len(y_pred.shape) < 3 or num_channels is None:
        raise _invalid(
            "y_pred",
            "a channels-last tensor of rank >= 3, (batch, *spatial, channels), "
            "with a known number of channels",
            _Shaped(y_pred),
        )
    return int(num_channels)


def _standardize_y_true(y_true, y_pred, sparse_y_true):
    """Gives `y_true` the rank of `y_pred`; decides between one-hot and sparse."""
    num_channels = _channels(y_pred)
    rank = len(y_pred.shape)
    if len(y_true.shape) == rank - 1:
        y_true = ops.expand_dims(y_true, -1)
    if len(y_true.shape) != rank:
        raise _invalid(
            "y_true",
            f"a tensor of rank {rank} or {rank - 1} to match `y_pred` of shape "
            f"{tuple(y_pred.shape)}",
            _Shaped(y_true),
        )
    _check_same_size(y_true, y_pred)
    last = y_true.shape[-1]
    if num_channels == 1:
        sparse = False
        if last != 1:
            raise _invalid(
                "y_true",
                "a binary mask with one channel, since `y_pred` has one channel",
                _Shaped(y_true),
            )
    else:
        sparse = (last == 1) if sparse_y_true is None else sparse_y_true
        expected_last = 1 if sparse else num_channels
        if last != expected_last:
            kind = "sparse class ids (last axis 1)" if sparse else "one-hot labels"
            raise _invalid(
                "y_true",
                f"{kind} for `y_pred` with {num_channels} channels",
                _Shaped(y_true),
            )
    return y_true, sparse


def _check_same_size(y_true, y_pred):
    """Batch and spatial sizes must agree (where both are known): no silent broadcasting."""
    pairs = zip(y_true.shape[:-1], y_pred.shape[:-1], strict=True)
    if any(a is not None and b is not None and a != b for a, b in pairs):
        raise ValueError(
            "Invalid value for argument `y_true`. Expected the batch and spatial size of "
            f"`y_pred`, whose shape is {tuple(y_pred.shape)} (every axis but the last must "
            f"agree). Received: y_true.shape={tuple(y_true.shape)}"
        )


def _non_finite_penalty(y_pred, from_logits, axes):
    """0, or NaN where `y_pred` holds an invalid value, summed over `axes`.

    Added to a loss or to counts, it makes them NaN for a NaN prediction (and an
    infinite probability) instead of letting a comparison or a clip hide it; its
    gradient is zero.
    """
    y_pred = ops.cast(y_pred, "float32")
    invalid = ops.isnan(y_pred) if from_logits else ops.logical_not(ops.isfinite(y_pred))
    return ops.sum(ops.where(invalid, float("nan"), 0.0), axis=axes)


def _targets_and_valid(y_true, y_pred, sparse_y_true, ignore_class):
    """Float32 target map of `y_pred`'s shape, and a (..., 1) valid-pixel map or None."""
    y_true, sparse = _standardize_y_true(y_true, y_pred, sparse_y_true)
    num_channels = _channels(y_pred)
    y_true = ops.cast(y_true, "float32")
    valid = None
    if num_channels == 1 or sparse:
        if ignore_class is not None:
            valid = ops.cast(ops.not_equal(y_true, float(ignore_class)), "float32")
        if num_channels == 1:
            target = y_true if valid is None else y_true * valid
        else:
            class_ids = ops.arange(num_channels, dtype="float32")
            # Comparing with every class id gives the one-hot map; out-of-range
            # ids (an ignore label such as 255) give an all-zero row.
            target = ops.cast(ops.equal(y_true, class_ids), "float32")
    else:
        target = y_true
        if ignore_class is not None:
            if not 0 <= ignore_class < num_channels:
                raise _invalid(
                    "ignore_class",
                    f"a channel index in [0, {num_channels}) when `y_true` is one-hot",
                    ignore_class,
                )
            ignored = target[..., ignore_class : ignore_class + 1]
            valid = ops.cast(ops.less(ignored, 0.5), "float32")
    if valid is not None:
        target = target * valid
    return target, valid


def _scored_classes(num_channels, include_background, ignore_class):
    """Indices of the channels that take part in the class average."""
    if num_channels == 1:
        return [0]
    classes = [
        c for c in range(num_channels) if (include_background or c != 0) and c != ignore_class
    ]
    if not classes:
        raise ValueError(
            "Invalid value for argument `include_background`. Expected at least one class "
            f"left to score. Received: include_background={include_background}, "
            f"ignore_class={ignore_class} with {num_channels} channels"
        )
    return classes


def _probabilities(y_pred, from_logits):
    """Float32 probabilities; for binary logits also the shared exp(-|z|) term."""
    y_pred = ops.cast(y_pred, "float32")
    if not from_logits:
        return y_pred, None
    y_pred = ops.clip(y_pred, -_LOGIT_LIMIT, _LOGIT_LIMIT)
    if _channels(y_pred) > 1:
        return ops.softmax(y_pred, axis=-1), None
    # A sigmoid written with exp(-|z|): never overflows, and its gradient stays
    # exact (not rounded to zero) on both saturated sides, e.g. at z = +30.
    positive = ops.greater_equal(y_pred, 0.0)
    exp_neg_abs = ops.exp(ops.where(positive, -y_pred, y_pred))
    probs = ops.where(positive, 1.0, exp_neg_abs) / (1.0 + exp_neg_abs)
    return probs, exp_neg_abs


def _reduce_axes(rank, per_image):
    return tuple(range(1, rank - 1)) if per_image else tuple(range(rank - 1))


def _confusion_sums(target, probs, axes, weight=None):
    """(Weighted) soft true positives, false positives and false negatives per class."""
    overlap = target * probs
    # p - p*t >= 0 and t - p*t >= 0 hold exactly in floating point for p, t in
    # [0, 1], so the sums are never negative and every score stays in [0, 1].
    false_pos = probs - overlap
    false_neg = target - overlap
    if weight is not None:
        overlap, false_pos, false_neg = overlap * weight, false_pos * weight, false_neg * weight
    return (
        ops.sum(overlap, axis=axes),
        ops.sum(false_pos, axis=axes),
        ops.sum(false_neg, axis=axes),
    )


def _ratio(numerator, error):
    """numerator / (numerator + error), in [0, 1], finite even when both are 0."""
    return numerator / ops.maximum(numerator + error, _EPSILON)


def _class_average(values, classes, class_weights, num_channels):
    """Averages the last (class) axis over `classes`, weighted by `class_weights`."""
    if class_weights is not None and len(class_weights) != num_channels:
        raise _invalid(
            "class_weights",
            f"one weight per channel of `y_pred` ({num_channels})",
            class_weights,
        )
    if len(classes) != num_channels:
        values = ops.take(values, classes, axis=-1)
    if class_weights is None:
        return ops.mean(values, axis=-1)
    weights = [class_weights[c] for c in classes]
    total = sum(weights)
    if total <= 0:
        raise _invalid(
            "class_weights", "a positive weight for at least one scored class", class_weights
        )
    weights = ops.convert_to_tensor([w / total for w in weights], dtype="float32")
    return ops.sum(values * weights, axis=-1)


def _overlap_loss(y_true, y_pred, options, score_fn, with_cross_entropy=False, pixel_weight=None):
    """Shared body of every loss: per-class scores -> class average -> (batch,) or ().

    `pixel_weight`, a float32 map `(batch, ..., 1)`, weighs each pixel in the sums.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    num_channels = _channels(y_pred)
    classes = _scored_classes(num_channels, options["include_background"], options["ignore_class"])
    target, valid = _targets_and_valid(
        y_true, y_pred, options["sparse_y_true"], options["ignore_class"]
    )
    logits = ops.cast(y_pred, "float32")
    probs, exp_neg_abs = _probabilities(logits, options["from_logits"])
    if valid is not None:
        probs = probs * valid
    axes = _reduce_axes(len(y_pred.shape), options["per_image"])
    true_pos, false_pos, false_neg = _confusion_sums(target, probs, axes, pixel_weight)
    class_loss = score_fn(true_pos, false_pos, false_neg, options["smooth"])
    loss = _class_average(class_loss, classes, options["class_weights"], num_channels)
    channel_axis = len(y_pred.shape) - 1
    loss = loss + _non_finite_penalty(y_pred, options["from_logits"], (*axes, channel_axis))
    if not with_cross_entropy:
        return loss
    if options["from_logits"]:
        logits = ops.clip(logits, -_LOGIT_LIMIT, _LOGIT_LIMIT)
    if pixel_weight is not None:
        valid = pixel_weight if valid is None else valid * pixel_weight
    cross_entropy = _cross_entropy(
        target, logits, probs, exp_neg_abs, valid, options["from_logits"], axes
    )
    return options["bce_weight"] * cross_entropy + options["dice_weight"] * loss


def _cross_entropy(target, logits, probs, exp_neg_abs, valid, from_logits, axes):
    """Mean binary (one channel) or categorical cross-entropy over the valid pixels."""
    if logits.shape[-1] == 1:
        if from_logits:
            # max(z, 0) - z*t + log(1 + exp(-|z|)), written with `where` so the
            # gradient at z = 0 is the true one, sigmoid(0) - t.
            positive = ops.greater_equal(logits, 0.0)
            relu = ops.where(positive, logits, 0.0)
            pixel = relu - logits * target + ops.log1p(exp_neg_abs)
        else:
            clipped = ops.clip(probs, _EPSILON, 1.0 - _EPSILON)
            pixel = -(target * ops.log(clipped) + (1.0 - target) * ops.log(1.0 - clipped))
    else:
        if from_logits:
            log_probs = ops.log_softmax(logits, axis=-1)
        else:
            log_probs = ops.log(ops.clip(probs, _EPSILON, 1.0))
        pixel = -ops.sum(target * log_probs, axis=-1, keepdims=True)
    pixel_axes = (*axes, len(logits.shape) - 1)
    if valid is None:
        return ops.mean(pixel, axis=pixel_axes)
    weight_sum = ops.sum(valid, axis=pixel_axes)
    return ops.sum(pixel * valid, axis=pixel_axes) / ops.maximum(weight_sum, _EPSILON)


# --------------------------------------------------------------------------- #
# Score functions: (tp, fp, fn, smooth) -> per-class loss
# --------------------------------------------------------------------------- #


def _dice_score_loss(true_pos, false_pos, false_neg, smooth):
    return 1.0 - _ratio(2.0 * true_pos + smooth, false_pos + false_neg)


def _jaccard_score_loss(true_pos, false_pos, false_neg, smooth):
    return 1.0 - _ratio(true_pos + smooth, false_pos + false_neg)


def _tversky_score_loss(alpha, beta):
    def score_loss(true_pos, false_pos, false_neg, smooth):
        return 1.0 - _ratio(true_pos + smooth, alpha * false_pos + beta * false_neg)

    return score_loss


def _focal_tversky_score_loss(alpha, beta, gamma):
    tversky = _tversky_score_loss(alpha, beta)

    def score_loss(true_pos, false_pos, false_neg, smooth):
        base = tversky(true_pos, false_pos, false_neg, smooth)
        if gamma == 1.0:
            return base
        # x**gamma with gamma < 1 has an infinite slope at 0: the inner `where`
        # keeps the power away from 0, so a perfect prediction has loss 0 and a
        # finite (zero) gradient. The smallest positive float32 `base` is
        # 2**-24, where the slope is still finite.
        positive = ops.greater(base, 0.0)
        safe = ops.where(positive, base, 1.0)
        return ops.where(positive, ops.power(safe, gamma), 0.0)

    return score_loss


# --------------------------------------------------------------------------- #
# Pure functions
# --------------------------------------------------------------------------- #


def _options(
    from_logits,
    smooth,
    per_image,
    sparse_y_true,
    class_weights,
    ignore_class,
    include_background,
):
    return {
        "from_logits": _check_bool("from_logits", from_logits),
        "smooth": _check_non_negative("smooth", smooth),
        "per_image": _check_bool("per_image", per_image),
        "sparse_y_true": _check_optional_bool("sparse_y_true", sparse_y_true),
        "class_weights": _check_class_weights(class_weights),
        "ignore_class": _check_ignore_class(ignore_class),
        "include_background": _check_bool("include_background", include_background),
    }


def _check_tversky(alpha, beta):
    alpha = _check_non_negative("alpha", alpha)
    beta = _check_non_negative("beta", beta)
    if alpha == 0 and beta == 0:
        raise ValueError(
            "Invalid value for argument `alpha`. Expected `alpha` and `beta` not both 0 "
            f"(the loss would ignore every error). Received: alpha={alpha}, beta={beta}"
        )
    return alpha, beta


def dice_loss(
    y_true,
    y_pred,
    from_logits=False,
    smooth=1e-5,
    per_image=True,
    sparse_y_true=None,
    class_weights=None,
    ignore_class=None,
    include_background=True,
):
    """Soft Dice loss, `1 - (2 TP + smooth) / (2 TP + FP + FN + smooth)`.

    TP, FP and FN are soft counts: `sum(t * p)`, `sum((1 - t) * p)` and
    `sum(t * (1 - p))`. Empty-mask convention: an empty prediction of an empty
    mask has loss 0 (score 1) while `smooth > 0`; with `smooth=0` it has loss 1.

    Args:
        y_true: ground truth: a 0/1 mask `(batch, ..., 1)` for binary, or
            one-hot `(batch, ..., C)` or class ids `(batch, ..., 1)` /
            `(batch, ...)` for multi-class.
        y_pred: predictions `(batch, ..., C)`: probabilities, or logits with
            `from_logits=True`.
        from_logits: bool, whether `y_pred` holds logits (sigmoid for one
            channel, softmax over channels otherwise). Defaults to `False`.
        smooth: float >= 0 added to numerator and denominator. Defaults to
            `1e-5`.
        per_image: bool; `True` scores each image and averages, `False` pools
            the batch. Defaults to `True`.
        sparse_y_true: `None` (detect: one label channel against several
            prediction channels means class ids), `True` or `False`.
        class_weights: optional list with one non-negative weight per channel
            for the class average. Defaults to `None` (equal weights).
        ignore_class: optional class id whose pixels are left out (for a
            one-hot or in-range id, the class is also left out of the average).
        include_background: bool; `False` leaves channel 0 out of the class
            average in multi-class mode. Defaults to `True`.

    Returns:
        float32 tensor of per-image losses `(batch,)`, or a scalar when
        `per_image=False`.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    >>> y_pred = np.array([[[[1.0], [0.0]], [[0.0], [0.0]]]])
    >>> round(float(dice_loss(y_true, y_pred, smooth=0.0)[0]), 4)  # 1 - 2/3
    0.3333

    Reference:

    - [Milletari et al., 2016](https://arxiv.org/abs/1606.04797)
    """
    options = _options(
        from_logits,
        smooth,
        per_image,
        sparse_y_true,
        class_weights,
        ignore_class,
        include_background,
    )
    return _overlap_loss(y_true, y_pred, options, _dice_score_loss)


def jaccard_loss(
    y_true,
    y_pred,
    from_logits=False,
    smooth=1e-5,
    per_image=True,
    sparse_y_true=None,
    class_weights=None,
    ignore_class=None,
    include_background=True,
):
    """Soft Jaccard (IoU) loss, `1 - (TP + smooth) / (TP + FP + FN + smooth)`.

    Empty-mask convention: an empty prediction of an empty mask has loss 0
    while `smooth > 0`; with `smooth=0` it has loss 1. Arguments and return
    value as in `dice_loss`.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    >>> y_pred = np.array([[[[1.0], [0.0]], [[0.0], [0.0]]]])
    >>> round(float(jaccard_loss(y_true, y_pred, smooth=0.0)[0]), 4)  # 1 - 1/2
    0.5

    Reference:

    - [Rahman and Wang, 2016](https://doi.org/10.1007/978-3-319-50835-1_22)
    """
    options = _options(
        from_logits,
        smooth,
        per_image,
        sparse_y_true,
        class_weights,
        ignore_class,
        include_background,
    )
    return _overlap_loss(y_true, y_pred, options, _jaccard_score_loss)


def tversky_loss(
    y_true,
    y_pred,
    alpha=0.5,
    beta=0.5,
    from_logits=False,
    smooth=1e-5,
    per_image=True,
    sparse_y_true=None,
    class_weights=None,
    ignore_class=None,
    include_background=True,
):
    """Tversky loss, `1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth)`.

    `alpha` weights false positives and `beta` false negatives, as in Salehi
    et al.; `alpha = beta = 0.5` is the Dice loss (exactly so with `smooth=0`).
    Note that `keras.losses.Tversky` puts its `alpha` on the false negatives:
    `keras.losses.Tversky(alpha=a, beta=b)` is our `alpha=b, beta=a`.
    Empty-mask convention: an empty prediction of an empty mask has loss 0
    while `smooth > 0`. Other arguments and return value as in `dice_loss`.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    >>> y_pred = np.array([[[[1.0], [0.0]], [[1.0], [0.0]]]])
    >>> loss = tversky_loss(y_true, y_pred, alpha=0.3, beta=0.7, smooth=0.0)
    >>> round(float(loss[0]), 4)  # 1 - 1 / (1 + 0.3 + 0.7)
    0.5

    Reference:

    - [Salehi et al., 2017](https://arxiv.org/abs/1706.05721)
    """
    alpha, beta = _check_tversky(alpha, beta)
    options = _options(
        from_logits,
        smooth,
        per_image,
        sparse_y_true,
        class_weights,
        ignore_class,
        include_background,
    )
    return _overlap_loss(y_true, y_pred, options, _tversky_score_loss(alpha, beta))


def focal_tversky_loss(
    y_true,
    y_pred,
    alpha=0.3,
    beta=0.7,
    gamma=0.75,
    from_logits=False,
    smooth=1e-5,
    per_image=True,
    sparse_y_true=None,
    class_weights=None,
    ignore_class=None,
    include_background=True,
):
    """Focal Tversky loss, `(1 - TI) ** gamma` with TI the Tversky index.

    Convention: the exponent is `gamma` itself. Abraham and Khan write
    `(1 - TI) ** (1 / gamma)` and recommend their `gamma = 4/3`, which is our
    default `gamma = 0.75`; `gamma = 1` gives the Tversky loss. Their
    recommended weights put 0.7 on false negatives, which is our `beta=0.7`
    (`alpha` weights false positives here). Class losses are averaged, not
    summed, so the loss stays in [0, 1]. Empty-mask convention: an empty
    prediction of an empty mask has loss 0 while `smooth > 0`. Other arguments
    and return value as in `dice_loss`.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    >>> y_pred = np.array([[[[1.0], [0.0]], [[1.0], [0.0]]]])
    >>> loss = focal_tversky_loss(y_true, y_pred, gamma=2.0, smooth=0.0)
    >>> round(float(loss[0]), 4)  # (1 - 1 / (1 + 0.3 + 0.7)) ** 2
    0.25

    Reference:

    - [Abraham and Khan, 2019](https://arxiv.org/abs/1810.07842)
    """
    alpha, beta = _check_tversky(alpha, beta)
    gamma = _check_positive("gamma", gamma)
    options = _options(
        from_logits,
        smooth,
        per_image,
        sparse_y_true,
        class_weights,
        ignore_class,
        include_background,
    )
    return _overlap_loss(y_true, y_pred, options, _focal_tversky_score_loss(alpha, beta, gamma))


def bce_dice_loss(
    y_true,
    y_pred,
    bce_weight=1.0,
    dice_weight=1.0,
    from_logits=False,
    smooth=1e-5,
    per_image=True,
    sparse_y_true=None,
    class_weights=None,
    ignore_class=None,
    include_background=True,
):
    """`bce_weight * cross-entropy + dice_weight * dice_loss`.

    The cross-entropy is binary for one channel and categorical for several,
    averaged over the (non-ignored) pixels. With `from_logits=True` it is
    computed from the logits in the stable form
    `max(z, 0) - z t + log(1 + exp(-|z|))` (or `log_softmax`); on probabilities
    they are clipped to `[1e-7, 1 - 1e-7]`, as Keras does. `class_weights` and
    `include_background` apply to the Dice term only. The value is not bounded
    by 1. Empty-mask convention: the Dice term of an empty prediction of an
    empty mask is 0 while `smooth > 0`. Other arguments and return value as in
    `dice_loss`.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    >>> logits = np.array([[[[9.0], [-9.0]], [[-9.0], [-9.0]]]])
    >>> loss = bce_dice_loss(y_true, logits, from_logits=True, smooth=0.0)
    >>> round(float(loss[0]), 2)  # BCE ~ 9/4, Dice ~ 1/3
    2.58

    Reference:

    - [Isensee et al., 2021 (nnU-Net)](https://doi.org/10.1038/s41592-020-01008-z)
    """
    options = _options(
        from_logits,
        smooth,
        per_image,
        sparse_y_true,
        class_weights,
        ignore_class,
        include_background,
    )
    options["bce_weight"] = _check_non_negative("bce_weight", bce_weight)
    options["dice_weight"] = _check_non_negative("dice_weight", dice_weight)
    return _overlap_loss(y_true, y_pred, options, _dice_score_loss, with_cross_entropy=True)


# --------------------------------------------------------------------------- #
# Loss classes
# --------------------------------------------------------------------------- #


def _check_weight(value):
    if not _is_real(value) or value < 0:
        raise _invalid("weights", "finite numbers >= 0", value)
    return float(value)


class _LossArithmetic:
    """`loss_a + loss_b`, `0.5 * loss` and `loss * 0.5` give a `CombinedLoss`."""

    def _pairs(self):
        return [(self, 1.0)]

    def __add__(self, other):
        if isinstance(other, numbers.Real) and not isinstance(other, bool) and other == 0:
            return self  # so that sum([loss_a, loss_b]) works
        if not isinstance(other, keras.losses.Loss):
            return NotImplemented
        other_pairs = other._pairs() if isinstance(other, _LossArithmetic) else [(other, 1.0)]
        pairs = self._pairs() + other_pairs
        return CombinedLoss([p[0] for p in pairs], [p[1] for p in pairs])

    def __radd__(self, other):
        if isinstance(other, numbers.Real) and not isinstance(other, bool) and other == 0:
            return self
        if not isinstance(other, keras.losses.Loss):
            return NotImplemented
        pairs = [(other, 1.0), *self._pairs()]
        return CombinedLoss([p[0] for p in pairs], [p[1] for p in pairs])

    def __mul__(self, weight):
        if not isinstance(weight, numbers.Real) or isinstance(weight, bool):
            return NotImplemented
        weight = _check_weight(weight)
        pairs = self._pairs()
        return CombinedLoss([p[0] for p in pairs], [p[1] * weight for p in pairs])

    __rmul__ = __mul__


class _OverlapLoss(_LossArithmetic, keras.losses.Loss):
    """Shared base: stores, validates and serialises the common options."""

    def __init__(
        self,
        from_logits=False,
        smooth=1e-5,
        per_image=True,
        sparse_y_true=None,
        class_weights=None,
        ignore_class=None,
        include_background=True,
        reduction="sum_over_batch_size",
        name=None,
    ):
        # float32 whatever the global policy: Loss.__call__ converts the inputs.
        super().__init__(name=name, reduction=reduction, dtype="float32")
        self._opts = _options(
            from_logits,
            smooth,
            per_image,
            sparse_y_true,
            class_weights,
            ignore_class,
            include_background,
        )
        self.from_logits = from_logits
        self.smooth = smooth
        self.per_image = per_image
        self.sparse_y_true = sparse_y_true
        self.class_weights = self._opts["class_weights"]
        self.ignore_class = ignore_class
        self.include_background = include_background

    def _score_loss(self):
        raise NotImplementedError

    def call(self, y_true, y_pred):
        return self._compute(y_true, y_pred)

    def _compute(self, y_true, y_pred, pixel_weight=None):
        return _overlap_loss(
            y_true, y_pred, self._opts, self._score_loss(), pixel_weight=pixel_weight
        )

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Like `keras.losses.Loss.__call__`; pixel weights go into the sums.

        A `(batch,)` `sample_weight` weighs the per-image losses (Keras' rule) when
        `per_image=True`, and each image's pixels in the pooled sums when
        `per_image=False`; a per-pixel `(batch, ...)` or `(batch, ..., 1)` one
        weighs the pixels in the sums (the U-Net paper's weight maps).
        """
        if sample_weight is None:
            return super().__call__(y_true, y_pred)
        sample_weight = ops.convert_to_tensor(sample_weight, dtype="float32")
        weight_rank = len(sample_weight.shape)
        if weight_rank == 0 or (weight_rank == 1 and self.per_image):
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        with keras.name_scope(self.name):
            y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
            y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
            rank = len(y_pred.shape)
            if weight_rank == 1:
                pixel_weight = ops.reshape(sample_weight, (-1,) + (1,) * (rank - 1))
            elif weight_rank == rank - 1:
                pixel_weight = ops.expand_dims(sample_weight, -1)
            elif weight_rank == rank and sample_weight.shape[-1] == 1:
                pixel_weight = sample_weight
            else:
                raise _invalid(
                    "sample_weight",
                    "weights of shape (batch,), (batch, *spatial) or (batch, *spatial, 1)",
                    _Shaped(sample_weight),
                )
            losses = self._compute(y_true, y_pred, pixel_weight)
            if self.reduction in (None, "none") or len(losses.shape) == 0:
                return losses
            if self.reduction == "sum":
                return ops.sum(losses)
            return ops.mean(losses)

    def get_config(self):
        return {
            "name": self.name,
            "reduction": self.reduction,
            "from_logits": self.from_logits,
            "smooth": self.smooth,
            "per_image": self.per_image,
            "sparse_y_true": self.sparse_y_true,
            "class_weights": None if self.class_weights is None else list(self.class_weights),
            "ignore_class": self.ignore_class,
            "include_background": self.include_background,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DiceLoss(_OverlapLoss):
    """Soft Dice loss, `1 - (2 TP + smooth) / (2 TP + FP + FN + smooth)`.

    Binary when `y_pred` has one channel (sigmoid probabilities, or logits
    with `from_logits=True`); multi-class with softmax over several channels,
    with one-hot or sparse integer `y_true`. Computed in float32 whatever the
    input dtype. Add and weight it with other losses:
    `0.5 * DiceLoss() + keras.losses.BinaryCrossentropy()`.

    Empty-mask convention: an empty prediction of an empty mask has loss 0
    (score 1) while `smooth > 0`; with `smooth=0` it has loss 1, as
    `keras.losses.Dice`. With `smooth=0` and `per_image=False` this equals
    `keras.losses.Dice()`; with `per_image=True`,
    `keras.losses.Dice(axis=(1, 2, 3))` (up to Keras' 1e-7 epsilon).

    Args:
        from_logits: bool, whether `y_pred` holds logits. Defaults to `False`.
        smooth: float >= 0 added to numerator and denominator. Defaults to
            `1e-5`.
        per_image: bool; `True` scores each image over its spatial axes and
            averages the images, `False` pools the batch. Defaults to `True`.
        sparse_y_true: `None` (detect: one label channel against several
            prediction channels means class ids), `True` or `False`.
            Defaults to `None`.
        class_weights: optional list with one non-negative weight per channel
            of `y_pred`, for the class average. Defaults to `None`.
        ignore_class: optional integer label (e.g. 255) whose pixels are left
            out; when it is a channel of `y_pred`, that class is also left out
            of the average. Defaults to `None`.
        include_background: bool; `False` leaves channel 0 out of the class
            average (multi-class only). Defaults to `True`.
        reduction: reduction of the per-image losses, as in
            `keras.losses.Loss`. Defaults to `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"dice_loss"`.

    Call arguments:
        y_true: `(batch, ..., 1)` 0/1 mask, `(batch, ..., C)` one-hot labels
            or `(batch, ..., 1)` / `(batch, ...)` integer class ids.
        y_pred: `(batch, ..., C)` probabilities or logits.
        sample_weight: optional weights. `(batch,)`: with `per_image=True` the
            weights of the per-image losses (as in Keras), with
            `per_image=False` the weight of each image's pixels in the pooled
            sums. `(batch, ...)` or `(batch, ..., 1)`: the weight of each pixel
            in the sums (0 leaves a pixel out), e.g. the border-emphasising
            weight maps of the U-Net paper.

    Returns:
        The reduced loss, a float32 scalar by default.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    >>> y_pred = np.array([[[[1.0], [0.0]], [[0.0], [0.0]]]])
    >>> round(float(DiceLoss(smooth=0.0)(y_true, y_pred)), 4)
    0.3333
    >>> round(float(DiceLoss()(np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 1)))), 4)
    0.0

    Reference:

    - [Milletari et al., 2016](https://arxiv.org/abs/1606.04797)
    """

    def __init__(
        self,
        from_logits=False,
        smooth=1e-5,
        per_image=True,
        sparse_y_true=None,
        class_weights=None,
        ignore_class=None,
        include_background=True,
        reduction="sum_over_batch_size",
        name="dice_loss",
    ):
        super().__init__(
            from_logits=from_logits,
            smooth=smooth,
            per_image=per_image,
            sparse_y_true=sparse_y_true,
            class_weights=class_weights,
            ignore_class=ignore_class,
            include_background=include_background,
            reduction=reduction,
            name=name,
        )

    def _score_loss(self):
        return _dice_score_loss


@keras.saving.register_keras_serializable(package=_PACKAGE)
class JaccardLoss(_OverlapLoss):
    """Soft Jaccard (IoU) loss, `1 - (TP + smooth) / (TP + FP + FN + smooth)`.

    Options, inputs and dtype handling as in `DiceLoss`.

    Empty-mask convention: an empty prediction of an empty mask has loss 0
    while `smooth > 0`; with `smooth=0` it has loss 1.

    Args:
        from_logits: bool, whether `y_pred` holds logits. Defaults to `False`.
        smooth: float >= 0 added to numerator and denominator. Defaults to
            `1e-5`.
        per_image: bool, score each image then average (`True`) or pool the
            batch (`False`). Defaults to `True`.
        sparse_y_true: `None` (detect), `True` or `False`. Defaults to `None`.
        class_weights: optional list of per-channel weights. Defaults to
            `None`.
        ignore_class: optional label whose pixels are left out. Defaults to
            `None`.
        include_background: bool, score channel 0 in multi-class mode.
            Defaults to `True`.
        reduction: as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"jaccard_loss"`.

    Call arguments:
        y_true: ground truth, as in `DiceLoss`.
        y_pred: probabilities or logits, as in `DiceLoss`.
        sample_weight: optional `(batch,)` image weights or `(batch, ...)` /
            `(batch, ..., 1)` pixel weights (see `DiceLoss`).

    Returns:
        The reduced loss, a float32 scalar by default.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    >>> y_pred = np.array([[[[1.0], [0.0]], [[0.0], [0.0]]]])
    >>> round(float(JaccardLoss(smooth=0.0)(y_true, y_pred)), 4)
    0.5

    Reference:

    - [Rahman and Wang, 2016](https://doi.org/10.1007/978-3-319-50835-1_22)
    """

    def __init__(
        self,
        from_logits=False,
        smooth=1e-5,
        per_image=True,
        sparse_y_true=None,
        class_weights=None,
        ignore_class=None,
        include_background=True,
        reduction="sum_over_batch_size",
        name="jaccard_loss",
    ):
        super().__init__(
            from_logits=from_logits,
            smooth=smooth,
            per_image=per_image,
            sparse_y_true=sparse_y_true,
            class_weights=class_weights,
            ignore_class=ignore_class,
            include_background=include_background,
            reduction=reduction,
            name=name,
        )

    def _score_loss(self):
        return _jaccard_score_loss


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TverskyLoss(_OverlapLoss):
    """Tversky loss, `1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth)`.

    `alpha` weights false positives and `beta` false negatives, as in Salehi
    et al. (raise `beta` to favour recall on small structures);
    `alpha = beta = 0.5` is the Dice loss (exactly so with `smooth=0`).
    `keras.losses.Tversky` puts its `alpha` on the false negatives:
    `keras.losses.Tversky(alpha=a, beta=b)` equals
    `TverskyLoss(alpha=b, beta=a, smooth=0, per_image=False)`.
    Options, inputs and dtype handling as in `DiceLoss`.

    Empty-mask convention: an empty prediction of an empty mask has loss 0
    while `smooth > 0`; with `smooth=0` it has loss 1.

    Args:
        alpha: float >= 0, weight of the false positives. Defaults to `0.5`.
        beta: float >= 0, weight of the false negatives. Defaults to `0.5`.
        from_logits: bool, whether `y_pred` holds logits. Defaults to `False`.
        smooth: float >= 0 added to numerator and denominator. Defaults to
            `1e-5`.
        per_image: bool, score each image then average (`True`) or pool the
            batch (`False`). Defaults to `True`.
        sparse_y_true: `None` (detect), `True` or `False`. Defaults to `None`.
        class_weights: optional list of per-channel weights. Defaults to
            `None`.
        ignore_class: optional label whose pixels are left out. Defaults to
            `None`.
        include_background: bool, score channel 0 in multi-class mode.
            Defaults to `True`.
        reduction: as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"tversky_loss"`.

    Call arguments:
        y_true: ground truth, as in `DiceLoss`.
        y_pred: probabilities or logits, as in `DiceLoss`.
        sample_weight: optional `(batch,)` image weights or `(batch, ...)` /
            `(batch, ..., 1)` pixel weights (see `DiceLoss`).

    Returns:
        The reduced loss, a float32 scalar by default.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    >>> y_pred = np.array([[[[1.0], [0.0]], [[1.0], [0.0]]]])
    >>> loss = TverskyLoss(alpha=0.3, beta=0.7, smooth=0.0)
    >>> round(float(loss(y_true, y_pred)), 4)
    0.5

    Reference:

    - [Salehi et al., 2017](https://arxiv.org/abs/1706.05721)
    """

    def __init__(
        self,
        alpha=0.5,
        beta=0.5,
        from_logits=False,
        smooth=1e-5,
        per_image=True,
        sparse_y_true=None,
        class_weights=None,
        ignore_class=None,
        include_background=True,
        reduction="sum_over_batch_size",
        name="tversky_loss",
    ):
        super().__init__(
            from_logits=from_logits,
            smooth=smooth,
            per_image=per_image,
            sparse_y_true=sparse_y_true,
            class_weights=class_weights,
            ignore_class=ignore_class,
            include_background=include_background,
            reduction=reduction,
            name=name,
        )
        self._alpha, self._beta = _check_tversky(alpha, beta)
        self.alpha = alpha
        self.beta = beta

    def _score_loss(self):
        return _tversky_score_loss(self._alpha, self._beta)

    def get_config(self):
        config = super().get_config()
        config.update({"alpha": self.alpha, "beta": self.beta})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FocalTverskyLoss(_OverlapLoss):
    """Focal Tversky loss, `(1 - TI) ** gamma` with TI the Tversky index.

    `TI = (TP + smooth) / (TP + alpha FP + beta FN + smooth)`, `alpha` on the
    false positives and `beta` on the false negatives, as in `TverskyLoss`.

    Convention for `gamma`: the exponent is `gamma` itself. Abraham and Khan
    write `(1 - TI) ** (1 / gamma)` and recommend their `gamma = 4/3`; that is
    our default `gamma = 0.75`, which raises the loss (and its gradient) of
    well-segmented images less than linearly, focusing on the hard ones.
    `gamma = 1` is `TverskyLoss`. Their `alpha = 0.7` on false negatives is our
    default `beta = 0.7`. Class losses are averaged (the paper sums them), so
    the loss stays in [0, 1]. Options, inputs and dtype handling as in
    `DiceLoss`.

    Empty-mask convention: an empty prediction of an empty mask has loss 0
    while `smooth > 0`; with `smooth=0` it has loss 1. The gradient at a
    perfect prediction is finite (zero) although `x ** 0.75` has an infinite
    slope at 0.

    Args:
        alpha: float >= 0, weight of the false positives. Defaults to `0.3`.
        beta: float >= 0, weight of the false negatives. Defaults to `0.7`.
        gamma: float > 0, the exponent. Defaults to `0.75`.
        from_logits: bool, whether `y_pred` holds logits. Defaults to `False`.
        smooth: float >= 0 added to numerator and denominator. Defaults to
            `1e-5`.
        per_image: bool, score each image then average (`True`) or pool the
            batch (`False`). Defaults to `True`.
        sparse_y_true: `None` (detect), `True` or `False`. Defaults to `None`.
        class_weights: optional list of per-channel weights. Defaults to
            `None`.
        ignore_class: optional label whose pixels are left out. Defaults to
            `None`.
        include_background: bool, score channel 0 in multi-class mode.
            Defaults to `True`.
        reduction: as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"focal_tversky_loss"`.

    Call arguments:
        y_true: ground truth, as in `DiceLoss`.
        y_pred: probabilities or logits, as in `DiceLoss`.
        sample_weight: optional `(batch,)` image weights or `(batch, ...)` /
            `(batch, ..., 1)` pixel weights (see `DiceLoss`).

    Returns:
        The reduced loss, a float32 scalar by default.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    >>> y_pred = np.array([[[[1.0], [0.0]], [[1.0], [0.0]]]])
    >>> loss = FocalTverskyLoss(gamma=2.0, smooth=0.0)
    >>> round(float(loss(y_true, y_pred)), 4)
    0.25

    Reference:

    - [Abraham and Khan, 2019](https://arxiv.org/abs/1810.07842)
    """

    def __init__(
        self,
        alpha=0.3,
        beta=0.7,
        gamma=0.75,
        from_logits=False,
        smooth=1e-5,
        per_image=True,
        sparse_y_true=None,
        class_weights=None,
        ignore_class=None,
        include_background=True,
        reduction="sum_over_batch_size",
        name="focal_tversky_loss",
    ):
        super().__init__(
            from_logits=from_logits,
            smooth=smooth,
            per_image=per_image,
            sparse_y_true=sparse_y_true,
            class_weights=class_weights,
            ignore_class=ignore_class,
            include_background=include_background,
            reduction=reduction,
            name=name,
        )
        self._alpha, self._beta = _check_tversky(alpha, beta)
        self._gamma = _check_positive("gamma", gamma)
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma

    def _score_loss(self):
        return _focal_tversky_score_loss(self._alpha, self._beta, self._gamma)

    def get_config(self):
        config = super().get_config()
        config.update({"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BCEDiceLoss(_OverlapLoss):
    """`bce_weight * cross-entropy + dice_weight * DiceLoss`, the usual pairing.

    The cross-entropy is binary for one channel and categorical for several,
    averaged over the (non-ignored) pixels of each image (`per_image=True`) or
    of the batch. With `from_logits=True` it uses the stable logits form
    (`max(z, 0) - z t + log(1 + exp(-|z|))`, or `log_softmax`); probabilities
    are clipped to `[1e-7, 1 - 1e-7]` first, as Keras does, so
    `from_logits=True` on `z` matches probabilities `sigmoid(z)` only while
    `|z| < 16`. `class_weights` and `include_background` apply to the Dice
    term only. The value is not bounded by 1, and a perfect prediction of
    probabilities exactly 0 and 1 scores about 1e-7 (the clipping), not 0.
    Inputs and dtype handling as in `DiceLoss`.

    Empty-mask convention: the Dice term of an empty prediction of an empty
    mask is 0 while `smooth > 0` (1 with `smooth=0`); the cross-entropy term
    is its usual value.

    Args:
        bce_weight: float >= 0, weight of the cross-entropy. Defaults to `1.0`.
        dice_weight: float >= 0, weight of the Dice loss. Defaults to `1.0`.
        from_logits: bool, whether `y_pred` holds logits. Defaults to `False`.
        smooth: float >= 0 added to the Dice numerator and denominator.
            Defaults to `1e-5`.
        per_image: bool, score each image then average (`True`) or pool the
            batch (`False`). Defaults to `True`.
        sparse_y_true: `None` (detect), `True` or `False`. Defaults to `None`.
        class_weights: optional list of per-channel weights of the Dice
            class average. Defaults to `None`.
        ignore_class: optional label whose pixels are left out of both terms.
            Defaults to `None`.
        include_background: bool, score channel 0 in the Dice term.
            Defaults to `True`.
        reduction: as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"bce_dice_loss"`.

    Call arguments:
        y_true: ground truth, as in `DiceLoss`.
        y_pred: probabilities or logits, as in `DiceLoss`.
        sample_weight: optional `(batch,)` image weights or `(batch, ...)` /
            `(batch, ..., 1)` pixel weights (see `DiceLoss`).

    Returns:
        The reduced loss, a float32 scalar by default.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    >>> logits = np.array([[[[9.0], [-9.0]], [[-9.0], [-9.0]]]])
    >>> loss = BCEDiceLoss(from_logits=True, smooth=0.0)
    >>> round(float(loss(y_true, logits)), 2)
    2.58

    Reference:

    - [Isensee et al., 2021 (nnU-Net)](https://doi.org/10.1038/s41592-020-01008-z)
    """

    def __init__(
        self,
        bce_weight=1.0,
        dice_weight=1.0,
        from_logits=False,
        smooth=1e-5,
        per_image=True,
        sparse_y_true=None,
        class_weights=None,
        ignore_class=None,
        include_background=True,
        reduction="sum_over_batch_size",
        name="bce_dice_loss",
    ):
        super().__init__(
            from_logits=from_logits,
            smooth=smooth,
            per_image=per_image,
            sparse_y_true=sparse_y_true,
            class_weights=class_weights,
            ignore_class=ignore_class,
            include_background=include_background,
            reduction=reduction,
            name=name,
        )
        self._opts["bce_weight"] = _check_non_negative("bce_weight", bce_weight)
        self._opts["dice_weight"] = _check_non_negative("dice_weight", dice_weight)
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight

    def _compute(self, y_true, y_pred, pixel_weight=None):
        return _overlap_loss(
            y_true,
            y_pred,
            self._opts,
            _dice_score_loss,
            with_cross_entropy=True,
            pixel_weight=pixel_weight,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"bce_weight": self.bce_weight, "dice_weight": self.dice_weight})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CombinedLoss(_LossArithmetic, keras.losses.Loss):
    """A weighted sum of losses: `sum(weight_i * loss_i(y_true, y_pred))`.

    Usually made with arithmetic on the losses of this module:
    `0.5 * DiceLoss() + keras.losses.BinaryCrossentropy()` is
    `CombinedLoss([DiceLoss(), BinaryCrossentropy()], weights=[0.5, 1.0])`.
    Each part is a `keras.losses.Loss` (or a name that `get` resolves to one)
    and reduces itself (with the `sample_weight` given to the call), so parts
    with different output shapes (per image, per pixel) add up correctly.
    Adding two combined losses concatenates their parts; multiplying by a
    number scales every weight. The config holds each part serialised, so the
    sum survives `model.save` and `keras.models.load_model`.

    Empty-mask convention: that of each part.

    Args:
        losses: list of `keras.losses.Loss` instances or names (`"dice"`,
            `"BinaryCrossentropy"`, ...).
        weights: optional list of non-negative weights, one per loss.
            Defaults to `None` (all 1).
        name: name of the loss. Defaults to `"combined_loss"`.

    Call arguments:
        y_true: ground truth.
        y_pred: predictions.
        sample_weight: optional weights passed to every part.

    Returns:
        The weighted sum of the reduced parts, a float32 scalar by default.

    Raises:
        ValueError: if `losses` is empty, `weights` has another length or a
            negative weight.
        TypeError: if a part is not a `keras.losses.Loss`.

    Example:

    >>> import numpy as np
    >>> loss = 0.5 * DiceLoss(smooth=0.0) + JaccardLoss(smooth=0.0)
    >>> [type(part).__name__ for part in loss.losses], loss.weights
    (['DiceLoss', 'JaccardLoss'], [0.5, 1.0])
    >>> y_true = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    >>> y_pred = np.array([[[[1.0], [0.0]], [[0.0], [0.0]]]])
    >>> round(float(loss(y_true, y_pred)), 4)  # 0.5 * 1/3 + 1/2
    0.6667

    Reference:

    - [Ma et al., 2021, "Loss odyssey in medical image segmentation"](https://doi.org/10.1016/j.media.2021.102035)
    """

    def __init__(self, losses, weights=None, name="combined_loss"):
        super().__init__(name=name, reduction="sum_over_batch_size", dtype="float32")
        if isinstance(losses, keras.losses.Loss | str) or not isinstance(losses, list | tuple):
            raise _invalid("losses", "a non-empty list of losses", losses)
        if not losses:
            raise _invalid("losses", "a non-empty list of losses", losses)
        resolved = []
        for loss in losses:
            if isinstance(loss, str | dict):
                loss = get(loss)
            if not isinstance(loss, keras.losses.Loss):
                raise TypeError(
                    "Invalid value for argument `losses`. Expected `keras.losses.Loss` "
                    "instances or names that `keras_unet_seg.losses.get` resolves to one "
                    "(for Keras' own losses use the class name, e.g. 'BinaryCrossentropy'). "
                    f"Received: losses={losses!r}"
                )
            resolved.append(loss)
        if weights is None:
            weights = [1.0] * len(resolved)
        if not isinstance(weights, list | tuple) or len(weights) != len(resolved):
            raise _invalid("weights", f"a list of {len(resolved)} weights, one per loss", weights)
        self.losses = resolved
        self.weights = [_check_weight(w) for w in weights]

    def _pairs(self):
        return list(zip(self.losses, self.weights, strict=True))

    def __call__(self, y_true, y_pred, sample_weight=None):
        total = None
        for loss, weight in self._pairs():
            value = ops.cast(loss(y_true, y_pred, sample_weight=sample_weight), "float32")
            total = weight * value if total is None else total + weight * value
        return total

    def call(self, y_true, y_pred):
        return self(y_true, y_pred)

    def get_config(self):
        return {
            "name": self.name,
            "losses": [keras.saving.serialize_keras_object(loss) for loss in self.losses],
            "weights": list(self.weights),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["losses"] = [
            keras.saving.deserialize_keras_object(loss) for loss in config["losses"]
        ]
        return cls(**config)


# --------------------------------------------------------------------------- #
# Lookup by name
# --------------------------------------------------------------------------- #

_BY_NAME = {
    "dice": DiceLoss,
    "dice_loss": DiceLoss,
    "jaccard": JaccardLoss,
    "jaccard_loss": JaccardLoss,
    "iou": JaccardLoss,
    "iou_loss": JaccardLoss,
    "tversky": TverskyLoss,
    "tversky_loss": TverskyLoss,
    "focal_tversky": FocalTverskyLoss,
    "focal_tversky_loss": FocalTverskyLoss,
    "bce_dice": BCEDiceLoss,
    "bce_dice_loss": BCEDiceLoss,
}
_BY_NAME.update(
    {cls.__name__: cls for cls in (DiceLoss, JaccardLoss, TverskyLoss, FocalTverskyLoss)}
)
_BY_NAME.update({"BCEDiceLoss": BCEDiceLoss})


def get(identifier):
    """Returns a loss from a name, a config dict or a callable, like `keras.losses.get`.

    Names of this module (`"dice"`, `"jaccard"` or `"iou"`, `"tversky"`,
    `"focal_tversky"`, `"bce_dice"`, their `*_loss` forms and class names) give
    an instance with default arguments; any other name, such as
    `"binary_crossentropy"`, is passed on to `keras.losses.get`.

    Args:
        identifier: a name, a serialised config dict, a loss instance or
            function, or `None`.

    Returns:
        A loss instance or function, or `None` for `None`.

    Raises:
        ValueError: if the identifier cannot be interpreted.

    Example:

    >>> type(get("dice")).__name__
    'DiceLoss'
    >>> type(get("iou")).__name__
    'JaccardLoss'
    >>> get("binary_crossentropy").__name__
    'binary_crossentropy'
    """
    if identifier is None:
        return None
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    return keras.losses.get(identifier)
