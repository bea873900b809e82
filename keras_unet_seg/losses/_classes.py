"""The loss classes: thin `keras.losses.Loss` wrappers of the pure functions.

In the manner of Keras' `LossFunctionWrapper`: `_OverlapLoss` holds the function
and its keyword arguments, checked once at construction (`OverlapOptions` and the
function's own checks); its `call` is the function, and Keras' reduction reduces
the per-image losses. Each public class adds its own arguments (`alpha`, ...) and
its default name; the options every loss takes are its `**options`.
"""

import keras
from keras import ops
from keras.src.losses.loss import reduce_weighted_values  # Keras' own reduction

from keras_unet_seg._lookup import PACKAGE
from keras_unet_seg._overlap import sample_weights
from keras_unet_seg._validation import check_positive
from keras_unet_seg.losses._combined import _LossArithmetic, dtype_config, register_names
from keras_unet_seg.losses._functions import (
    OverlapOptions,
    bce_dice_loss,
    check_term_weights,
    check_tversky,
    dice_loss,
    focal_tversky_loss,
    jaccard_loss,
    tversky_loss,
)


class _OverlapLoss(_LossArithmetic, keras.losses.Loss):
    """Shared base: a loss function and its checked keyword arguments.

    Args:
        fn: the pure loss function, `fn(y_true, y_pred, sample_weight=None, **kwargs)`.
        arguments: dict, the function's own arguments (`alpha`, ...), checked.
        reduction, name, dtype: as in `keras.losses.Loss` (`dtype` defaults to
            float32, whatever the global policy).
        **options: the options of `OverlapOptions`, checked here.
    """

    def __init__(
        self, fn, arguments, reduction="sum_over_batch_size", name=None, dtype=None, **options
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self.fn = fn
        self._fn_kwargs = {**arguments, **OverlapOptions(**options).config()}
        self._dtype_argument = dtype_config(dtype)
        for key, value in self._fn_kwargs.items():  # `loss.smooth`, `loss.alpha`, ...
            setattr(self, key, value)

    def __call__(self, y_true, y_pred, sample_weight=None):
        """`keras.losses.Loss.__call__`, pixel weights given to the function.

        A scalar weight, and `(batch,)` weights with `per_image=True`, weigh the
        per-image losses in Keras' reduction; the other weights (see the class
        docstring) go to the function as its `sample_weight`, into the sums.
        """
        image_weight = pixel_weight = None
        if sample_weight is not None:
            image_weight = ops.convert_to_tensor(sample_weight, dtype="float32")
            if len(image_weight.shape) > 0:
                rank = len(ops.convert_to_tensor(y_pred).shape)
                per_image = self._fn_kwargs["per_image"]
                image_weight, pixel_weight = sample_weights(image_weight, rank, per_image)
        with keras.name_scope(self.name):
            y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
            y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
            losses = self.fn(y_true, y_pred, sample_weight=pixel_weight, **self._fn_kwargs)
            loss = reduce_weighted_values(
                losses, sample_weight=image_weight, reduction=self.reduction, dtype=self.dtype
            )
        if self.reduction not in (None, "none") and tuple(loss.shape) == (0,):
            # Keras returns the losses of an empty batch unreduced; reduced, they sum
            # to 0, as `keras.losses.BinaryCrossentropy` gives (and a traced graph).
            return ops.zeros((), dtype=loss.dtype)
        return loss

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "reduction": self.reduction,
            "dtype": self._dtype_argument,
            **self._fn_kwargs,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceLoss(_OverlapLoss):
    """Soft Dice loss, `1 - (2 TP + smooth) / (2 TP + FP + FN + smooth)`.

    Binary when `y_pred` has one channel (sigmoid probabilities, or logits
    with `from_logits=True`); multi-class with softmax over several channels,
    with one-hot or sparse integer `y_true`. Computed in float32 whatever the
    input dtype. Add and weight it with other losses:
    `0.5 * DiceLoss() + keras.losses.BinaryCrossentropy()`.

    Empty-mask convention: an empty prediction of an empty mask has loss 0
    (score 1), with `smooth=0` too: a score whose denominator is 0 is 1 when
    nothing was got wrong, the rule of the metrics and of
    `keras_unet_seg.evaluation` (`keras.losses.Dice` gives that case loss 1).
    Otherwise, with `smooth=0` and `per_image=False` this equals
    `keras.losses.Dice()`; with `per_image=True`,
    `keras.losses.Dice(axis=(1, 2, 3))` for images, `axis=(1, 2, 3, 4)` for
    volumes (up to Keras' 1e-7 epsilon).

    Args:
        from_logits: bool, whether `y_pred` holds logits (sigmoid for one
            channel, softmax over channels otherwise). Defaults to `False`.
        smooth: float >= 0 added to numerator and denominator (of the Dice
            term for `BCEDiceLoss`). Defaults to `1e-5`.
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
        reduction: reduction of the per-image losses (`per_image=True`) as in
            `keras.losses.Loss`: `"sum_over_batch_size"`, `"mean"`, `"sum"`,
            `"mean_with_sample_weight"` (the sum of the weighted losses over
            the sum of the `(batch,)` image weights) or `None`/`"none"`. A
            pooled loss (`per_image=False`) is one value, which no reduction
            changes. Defaults to `"sum_over_batch_size"`.
        dtype: dtype of the loss value, as in `keras.losses.Loss` (a name or
            a `keras.DTypePolicy`, whose compute dtype is used); the sums are
            computed in float32 whatever it is. Defaults to `None`: float32,
            whatever `keras.backend.floatx()` and the mixed-precision policy.
        name: name of the loss. Defaults to `"dice_loss"`.

    Call arguments:
        y_true: `(batch, ..., 1)` 0/1 mask, `(batch, ..., C)` one-hot labels
            or `(batch, ..., 1)` / `(batch, ...)` integer class ids.
        y_pred: `(batch, ..., C)` probabilities or logits.
        sample_weight: optional weights. A scalar scales the loss. `(batch,)`:
            with `per_image=True` the weights of the per-image losses (as in
            Keras), with `per_image=False` the weight of each image's pixels
            in the pooled sums. `(batch, ...)` or `(batch, ..., 1)`: the
            weight of each pixel in the sums (0 leaves a pixel out), e.g. the
            border-emphasising weight maps of the U-Net paper.

    Returns:
        The reduced loss, a scalar in `dtype` (float32 by default); 0 for an
        empty batch (no image), as Keras' own losses give.

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

    def __init__(self, name="dice_loss", **options):
        super().__init__(dice_loss, {}, name=name, **options)


@keras.saving.register_keras_serializable(package=PACKAGE)
class JaccardLoss(_OverlapLoss):
    """Soft Jaccard (IoU) loss, `1 - (TP + smooth) / (TP + FP + FN + smooth)`.

    Options, inputs and dtype handling as in `DiceLoss`.

    Empty-mask convention: an empty prediction of an empty mask has loss 0,
    with `smooth=0` too (a score whose denominator is 0 is 1).

    Args:
        name: name of the loss. Defaults to `"jaccard_loss"`.
        **options: `from_logits`, `smooth`, `per_image`, `sparse_y_true`,
            `class_weights`, `ignore_class`, `include_background`, `reduction`
            and `dtype`, as in `DiceLoss`.

    Call arguments and return value as in `DiceLoss`.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    >>> y_pred = np.array([[[[1.0], [0.0]], [[0.0], [0.0]]]])
    >>> round(float(JaccardLoss(smooth=0.0)(y_true, y_pred)), 4)
    0.5

    Reference:

    - [Rahman and Wang, 2016](https://doi.org/10.1007/978-3-319-50835-1_22)
    """

    def __init__(self, name="jaccard_loss", **options):
        super().__init__(jaccard_loss, {}, name=name, **options)


@keras.saving.register_keras_serializable(package=PACKAGE)
class TverskyLoss(_OverlapLoss):
    """Tversky loss, `1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth)`.

    `alpha` weights false positives and `beta` false negatives, as in Salehi
    et al. (raise `beta` to favour recall on small structures);
    `alpha = beta = 0.5` is the Dice loss (exactly so with `smooth=0`).
    `keras.losses.Tversky` puts its `alpha` on the false negatives:
    `keras.losses.Tversky(alpha=a, beta=b)` equals
    `TverskyLoss(alpha=b, beta=a, smooth=0, per_image=False)`.
    Options, inputs and dtype handling as in `DiceLoss`.

    Empty-mask convention: an empty prediction of an empty mask has loss 0,
    with `smooth=0` too (a score whose denominator is 0 is 1).

    Args:
        alpha: float >= 0, weight of the false positives. Defaults to `0.5`.
        beta: float >= 0, weight of the false negatives. Defaults to `0.5`.
        name: name of the loss. Defaults to `"tversky_loss"`.
        **options: `from_logits`, `smooth`, `per_image`, `sparse_y_true`,
            `class_weights`, `ignore_class`, `include_background`, `reduction`
            and `dtype`, as in `DiceLoss`.

    Call arguments and return value as in `DiceLoss`.

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

    def __init__(self, alpha=0.5, beta=0.5, name="tversky_loss", **options):
        alpha, beta = check_tversky(alpha, beta)
        super().__init__(tversky_loss, {"alpha": alpha, "beta": beta}, name=name, **options)


@keras.saving.register_keras_serializable(package=PACKAGE)
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

    Empty-mask convention: an empty prediction of an empty mask has loss 0,
    with `smooth=0` too. NaN targets give a NaN loss. The gradient at a
    perfect prediction is finite (zero) although `x ** 0.75` has an infinite
    slope at 0.

    Args:
        alpha: float >= 0, weight of the false positives. Defaults to `0.3`.
        beta: float >= 0, weight of the false negatives. Defaults to `0.7`.
        gamma: float > 0, the exponent. Defaults to `0.75`.
        name: name of the loss. Defaults to `"focal_tversky_loss"`.
        **options: `from_logits`, `smooth`, `per_image`, `sparse_y_true`,
            `class_weights`, `ignore_class`, `include_background`, `reduction`
            and `dtype`, as in `DiceLoss`.

    Call arguments and return value as in `DiceLoss`.

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

    def __init__(self, alpha=0.3, beta=0.7, gamma=0.75, name="focal_tversky_loss", **options):
        alpha, beta = check_tversky(alpha, beta)
        gamma = check_positive("gamma", gamma)
        arguments = {"alpha": alpha, "beta": beta, "gamma": gamma}
        super().__init__(focal_tversky_loss, arguments, name=name, **options)


@keras.saving.register_keras_serializable(package=PACKAGE)
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
    mask is 0, with `smooth=0` too; the cross-entropy term
    is its usual value.

    Args:
        bce_weight: float >= 0, weight of the cross-entropy. Defaults to `1.0`.
        dice_weight: float >= 0, weight of the Dice loss. Defaults to `1.0`.
        name: name of the loss. Defaults to `"bce_dice_loss"`.
        **options: `from_logits`, `smooth`, `per_image`, `sparse_y_true`,
            `class_weights`, `ignore_class`, `include_background`, `reduction`
            and `dtype`, as in `DiceLoss`.

    Call arguments and return value as in `DiceLoss`.

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

    def __init__(self, bce_weight=1.0, dice_weight=1.0, name="bce_dice_loss", **options):
        bce_weight, dice_weight = check_term_weights(bce_weight, dice_weight)
        arguments = {"bce_weight": bce_weight, "dice_weight": dice_weight}
        super().__init__(bce_dice_loss, arguments, name=name, **options)


# The names `keras_unet_seg.losses.get` finds them by: snake_case (the function's) and short.
register_names(DiceLoss, "dice_loss", "dice")
register_names(JaccardLoss, "jaccard_loss", "jaccard", "iou", "iou_loss")
register_names(TverskyLoss, "tversky_loss", "tversky")
register_names(FocalTverskyLoss, "focal_tversky_loss", "focal_tversky")
register_names(BCEDiceLoss, "bce_dice_loss", "bce_dice")
