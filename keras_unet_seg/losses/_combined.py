"""`CombinedLoss`, a weighted sum of losses, the arithmetic that builds one, and the
names `keras_unet_seg.losses.get` resolves (each loss class registers its own)."""

import numbers

import keras
from keras import ops
from keras.src.losses.loss import reduce_weighted_values  # Keras' own reduction

from keras_unet_seg._lookup import PACKAGE, lookup, name_table
from keras_unet_seg._validation import invalid_value, is_real

# `{name: class}` of `get`: filled by `register_names` as the classes are defined.
_BY_NAME = {}


def register_names(cls, *names):
    """Makes `get` find `cls` by its class name, registered name and `names`."""
    _BY_NAME.update(name_table([(cls, *names)]))
    return cls


def get(identifier):
    """Returns a loss from a name, a config dict or a callable, like `keras.losses.get`.

    A class of this module is found by its class name (`"DiceLoss"`), its
    snake_case name, which is also its function's (`"dice_loss"`), and its
    short name (`"dice"`, `"jaccard"` or `"iou"`, `"tversky"`,
    `"focal_tversky"`, `"bce_dice"`), and given with default arguments; these
    names win over Keras' own. Any other name, such as
    `"binary_crossentropy"`, is passed on to `keras.losses.get`.
    `CombinedLoss` has no defaults: build it, or give its config dict.

    Args:
        identifier: a name, a serialised config dict, a loss instance or
            function, or `None`.

    Returns:
        A loss instance or function, or `None` for `None`.

    Raises:
        ValueError: if the identifier cannot be interpreted, or names
            `CombinedLoss`.

    Example:

    >>> type(get("dice")).__name__
    'DiceLoss'
    >>> type(get("iou")).__name__
    'JaccardLoss'
    >>> get("binary_crossentropy").__name__
    'binary_crossentropy'
    """
    return lookup(identifier, _BY_NAME, keras.losses.get, "loss")


def dtype_config(dtype):
    """`dtype` as a JSON value: `None`, a name, or a serialised `keras.DTypePolicy`."""
    if dtype is None or isinstance(dtype, str):
        return dtype
    return keras.dtype_policies.serialize(dtype)


def _check_weight(value):
    if not is_real(value) or value < 0:
        raise invalid_value("weights", "finite numbers >= 0", value)
    return float(value)


class _LossArithmetic:
    """`loss_a + loss_b`, `0.5 * loss` and `loss * 0.5` give a `CombinedLoss`.

    Only losses add up: `loss + 0` (and so `sum([loss_a, loss_b])`) is a `TypeError`,
    as for Keras' own losses.
    """

    def _pairs(self):
        return [(self, 1.0)]

    def __add__(self, other):
        if not isinstance(other, keras.losses.Loss):
            return NotImplemented
        other_pairs = other._pairs() if isinstance(other, _LossArithmetic) else [(other, 1.0)]
        pairs = self._pairs() + other_pairs
        return CombinedLoss([p[0] for p in pairs], [p[1] for p in pairs])

    def __radd__(self, other):
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


@keras.saving.register_keras_serializable(package=PACKAGE)
class CombinedLoss(_LossArithmetic, keras.losses.Loss):
    """A weighted sum of losses: `sum(weight_i * loss_i(y_true, y_pred))`.

    Usually made with arithmetic on the losses of this module:
    `0.5 * DiceLoss() + keras.losses.BinaryCrossentropy()` is
    `CombinedLoss([DiceLoss(), BinaryCrossentropy()], weights=[0.5, 1.0])`.
    Each part is a `keras.losses.Loss` (or a name that `get` resolves to one)
    and reduces itself (with the `sample_weight` given to the call), so parts
    with different output shapes (per image, per pixel) add up correctly; the
    weighted sum is then reduced by `reduction` (which changes it only when the
    parts give unreduced values of one shape) and given in `dtype`.
    Adding two combined losses concatenates their parts; multiplying by a
    number scales every weight. The config holds each part serialised, so the
    sum survives `model.save` and `keras.models.load_model`.

    Empty-mask convention: that of each part.

    Args:
        losses: list of `keras.losses.Loss` instances or names (`"dice"`,
            `"BinaryCrossentropy"`, ...).
        weights: optional list of non-negative weights, one per loss.
            Defaults to `None` (all 1).
        reduction: reduction of the weighted sum, as in `keras.losses.Loss`.
            Defaults to `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"combined_loss"`.
        dtype: dtype of the loss value, as in `keras.losses.Loss`. Defaults to
            `None`: float32.

    Call arguments:
        y_true: ground truth.
        y_pred: predictions.
        sample_weight: optional weights passed to every part.

    Returns:
        The weighted sum of the reduced parts, a scalar in `dtype` (float32 by
        default).

    Raises:
        ValueError: if `losses` is empty, `weights` has another length or a
            negative weight.
        TypeError: if a part is not a `keras.losses.Loss`.

    Example:

    >>> import numpy as np
    >>> from keras_unet_seg.losses import DiceLoss, JaccardLoss
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

    def __init__(
        self,
        losses,
        weights=None,
        reduction="sum_over_batch_size",
        name="combined_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self._dtype_argument = dtype_config(dtype)
        if isinstance(losses, keras.losses.Loss | str) or not isinstance(losses, list | tuple):
            raise invalid_value("losses", "a non-empty list of losses", losses)
        if not losses:
            raise invalid_value("losses", "a non-empty list of losses", losses)
        resolved = []
        for loss in losses:
            if isinstance(loss, str | dict):
                loss = get(loss)
            if not isinstance(loss, keras.losses.Loss):
                expected = (
                    "`keras.losses.Loss` instances or names that `keras_unet_seg.losses.get` "
                    "resolves to one (for Keras' own losses use the class name, e.g. "
                    "'BinaryCrossentropy')"
                )
                raise TypeError(*invalid_value("losses", expected, losses).args)
            resolved.append(loss)
        if weights is None:
            weights = [1.0] * len(resolved)
        if not isinstance(weights, list | tuple) or len(weights) != len(resolved):
            raise invalid_value(
                "weights", f"a list of {len(resolved)} weights, one per loss", weights
            )
        self.losses = resolved
        self.weights = [_check_weight(w) for w in weights]

    def _pairs(self):
        return list(zip(self.losses, self.weights, strict=True))

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The weighted sum of the parts, each given `sample_weight`, then reduced."""
        with keras.name_scope(self.name):
            total = self._weighted_sum(y_true, y_pred, sample_weight)
            return reduce_weighted_values(total, reduction=self.reduction, dtype=self.dtype)

    def call(self, y_true, y_pred):
        return self._weighted_sum(y_true, y_pred, None)

    def _weighted_sum(self, y_true, y_pred, sample_weight):
        total = None
        for loss, weight in self._pairs():
            value = weight * ops.cast(loss(y_true, y_pred, sample_weight=sample_weight), self.dtype)
            total = value if total is None else total + value
        return total

    def get_config(self):
        return {
            "name": self.name,
            "reduction": self.reduction,
            "dtype": self._dtype_argument,
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


register_names(CombinedLoss, "combined_loss")
