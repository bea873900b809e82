"""The losses as pure `keras.ops` functions, and the score functions they share.

`dice_loss`, `jaccard_loss`, ... return one float32 loss per image (or one for
the batch with `per_image=False`); the loss classes of `keras_unet_seg.losses`
wrap them (see that module for the conventions shared by every loss).
"""

from keras import ops

from keras_unet_seg._overlap import (
    EPSILON,
    LOGIT_LIMIT,
    channels,
    check_class_weights,
    class_average,
    confusion_sums,
    non_finite_penalty,
    probabilities,
    ratio,
    reduce_axes,
    scored_classes,
    targets_and_valid,
)
from keras_unet_seg._validation import (
    check_bool,
    check_non_negative,
    check_optional_bool,
    check_optional_int,
    check_positive,
)

# --------------------------------------------------------------------------- #
# Options
# --------------------------------------------------------------------------- #


def _options(
    from_logits, smooth, per_image, sparse_y_true, class_weights, ignore_class, include_background
):
    """The options every overlap loss takes, checked and standardized, as a dict."""
    return {
        "from_logits": check_bool("from_logits", from_logits),
        "smooth": check_non_negative("smooth", smooth),
        "per_image": check_bool("per_image", per_image),
        "sparse_y_true": check_optional_bool("sparse_y_true", sparse_y_true),
        "class_weights": check_class_weights(class_weights),
        "ignore_class": check_optional_int("ignore_class", ignore_class),
        "include_background": check_bool("include_background", include_background),
    }


def _cross_entropy_options(options, bce_weight, dice_weight):
    """`options` with the weights of `bce_dice_loss`'s two terms."""
    return {
        **options,
        "bce_weight": check_non_negative("bce_weight", bce_weight),
        "dice_weight": check_non_negative("dice_weight", dice_weight),
    }


def _check_tversky(alpha, beta):
    alpha = check_non_negative("alpha", alpha)
    beta = check_non_negative("beta", beta)
    if alpha == 0 and beta == 0:
        raise ValueError(
            "Invalid value for argument `alpha`. Expected `alpha` and `beta` not both 0 "
            f"(the loss would ignore every error). Received: alpha={alpha}, beta={beta}"
        )
    return alpha, beta


# --------------------------------------------------------------------------- #
# Score functions: (tp, fp, fn, smooth) -> per-class loss
# --------------------------------------------------------------------------- #


def _ratio(numerator, weighted_error, false_pos, false_neg):
    """numerator / (numerator + weighted_error), in [0, 1], by the rule of 0/0.

    A zero denominator (possible only with `smooth=0`) gives 1 when there is no false
    positive and no false negative, else 0, as the metrics and `evaluation` do.
    """
    return ratio(numerator, numerator + weighted_error, false_pos + false_neg)


def _dice_score_loss(true_pos, false_pos, false_neg, smooth):
    errors = false_pos + false_neg
    return 1.0 - _ratio(2.0 * true_pos + smooth, errors, false_pos, false_neg)


def _jaccard_score_loss(true_pos, false_pos, false_neg, smooth):
    errors = false_pos + false_neg
    return 1.0 - _ratio(true_pos + smooth, errors, false_pos, false_neg)


def _tversky_score_loss(alpha, beta):
    def score_loss(true_pos, false_pos, false_neg, smooth):
        errors = alpha * false_pos + beta * false_neg
        return 1.0 - _ratio(true_pos + smooth, errors, false_pos, false_neg)

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
        # 2**-24, where the slope is still finite. A NaN `base` (NaN targets)
        # stays NaN: only an exact 0 is replaced.
        zero = ops.equal(base, 0.0)
        safe = ops.where(zero, 1.0, base)
        return ops.where(zero, 0.0, ops.power(safe, gamma))

    return score_loss


# --------------------------------------------------------------------------- #
# The shared body
# --------------------------------------------------------------------------- #


def _overlap_loss(y_true, y_pred, options, score_fn, pixel_weight=None):
    """Shared body of every loss: per-class scores -> class average -> (batch,) or ().

    `pixel_weight`, a float32 map `(batch, ..., 1)`, weighs each pixel in the sums.
    With `bce_weight` in `options`, the cross-entropy is added (`bce_dice_loss`).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    num_channels = channels(y_pred)
    classes = scored_classes(num_channels, options["include_background"], options["ignore_class"])
    target, valid = targets_and_valid(
        y_true, y_pred, options["sparse_y_true"], options["ignore_class"]
    )
    probs, exp_neg_abs = probabilities(y_pred, options["from_logits"])
    if valid is not None:
        probs = probs * valid
    axes = reduce_axes(len(y_pred.shape), options["per_image"])
    true_pos, false_pos, false_neg = confusion_sums(target, probs, axes, pixel_weight)
    class_loss = score_fn(true_pos, false_pos, false_neg, options["smooth"])
    loss = class_average(class_loss, classes, options["class_weights"], num_channels)
    channel_axis = len(y_pred.shape) - 1
    loss = loss + non_finite_penalty(y_pred, options["from_logits"], (*axes, channel_axis))
    if "bce_weight" not in options:
        return loss
    logits = ops.cast(y_pred, "float32")
    if options["from_logits"]:
        logits = ops.clip(logits, -LOGIT_LIMIT, LOGIT_LIMIT)
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
    mask has loss 0 (score 1), with `smooth=0` too (the rule of 0/0 of the
    metrics: a score whose denominator is 0 is 1).

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
    gamma = check_positive("gamma", gamma)
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
    options = _cross_entropy_options(options, bce_weight, dice_weight)
    return _overlap_loss(y_true, y_pred, options, _dice_score_loss)
