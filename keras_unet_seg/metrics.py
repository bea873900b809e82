"""Streaming segmentation metrics: Dice coefficient, IoU, precision and recall.

Every metric here keeps confusion counts (true positives, false positives,
false negatives, per class) in its state and computes the score from the
totals in `result()`, so an epoch's value is the exact score of all its
pixels, not a mean of batch means, and does not depend on how the data was
batched or split across devices (the state variables are summed across
replicas). With `per_image=True` the state is instead a running sum of
per-image scores and an image count.

Conventions shared by every metric here:

- Foreground only: in binary mode (`num_classes=1`, one sigmoid channel)
  the score is that of the foreground class; unlike
  `keras.metrics.BinaryIoU()`, which averages background and foreground
  unless `target_class_ids=[1]`.
- Binary predictions are positive where `y_pred >= threshold` (on logits,
  where `y_pred >= log(threshold / (1 - threshold))`, the same set without a
  sigmoid); multi-class predictions are the argmax over channels.
- Empty-mask convention, the rule of 0/0 that the losses and
  `keras_unet_seg.evaluation` share: a score whose denominator is 0 is 1 when
  the prediction made no error (an empty prediction of an empty mask) and 0
  otherwise (precision of an empty prediction of a non-empty mask, recall of
  a non-empty prediction of an empty mask). In multi-class averages, a class
  absent from both labels and predictions is left out; when every class is,
  the score is 1.
- Nothing seen, nothing scored: before any pixel is counted (no update, only
  empty batches, every pixel ignored or weighted 0) `result()` is 0, as for Keras' own
  metrics (`keras.metrics.Precision`, `keras.metrics.MeanIoU`), not 1.
- A NaN prediction (or, with `from_logits=False`, an infinite one) or a NaN
  target makes the score NaN: it is never hidden by the threshold as a
  negative pixel. Targets the labels cannot hold (outside [0, 1], or class
  ids outside the classes other than `ignore_class`) raise a `ValueError`
  where their values are known (eager execution) and make the score NaN
  inside a traced graph, as for the losses.
- `y_true` and `y_pred` must agree in batch and spatial size (a `ValueError`
  names both shapes where they are known).
- Counts are float32: exact up to 2**24 (about 16.7 million) pixels per class,
  and within about 1e-7 relative beyond.
"""

import math

import keras
from keras import ops

from keras_unet_seg._lookup import PACKAGE, lookup, name_table
from keras_unet_seg._overlap import (
    SCORES,
    confusion_sums,
    non_finite_penalty,
    ratio,
    sample_weights,
    scored_classes,
    take_classes,
    targets_and_valid,
)
from keras_unet_seg._validation import (
    Shaped,
    check_bool,
    check_optional_bool,
    check_optional_int,
    invalid_value,
    is_int,
    is_real,
)

__all__ = ["DiceCoefficient", "IoUScore", "Precision", "Recall", "get"]

_OPTIONS_DOC = """\
        num_classes: int, channels of `y_pred`: 1 for binary (sigmoid), more
            for multi-class (softmax, scored by argmax). Defaults to `1`.
        threshold: float in [0, 1]; binary predictions `>= threshold` are
            positive (ignored in multi-class mode). Defaults to `0.5`.
        from_logits: bool, whether `y_pred` holds logits. Defaults to `False`.
        per_image: bool; `False` pools the counts of every pixel seen (the
            dataset-level score), `True` averages per-image scores. Defaults
            to `False`.
        average: `"macro"` (mean of the class scores) or `"micro"` (score of
            the pooled counts) in multi-class mode. Defaults to `"macro"`.
        ignore_class: optional label (e.g. 255) whose pixels are left out;
            when it is a class of `y_pred`, that class is also left out of the
            average. Defaults to `None`.
        include_background: bool; `False` leaves class 0 out of the
            multi-class average. Defaults to `True`.
        sparse_y_true: `None` (detect: one label channel against several
            prediction channels means class ids), `True` or `False`.
            Defaults to `None`."""


def _documented(cls):
    """Formats the shared Args into `cls`'s docstring."""
    cls.__doc__ = cls.__doc__.replace("        {options}", _OPTIONS_DOC)
    return cls


def _check_num_classes(value):
    if not is_int(value) or value < 1:
        raise invalid_value("num_classes", "a positive integer (1 for binary)", value)
    return int(value)


def _check_threshold(value):
    if not is_real(value) or not 0 <= value <= 1:
        raise invalid_value("threshold", "a number in [0, 1]", value)
    return value


def _check_average(value):
    if value not in ("macro", "micro"):
        raise invalid_value("average", "'macro' or 'micro'", value)
    return value


def _cut(threshold, from_logits):
    """The value that `y_pred` is compared with: the threshold, or its logit."""
    if not from_logits:
        return float(threshold)
    if threshold <= 0:
        return -math.inf
    if threshold >= 1:
        return math.inf
    return math.log(threshold / (1.0 - threshold))


class _ConfusionMetric(keras.metrics.Metric):
    """Shared base: confusion counts (or per-image scores) and their ratio.

    Subclasses name their score in `_overlap.SCORES` as `_score_name`.
    """

    _score_name = None

    def __init__(
        self,
        num_classes=1,
        threshold=0.5,
        from_logits=False,
        per_image=False,
        average="macro",
        ignore_class=None,
        include_background=True,
        sparse_y_true=None,
        name=None,
    ):
        super().__init__(name=name, dtype="float32")
        self.num_classes = _check_num_classes(num_classes)
        self.threshold = _check_threshold(threshold)
        self.from_logits = check_bool("from_logits", from_logits)
        self.per_image = check_bool("per_image", per_image)
        self.average = _check_average(average)
        self.ignore_class = check_optional_int("ignore_class", ignore_class)
        self.include_background = check_bool("include_background", include_background)
        self.sparse_y_true = check_optional_bool("sparse_y_true", sparse_y_true)
        self._classes = scored_classes(self.num_classes, include_background, self.ignore_class)
        self._cut = _cut(threshold, from_logits)
        if self.per_image:
            self.score_sum = self._sum_variable((), "score_sum")
            self.image_count = self._sum_variable((), "image_count")
        else:
            shape = (self.num_classes,)
            self.true_positives = self._sum_variable(shape, "true_positives")
            self.false_positives = self._sum_variable(shape, "false_positives")
            self.false_negatives = self._sum_variable(shape, "false_negatives")
            self.pixel_count = self._sum_variable((), "pixel_count")

    def _sum_variable(self, shape, name):
        """A float32 state variable, zero at first, summed across replicas."""
        return self.add_variable(
            shape=shape, initializer="zeros", dtype="float32", aggregation="sum", name=name
        )

    # ------------------------------------------------------------------ #
    # Scores from counts
    # ------------------------------------------------------------------ #

    def _score(self, true_pos, false_pos, false_neg):
        numerator, denominator = SCORES[self._score_name](true_pos, false_pos, false_neg)
        return ratio(numerator, denominator, false_pos + false_neg)

    def _score_counts(self, true_pos, false_pos, false_neg):
        """Scores counts of shape (..., num_classes) into shape (...); NaN counts give NaN."""
        nan_guard = ops.sum(true_pos, axis=-1) * 0.0
        return self._score_finite_counts(true_pos, false_pos, false_neg) + nan_guard

    def _score_finite_counts(self, true_pos, false_pos, false_neg):
        true_pos, false_pos, false_neg = (
            take_classes(counts, self._classes, self.num_classes)
            for counts in (true_pos, false_pos, false_neg)
        )
        if self.average == "micro":
            return self._score(
                ops.sum(true_pos, axis=-1), ops.sum(false_pos, axis=-1), ops.sum(false_neg, axis=-1)
            )
        scores = self._score(true_pos, false_pos, false_neg)
        present = ops.cast(ops.greater(true_pos + false_pos + false_neg, 0.0), "float32")
        num_present = ops.sum(present, axis=-1)
        mean = ops.sum(scores * present, axis=-1) / ops.maximum(num_present, 1.0)
        return ops.where(ops.greater(num_present, 0.0), mean, 1.0)

    # ------------------------------------------------------------------ #
    # Streaming
    # ------------------------------------------------------------------ #

    def _predicted(self, y_pred):
        """The 0/1 float32 prediction map: thresholded (binary) or the argmax (multi-class)."""
        if self.num_classes == 1:
            return ops.cast(ops.greater_equal(ops.cast(y_pred, "float32"), self._cut), "float32")
        winner = ops.expand_dims(ops.argmax(y_pred, axis=-1), -1)
        class_ids = ops.arange(self.num_classes, dtype=winner.dtype)
        return ops.cast(ops.equal(winner, class_ids), "float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds the confusion counts (or per-image scores) of a batch.

        Args:
            y_true: `(batch, ..., 1)` 0/1 mask, `(batch, ..., C)` one-hot
                labels, or `(batch, ..., 1)` / `(batch, ...)` class ids.
            y_pred: `(batch, ..., C)` probabilities or logits, `C` equal to
                `num_classes`.
            sample_weight: optional weights: `(batch,)` per image (it scales
                that image's counts, or its score with `per_image=True`), or
                `(batch, ...)` / `(batch, ..., 1)` per pixel (0 leaves a pixel
                out).
        """
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        rank = len(y_pred.shape)
        if rank < 3 or y_pred.shape[-1] != self.num_classes:
            raise invalid_value(
                "y_pred",
                f"a channels-last tensor of rank >= 3 with num_classes={self.num_classes} channels",
                Shaped(y_pred),
            )
        target, valid = targets_and_valid(y_true, y_pred, self.sparse_y_true, self.ignore_class)
        # NaN where a target is NaN (or invalid, in a traced graph), which `>=` would hide.
        target_penalty = non_finite_penalty(target, True, tuple(range(1, rank)))
        if self.num_classes == 1:
            target = ops.cast(ops.greater_equal(target, 0.5), "float32")
        predicted = self._predicted(y_pred)
        if valid is not None:
            predicted = predicted * valid  # `target` is already masked
        image_weight = pixel_weight = None
        if sample_weight is not None:
            image_weight, pixel_weight = sample_weights(sample_weight, rank, self.per_image)
        axes = tuple(range(1, rank - 1)) if self.per_image else None
        true_pos, false_pos, false_neg = confusion_sums(target, predicted, axes, pixel_weight)
        # NaN where a prediction is NaN, which `>=` and argmax would hide.
        # (batch, 1): an empty replica batch may have a wrong channel count (see
        # `confusion_sums`).
        penalty = ops.expand_dims(
            non_finite_penalty(y_pred, self.from_logits, tuple(range(1, rank))) + target_penalty,
            -1,
        )
        if not self.per_image:
            self.true_positives.assign_add(true_pos + ops.sum(penalty))
            self.false_positives.assign_add(false_pos)
            self.false_negatives.assign_add(false_neg)
            pixels = ops.ones_like(target[..., :1]) if valid is None else valid
            if pixel_weight is not None:
                pixels = pixels * pixel_weight
            self.pixel_count.assign_add(ops.sum(pixels))
            return
        self._add_image_scores(true_pos + penalty, false_pos, false_neg, image_weight, valid)

    def _add_image_scores(self, true_pos, false_pos, false_neg, image_weight, valid):
        """Adds the (weighted) per-image scores of `(batch, num_classes)` counts."""
        scores = self._score_counts(true_pos, false_pos, false_neg)
        weights = ops.ones_like(scores) if image_weight is None else image_weight
        if valid is not None:
            # An image whose every pixel is ignored has nothing to score.
            has_valid = ops.greater(ops.sum(valid, axis=tuple(range(1, len(valid.shape)))), 0.0)
            weights = weights * ops.cast(has_valid, "float32")
        self.score_sum.assign_add(ops.sum(scores * weights))
        self.image_count.assign_add(ops.sum(weights))

    def result(self):
        if self.per_image:
            count = self.image_count
            return ops.where(
                ops.greater(count, 0.0), self.score_sum / ops.maximum(count, 1e-12), 0.0
            )
        score = self._score_counts(self.true_positives, self.false_positives, self.false_negatives)
        return ops.where(ops.greater(self.pixel_count, 0.0), score, 0.0)

    def get_config(self):
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "threshold": self.threshold,
            "from_logits": self.from_logits,
            "per_image": self.per_image,
            "average": self.average,
            "ignore_class": self.ignore_class,
            "include_background": self.include_background,
            "sparse_y_true": self.sparse_y_true,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
@_documented
class DiceCoefficient(_ConfusionMetric):
    """Dice coefficient (F1 score) of thresholded masks, `2 TP / (2 TP + FP + FN)`.

    Streaming: the state is the confusion counts, so the value after an epoch
    is the exact Dice of all its pixels, whatever the batching or the number
    of replicas. Foreground only in binary mode. Empty-mask convention: an
    empty prediction of an empty mask scores 1 (in a multi-class average, a
    class absent from labels and predictions is left out).

    Args:
        {options}
        name: name of the metric. Defaults to `"dice_coefficient"`.

    Returns:
        `result()` gives a float32 scalar in [0, 1].

    Example:

    >>> import numpy as np
    >>> m = DiceCoefficient()
    >>> m.update_state(np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]]),
    ...                np.array([[[[0.9], [0.2]], [[0.6], [0.1]]]]))
    >>> round(float(m.result()), 4)  # TP 1, FP 1, FN 1
    0.5

    Reference:

    - [Dice, 1945](https://doi.org/10.2307/1932409)
    """

    _score_name = "dice"

    def __init__(
        self,
        num_classes=1,
        threshold=0.5,
        from_logits=False,
        per_image=False,
        average="macro",
        ignore_class=None,
        include_background=True,
        sparse_y_true=None,
        name="dice_coefficient",
    ):
        super().__init__(
            num_classes=num_classes,
            threshold=threshold,
            from_logits=from_logits,
            per_image=per_image,
            average=average,
            ignore_class=ignore_class,
            include_background=include_background,
            sparse_y_true=sparse_y_true,
            name=name,
        )


@keras.saving.register_keras_serializable(package=PACKAGE)
@_documented
class IoUScore(_ConfusionMetric):
    """Intersection over union (Jaccard index) of thresholded masks, `TP / (TP + FP + FN)`.

    Streaming: the state is the confusion counts, so the value after an epoch
    is the exact IoU of all its pixels, whatever the batching or the number
    of replicas. Foreground only in binary mode: with `per_image=False` it
    equals `keras.metrics.BinaryIoU(target_class_ids=[1], threshold=t)`
    whenever some pixel is labelled or predicted positive. Empty-mask
    convention: an empty prediction of an empty mask scores 1 (`BinaryIoU`
    gives 0); in a multi-class average, a class absent from labels and
    predictions is left out, as in `keras.metrics.MeanIoU`.

    Args:
        {options}
        name: name of the metric. Defaults to `"iou_score"`.

    Returns:
        `result()` gives a float32 scalar in [0, 1].

    Example:

    >>> import numpy as np
    >>> m = IoUScore()
    >>> m.update_state(np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]]),
    ...                np.array([[[[0.9], [0.2]], [[0.6], [0.1]]]]))
    >>> round(float(m.result()), 4)  # TP 1, FP 1, FN 1
    0.3333

    Reference:

    - [Jaccard, 1912](https://doi.org/10.1111/j.1469-8137.1912.tb05611.x)
    """

    _score_name = "iou"

    def __init__(
        self,
        num_classes=1,
        threshold=0.5,
        from_logits=False,
        per_image=False,
        average="macro",
        ignore_class=None,
        include_background=True,
        sparse_y_true=None,
        name="iou_score",
    ):
        super().__init__(
            num_classes=num_classes,
            threshold=threshold,
            from_logits=from_logits,
            per_image=per_image,
            average=average,
            ignore_class=ignore_class,
            include_background=include_background,
            sparse_y_true=sparse_y_true,
            name=name,
        )


@keras.saving.register_keras_serializable(package=PACKAGE)
@_documented
class Precision(_ConfusionMetric):
    """Pixel precision of thresholded masks, `TP / (TP + FP)`.

    Unlike `keras.metrics.Precision`, it takes logits, compares with `>=`
    (Keras' own uses `>`), averages classes of a softmax output, ignores a
    label and can score per image. Streaming and exact, as `IoUScore`.
    Empty-mask convention: with nothing predicted positive the score is 1 if
    the mask is empty too, else 0.

    Args:
        {options}
        name: name of the metric. Defaults to `"precision"`.

    Returns:
        `result()` gives a float32 scalar in [0, 1].

    Example:

    >>> import numpy as np
    >>> m = Precision()
    >>> m.update_state(np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]]),
    ...                np.array([[[[0.9], [0.2]], [[0.6], [0.5]]]]))
    >>> round(float(m.result()), 4)  # TP 1, FP 2
    0.3333

    Reference:

    - [Taha and Hanbury, 2015](https://doi.org/10.1186/s12880-015-0068-x)
    """

    _score_name = "precision"

    def __init__(
        self,
        num_classes=1,
        threshold=0.5,
        from_logits=False,
        per_image=False,
        average="macro",
        ignore_class=None,
        include_background=True,
        sparse_y_true=None,
        name="precision",
    ):
        super().__init__(
            num_classes=num_classes,
            threshold=threshold,
            from_logits=from_logits,
            per_image=per_image,
            average=average,
            ignore_class=ignore_class,
            include_background=include_background,
            sparse_y_true=sparse_y_true,
            name=name,
        )


@keras.saving.register_keras_serializable(package=PACKAGE)
@_documented
class Recall(_ConfusionMetric):
    """Pixel recall (sensitivity) of thresholded masks, `TP / (TP + FN)`.

    Unlike `keras.metrics.Recall`, it takes logits, compares with `>=`
    (Keras' own uses `>`), averages classes of a softmax output, ignores a
    label and can score per image. Streaming and exact, as `IoUScore`.
    Empty-mask convention: for an empty mask the score is 1 if nothing was
    predicted positive, else 0.

    Args:
        {options}
        name: name of the metric. Defaults to `"recall"`.

    Returns:
        `result()` gives a float32 scalar in [0, 1].

    Example:

    >>> import numpy as np
    >>> m = Recall()
    >>> m.update_state(np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]]),
    ...                np.array([[[[0.9], [0.2]], [[0.6], [0.5]]]]))
    >>> round(float(m.result()), 4)  # TP 1, FN 1
    0.5

    Reference:

    - [Taha and Hanbury, 2015](https://doi.org/10.1186/s12880-015-0068-x)
    """

    _score_name = "recall"

    def __init__(
        self,
        num_classes=1,
        threshold=0.5,
        from_logits=False,
        per_image=False,
        average="macro",
        ignore_class=None,
        include_background=True,
        sparse_y_true=None,
        name="recall",
    ):
        super().__init__(
            num_classes=num_classes,
            threshold=threshold,
            from_logits=from_logits,
            per_image=per_image,
            average=average,
            ignore_class=ignore_class,
            include_background=include_background,
            sparse_y_true=sparse_y_true,
            name=name,
        )


# Each class by its class name, its snake_case name and aliases.
_BY_NAME = name_table(
    [
        (DiceCoefficient, "dice_coefficient", "dice", "f1"),
        (IoUScore, "iou_score", "iou", "jaccard"),
        (Precision, "precision"),
        (Recall, "recall"),
    ]
)


def get(identifier):
    """Returns a metric from a name, a config dict or an instance, like `keras.metrics.get`.

    A class of this module is found by its class name (`"IoUScore"`), its
    snake_case name (`"iou_score"`) and its short names (`"dice"` or `"f1"`,
    `"iou"` or `"jaccard"`), and given as a binary instance with default
    arguments; these names win over Keras' own, so `"Precision"` and
    `"precision"` both give this module's `Precision`. Any other name, such
    as `"accuracy"` or `"BinaryIoU"`, is passed on to `keras.metrics.get`.

    Args:
        identifier: a name, a serialised config dict, a metric instance or
            function, or `None`.

    Returns:
        A metric instance or function, or `None` for `None`.

    Raises:
        ValueError: if the identifier cannot be interpreted.

    Example:

    >>> type(get("iou")).__name__
    'IoUScore'
    >>> type(get("dice")).__name__
    'DiceCoefficient'
    """
    return lookup(identifier, _BY_NAME, keras.metrics.get, "metric")
