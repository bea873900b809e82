"""Streaming segmentation metrics: Dice coefficient, IoU, precision and recall.

Every metric here keeps confusion counts (true positives, false positives,
false negatives, per class) in its state and computes the score from the
totals in `result()`, so an epoch's value is the exact score of all its
pixels, not a mean of batch means, and does not depend on how the data was
batched or split across devices (the state variables are summed across
replicas). With `per_image=True` the state is instead a running sum of
per-image scores and an image count.

Conventions shared by every metric here:

- Images or volumes: `y_pred` is `(batch, height, width, C)` or
  `(batch, depth, height, width, C)` (any number of spatial axes); every
  pixel or voxel counts once, and `per_image=True` scores each sample of the
  batch (an image or a volume) over its spatial axes.
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
- Counts are float32: exact up to 2**24 (about 16.7 million, a 256x256x256
  volume) pixels per class, and within about 1e-7 relative beyond.
"""

import keras

from keras_unet_seg._lookup import PACKAGE, lookup, name_table
from keras_unet_seg.metrics._confusion import ConfusionMetric

__all__ = ["DiceCoefficient", "IoUScore", "Precision", "Recall", "get"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceCoefficient(ConfusionMetric):
    """Dice coefficient (F1 score) of thresholded masks, `2 TP / (2 TP + FP + FN)`.

    Streaming: the state is the confusion counts, so the value after an epoch
    is the exact Dice of all its pixels, whatever the batching or the number
    of replicas. Foreground only in binary mode. Empty-mask convention: an
    empty prediction of an empty mask scores 1 (in a multi-class average, a
    class absent from labels and predictions is left out).

    Args:
        num_classes: int, channels of `y_pred`: 1 for binary (sigmoid), more
            for multi-class (softmax, scored by argmax). Defaults to `1`.
        threshold: float in [0, 1]; binary predictions `>= threshold` are
            positive (ignored in multi-class mode). Defaults to `0.5`.
        from_logits: bool, whether `y_pred` holds logits. Defaults to `False`.
        per_image: bool; `False` pools the counts of every pixel seen (the
            dataset-level score), `True` averages the scores of each image
            (or volume). Defaults to `False`.
        average: `"macro"` (mean of the class scores) or `"micro"` (score of
            the pooled counts) in multi-class mode. Defaults to `"macro"`.
        ignore_class: optional label (e.g. 255) whose pixels are left out;
            when it is a class of `y_pred`, that class is also left out of the
            average. Defaults to `None`.
        include_background: bool; `False` leaves class 0 out of the
            multi-class average. Defaults to `True`.
        sparse_y_true: `None` (detect: one label channel against several
            prediction channels means class ids), `True` or `False`.
            Defaults to `None`.
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
class IoUScore(ConfusionMetric):
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
        num_classes: int, channels of `y_pred`: 1 for binary (sigmoid), more
            for multi-class (softmax, scored by argmax). Defaults to `1`.
        threshold: float in [0, 1]; binary predictions `>= threshold` are
            positive (ignored in multi-class mode). Defaults to `0.5`.
        from_logits: bool, whether `y_pred` holds logits. Defaults to `False`.
        per_image: bool; `False` pools the counts of every pixel seen (the
            dataset-level score), `True` averages the scores of each image
            (or volume). Defaults to `False`.
        average: `"macro"` (mean of the class scores) or `"micro"` (score of
            the pooled counts) in multi-class mode. Defaults to `"macro"`.
        ignore_class: optional label (e.g. 255) whose pixels are left out;
            when it is a class of `y_pred`, that class is also left out of the
            average. Defaults to `None`.
        include_background: bool; `False` leaves class 0 out of the
            multi-class average. Defaults to `True`.
        sparse_y_true: `None` (detect: one label channel against several
            prediction channels means class ids), `True` or `False`.
            Defaults to `None`.
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
class Precision(ConfusionMetric):
    """Pixel precision of thresholded masks, `TP / (TP + FP)`.

    Unlike `keras.metrics.Precision`, it takes logits, compares with `>=`
    (Keras' own uses `>`), averages classes of a softmax output, ignores a
    label and can score per image. Streaming and exact, as `IoUScore`.
    Empty-mask convention: with nothing predicted positive the score is 1 if
    the mask is empty too, else 0.

    Args:
        num_classes: int, channels of `y_pred`: 1 for binary (sigmoid), more
            for multi-class (softmax, scored by argmax). Defaults to `1`.
        threshold: float in [0, 1]; binary predictions `>= threshold` are
            positive (ignored in multi-class mode). Defaults to `0.5`.
        from_logits: bool, whether `y_pred` holds logits. Defaults to `False`.
        per_image: bool; `False` pools the counts of every pixel seen (the
            dataset-level score), `True` averages the scores of each image
            (or volume). Defaults to `False`.
        average: `"macro"` (mean of the class scores) or `"micro"` (score of
            the pooled counts) in multi-class mode. Defaults to `"macro"`.
        ignore_class: optional label (e.g. 255) whose pixels are left out;
            when it is a class of `y_pred`, that class is also left out of the
            average. Defaults to `None`.
        include_background: bool; `False` leaves class 0 out of the
            multi-class average. Defaults to `True`.
        sparse_y_true: `None` (detect: one label channel against several
            prediction channels means class ids), `True` or `False`.
            Defaults to `None`.
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
class Recall(ConfusionMetric):
    """Pixel recall (sensitivity) of thresholded masks, `TP / (TP + FN)`.

    Unlike `keras.metrics.Recall`, it takes logits, compares with `>=`
    (Keras' own uses `>`), averages classes of a softmax output, ignores a
    label and can score per image. Streaming and exact, as `IoUScore`.
    Empty-mask convention: for an empty mask the score is 1 if nothing was
    predicted positive, else 0.

    Args:
        num_classes: int, channels of `y_pred`: 1 for binary (sigmoid), more
            for multi-class (softmax, scored by argmax). Defaults to `1`.
        threshold: float in [0, 1]; binary predictions `>= threshold` are
            positive (ignored in multi-class mode). Defaults to `0.5`.
        from_logits: bool, whether `y_pred` holds logits. Defaults to `False`.
        per_image: bool; `False` pools the counts of every pixel seen (the
            dataset-level score), `True` averages the scores of each image
            (or volume). Defaults to `False`.
        average: `"macro"` (mean of the class scores) or `"micro"` (score of
            the pooled counts) in multi-class mode. Defaults to `"macro"`.
        ignore_class: optional label (e.g. 255) whose pixels are left out;
            when it is a class of `y_pred`, that class is also left out of the
            average. Defaults to `None`.
        include_background: bool; `False` leaves class 0 out of the
            multi-class average. Defaults to `True`.
        sparse_y_true: `None` (detect: one label channel against several
            prediction channels means class ids), `True` or `False`.
            Defaults to `None`.
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


# Each class by its class name, its registered name, its snake_case name and
# aliases; Keras' own names stay Keras': "precision" is `keras.metrics.Precision`.
_BY_NAME = name_table(
    [
        (DiceCoefficient, "dice_coefficient", "dice", "f1"),
        (IoUScore, "iou_score", "iou", "jaccard"),
        (Precision,),
        (Recall,),
    ],
    leave_to_keras=("Precision", "Recall"),
)


def get(identifier):
    """Returns a metric from a name, a config dict or an instance, like `keras.metrics.get`.

    A class of this module is found by its class name (`"IoUScore"`), its
    snake_case name (`"iou_score"`), its short names (`"dice"` or `"f1"`, `"iou"`
    or `"jaccard"`) and its registered name (`"keras_unet_seg>Precision"`), and
    given as a binary instance with default arguments. A name that Keras knows
    is Keras' own, as `keras.metrics.get` gives it: `"precision"` and
    `"Precision"` give `keras.metrics.Precision` (this module's `Precision` is
    `"keras_unet_seg>Precision"`). Any other name, such as `"accuracy"` or
    `"BinaryIoU"`, is passed on to `keras.metrics.get`.

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
    >>> import keras
    >>> isinstance(get("precision"), keras.metrics.Precision)
    True
    """
    return lookup(identifier, _BY_NAME, keras.metrics.get, "metric")
