"""The base of the streaming metrics: confusion counts in state, scores in `result()`.

Private: `keras_unet_seg.metrics` defines the public metrics on it (each names its
score in `_overlap.SCORES`); its docstring holds the conventions they share.
"""

import math

import keras
from keras import ops

from keras_unet_seg._overlap import (
    SCORES,
    confusion_sums,
    non_finite_penalty,
    sample_weights,
    score,
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


class ConfusionMetric(keras.metrics.Metric):
    """Shared base: confusion counts (or per-image scores) and their ratio.

    Subclasses name their score in `_overlap.SCORES` as `_score_name`; the
    arguments are documented on them (`keras_unet_seg.metrics.DiceCoefficient`).
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
            return score(
                SCORES[self._score_name],
                ops.sum(true_pos, axis=-1),
                ops.sum(false_pos, axis=-1),
                ops.sum(false_neg, axis=-1),
            )
        scores = score(SCORES[self._score_name], true_pos, false_pos, false_neg)
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

        `...` is the spatial axes: `(height, width)` of images or
        `(depth, height, width)` of volumes (any number of them).

        Args:
            y_true: `(batch, ..., 1)` 0/1 mask, `(batch, ..., C)` one-hot
                labels, or `(batch, ..., 1)` / `(batch, ...)` class ids.
            y_pred: `(batch, ..., C)` probabilities or logits, `C` equal to
                `num_classes`.
            sample_weight: optional weights: `(batch,)` per image (it scales
                that image's counts, or its score with `per_image=True`), or
                `(batch, ...)` / `(batch, ..., 1)` per pixel or voxel (0
                leaves it out).
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
