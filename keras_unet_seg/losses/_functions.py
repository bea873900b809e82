"""The losses as pure `keras.ops` functions, and the one options object they share.

`dice_loss`, `jaccard_loss`, ... return one float32 loss per image (or one for
the batch with `per_image=False`); the loss classes of `keras_unet_seg.losses`
wrap them (see that module for the conventions shared by every loss). Each
function's own arguments (`alpha`, `gamma`, ...) come first; the options every loss
takes are keywords, checked by `OverlapOptions`.
"""

import dataclasses

from keras import ops

from keras_unet_seg._overlap import (
    EPSILON,
    LOGIT_LIMIT,
    SCORES,
    channels,
    check_class_weights,
    class_average,
    confusion_sums,
    non_finite_penalty,
    probabilities,
    reduce_axes,
    sample_weights,
    score,
    scored_classes,
    targets_and_valid,
    tversky,
)
from keras_unet_seg._validation import (
    check_bool,
    check_non_negative,
    check_optional_bool,
    check_optional_int,
    check_positive,
    invalid_value,
)

# --------------------------------------------------------------------------- #
# Options
# --------------------------------------------------------------------------- #

_CHECKS = {
    "from_logits": check_bool,
    "smooth": check_non_negative,
    "per_image": check_bool,
    "sparse_y_true": check_optional_bool,
    "class_weights": lambda name, value: check_class_weights(value),
    "ignore_class": check_optional_int,
    "include_background": check_bool,
}


@dataclasses.dataclass(frozen=True)
class OverlapOptions:
    """The options every overlap loss takes, checked and standardized at construction.

    Documented with the loss classes (`keras_unet_seg.losses.DiceLoss`); an unknown
    keyword raises the usual `TypeError`.
    """

    from_logits: bool = False
    smooth: float = 1e-5
    per_image: bool = True
    sparse_y_true: bool | None = None
    class_weights: list | None = None
    ignore_class: int | None = None
    include_background: bool = True

    def __post_init__(self):
        for name, check in _CHECKS.items():
            object.__setattr__(self, name, check(name, getattr(self, name)))

    def config(self):
        """The options as a JSON dict (the keyword arguments they were made from)."""
        return dataclasses.asdict(self)


def check_tversky(alpha, beta):
    """`alpha` and `beta` as floats >= 0, not both 0."""
    alpha = check_non_negative("alpha", alpha)
    beta = check_non_negative("beta", beta)
    if alpha == 0 and beta == 0:
        expected = f"`alpha` and `beta` not both 0 (the loss would ignore every error; beta={beta})"
        raise invalid_value("alpha", expected, alpha)
    return alpha, beta


def check_term_weights(bce_weight, dice_weight):
    """The weights of `bce_dice_loss`'s two terms, floats >= 0."""
    return check_non_negative("bce_weight", bce_weight), check_non_negative(
        "dice_weight", dice_weight
    )


# --------------------------------------------------------------------------- #
# Class losses: (tp, fp, fn, smooth) -> per-class loss
# --------------------------------------------------------------------------- #


def _score_loss(terms):
    """`1 - score`: the loss of one of `_overlap`'s scores."""

    def class_loss(true_pos, false_pos, false_neg, smooth):
        return 1.0 - score(terms, true_pos, false_pos, false_neg, smooth)

    return class_loss


def _focal_tversky_class_loss(alpha, beta, gamma):
    tversky_loss_of = _score_loss(tversky(alpha, beta))

    def class_loss(true_pos, false_pos, false_neg, smooth):
        base = tversky_loss_of(true_pos, false_pos, false_neg, smooth)
        if gamma == 1.0:
            return base
        # x**gamma with gamma < 1 has an infinite slope at 0: the inner `where`
        # keeps the power away from 0, so a perfect prediction has loss 0 and a
        # finite (zero) gradient. The smallest positive float32 `base` is
        # 2**-24, where the slope is still finite. A NaN `base` (NaN targets)
        # stays NaN: only an exact 0 is replaced.
        zero = ops.equal(base, 0.0)
        safe = ops.where(zero, 1.0, base)
        return ops.where(zero, 0.0, ops.power(safe, gamma))

    return class_loss


_DICE = _score_loss(SCORES["dice"])
_JACCARD = _score_loss(SCORES["iou"])

# --------------------------------------------------------------------------- #
# The shared body
# --------------------------------------------------------------------------- #


def _overlap_loss(y_true, y_pred, sample_weight, options, class_loss, term_weights=None):
    """Shared body of every loss: per-class losses -> class average -> (batch,) or ().

    `sample_weight` (see `dice_loss`) weighs each pixel in the sums. With
    `term_weights`, `(bce_weight, dice_weight)`, the cross-entropy is added
    (`bce_dice_loss`).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    num_channels = channels(y_pred)
    classes = scored_classes(num_channels, options.include_background, options.ignore_class)
    target, valid = targets_and_valid(y_true, y_pred, options.sparse_y_true, options.ignore_class)
    probs, exp_neg_abs = probabilities(y_pred, options.from_logits)
    if valid is not None:
        probs = probs * valid
    rank = len(y_pred.shape)
    pixel_weight = None
    if sample_weight is not None:
        pixel_weight = sample_weights(sample_weight, rank, per_image=False)[1]
    axes = reduce_axes(rank, options.per_image)
    true_pos, false_pos, false_neg = confusion_sums(target, probs, axes, pixel_weight)
    losses = class_loss(true_pos, false_pos, false_neg, options.smooth)
    loss = class_average(losses, classes, options.class_weights, num_channels)
    loss = loss + non_finite_penalty(y_pred, options.from_logits, (*axes, rank - 1))
    if term_weights is None:
        return loss
    logits = ops.cast(y_pred, "float32")
    if options.from_logits:
        logits = ops.clip(logits, -LOGIT_LIMIT, LOGIT_LIMIT)
    if pixel_weight is not None:
        valid = pixel_weight if valid is None else valid * pixel_weight
    cross_entropy = _cross_entropy(
        target, logits, probs, exp_neg_abs, valid, options.from_logits, axes
    )
    bce_weight, dice_weight = term_weights
    return bce_weight * cross_entropy + dice_weight * loss


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
            clipped = ops.clip(probs, EPSILON, 1.0 - EPSILON)
            pixel = -(target * ops.log(clipped) + (1.0 - target) * ops.log(1.0 - clipped))
    else:
        if from_logits:
            log_probs = ops.log_softmax(logits, axis=-1)
        else:
            log_probs = ops.log(ops.clip(probs, EPSILON, 1.0))
        pixel = -ops.sum(target * log_probs, axis=-1, keepdims=True)
    pixel_axes = (*axes, len(logits.shape) - 1)
    if valid is None:
        return ops.mean(pixel, axis=pixel_axes)
    weight_sum = ops.sum(valid, axis=pixel_axes)
    return ops.sum(pixel * valid, axis=pixel_axes) / ops.maximum(weight_sum, EPSILON)


# --------------------------------------------------------------------------- #
# Pure functions
# --------------------------------------------------------------------------- #


def dice_loss(
    y_true,
    y_pred,
    sample_weight=None,
    **options,
):
    """Soft Dice loss, `1 - (2 TP + smooth) / (2 TP + FP + FN + smooth)`.

    TP, FP and FN are soft counts: `sum(t * p)`, `sum((1 - t) * p)` and
    `sum(t * (1 - p))`. Empty-mask convention: an empty prediction of an empty
    mask has loss 0 (score 1), with `smooth=0` too (the rule of 0/0 of the
    metrics: a score whose denominator is 0 is 1). `...` below is the spatial axes:
    `(height, width)` of images or `(depth, height, width)` of volumes.

    Args:
        y_true: ground truth: a 0/1 mask `(batch, ..., 1)` for binary, or
            one-hot `(batch, ..., C)` or class ids `(batch, ..., 1)` /
            `(batch, ...)` for multi-class.
        y_pred: predictions `(batch, ..., C)`: probabilities, or logits with
            `from_logits=True`.
        sample_weight: optional pixel weights, `(batch, ...)` or
            `(batch, ..., 1)`, or `(batch,)` for each image's pixels: the
            weight of each pixel in the sums (0 leaves a pixel out).
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

    The last seven are the options every loss takes, keywords checked by
    `OverlapOptions`.

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
    return _overlap_loss(y_true, y_pred, sample_weight, OverlapOptions(**options), _DICE)


def jaccard_loss(
    y_true,
    y_pred,
    sample_weight=None,
    **options,
):
    """Soft Jaccard (IoU) loss, `1 - (TP + smooth) / (TP + FP + FN + smooth)`.

    Empty-mask convention: an empty prediction of an empty mask has loss 0,
    whatever `smooth`. Arguments and return
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
    return _overlap_loss(y_true, y_pred, sample_weight, OverlapOptions(**options), _JACCARD)


def tversky_loss(
    y_true,
    y_pred,
    alpha=0.5,
    beta=0.5,
    sample_weight=None,
    **options,
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
    class_loss = _score_loss(tversky(*check_tversky(alpha, beta)))
    return _overlap_loss(y_true, y_pred, sample_weight, OverlapOptions(**options), class_loss)


def focal_tversky_loss(
    y_true,
    y_pred,
    alpha=0.3,
    beta=0.7,
    gamma=0.75,
    sample_weight=None,
    **options,
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
    alpha, beta = check_tversky(alpha, beta)
    class_loss = _focal_tversky_class_loss(alpha, beta, check_positive("gamma", gamma))
    return _overlap_loss(y_true, y_pred, sample_weight, OverlapOptions(**options), class_loss)


def bce_dice_loss(
    y_true,
    y_pred,
    bce_weight=1.0,
    dice_weight=1.0,
    sample_weight=None,
    **options,
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
    term_weights = check_term_weights(bce_weight, dice_weight)
    options = OverlapOptions(**options)
    return _overlap_loss(y_true, y_pred, sample_weight, options, _DICE, term_weights)
