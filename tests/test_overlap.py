"""Tests of the overlap core that the losses and the metrics share (`keras_unet_seg._overlap`).

Backend-agnostic: tests/test_backends.py runs this file again under JAX and PyTorch.
"""

import math
import re

import numpy as np
import pytest
from keras import ops

from keras_unet_seg import _overlap


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


@pytest.mark.parametrize("per_image", [True, False])
def test_sample_weights_split_image_and_pixel_weights(per_image):
    image = np.array([2.0, 0.5], "float32")
    image_weight, pixel_weight = _overlap.sample_weights(image, 4, per_image)
    if per_image:
        np.testing.assert_allclose(to_numpy(image_weight), image)
        assert pixel_weight is None
    else:
        assert image_weight is None
        assert tuple(pixel_weight.shape) == (2, 1, 1, 1)
    for shape in [(2, 3, 3), (2, 3, 3, 1)]:
        image_weight, pixel_weight = _overlap.sample_weights(np.ones(shape), 4, per_image)
        assert image_weight is None and tuple(pixel_weight.shape) == (2, 3, 3, 1)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `sample_weight`. Expected weights of shape (batch,), "
            "(batch, *spatial) or (batch, *spatial, 1). Received: "
            "sample_weight=<tensor of shape (2, 3, 3, 2)>"
        ),
    ):
        _overlap.sample_weights(np.ones((2, 3, 3, 2)), 4, per_image)


def test_targets_and_valid_of_class_ids_with_an_ignore_label():
    ids = np.array([[[[0], [2]], [[255], [1]]]], "float32")
    target, valid = _overlap.targets_and_valid(ids, np.zeros((1, 2, 2, 3)), None, 255)
    np.testing.assert_allclose(to_numpy(valid)[0, ..., 0], [[1, 1], [0, 1]])
    expected = np.eye(3)[[[0, 2], [0, 1]]]
    expected[1, 0] = 0.0  # the ignored pixel has no target
    np.testing.assert_allclose(to_numpy(target)[0], expected)


def test_confusion_sums_per_image_pooled_and_weighted():
    rng = np.random.default_rng(0)
    target = (rng.random((3, 4, 4, 2)) < 0.5).astype("float32")
    predicted = rng.random((3, 4, 4, 2)).astype("float32")
    weight = rng.random((3, 4, 4, 1)).astype("float32")
    overlap = weight * target * predicted
    expected = [
        overlap,
        weight * predicted - overlap,
        weight * target - overlap,
    ]
    per_image = _overlap.confusion_sums(target, predicted, (1, 2), weight)
    pooled = _overlap.confusion_sums(target, predicted, None, weight)
    for got, want in zip(per_image, expected, strict=True):
        np.testing.assert_allclose(to_numpy(got), want.sum(axis=(1, 2)), rtol=1e-5)
    for got, want in zip(pooled, expected, strict=True):
        np.testing.assert_allclose(to_numpy(got), want.sum(axis=(0, 1, 2)), rtol=1e-5)


def test_pooled_sums_of_an_empty_batch_keep_the_class_count():
    # An empty replica batch may come with another channel count (TensorFlow's
    # oneDNN Conv2D): pooled sums are flattened against the target's classes.
    sums = _overlap.confusion_sums(np.zeros((0, 4, 4, 1)), np.zeros((0, 4, 4, 2)), None)
    assert [tuple(s.shape) for s in sums] == [(1,)] * 3


def test_class_average_and_weights():
    values = ops.convert_to_tensor(np.array([[0.2, 0.4, 0.6]], "float32"))
    np.testing.assert_allclose(to_numpy(_overlap.class_average(values, [1, 2], None, 3)), [0.5])
    got = _overlap.class_average(values, [0, 1, 2], [1.0, 0.0, 3.0], 3)
    np.testing.assert_allclose(to_numpy(got), [0.5], rtol=1e-6)
    assert _overlap.check_class_weights((1, 2)) == [1.0, 2.0]
    with pytest.raises(ValueError, match=re.escape("Received: class_weights='ab'")):
        _overlap.check_class_weights("ab")


# --------------------------------------------------------------------------- #
# The rule of 0/0, one table for the twins, the metrics, the losses and evaluation
# --------------------------------------------------------------------------- #

# (true positives, false positives, false negatives) -> dice, iou, precision, recall.
ZERO_BY_ZERO_CASES = {
    "empty prediction of an empty mask": ((0, 0, 0), (1.0, 1.0, 1.0, 1.0)),
    "empty prediction of a non-empty mask": ((0, 0, 5), (0.0, 0.0, 0.0, 0.0)),
    "non-empty prediction of an empty mask": ((0, 5, 0), (0.0, 0.0, 0.0, 0.0)),
    "perfect prediction": ((5, 0, 0), (1.0, 1.0, 1.0, 1.0)),
    "partial overlap": ((2, 1, 3), (4 / 8, 2 / 6, 2 / 3, 2 / 5)),
}
SCORE_NAMES = ("dice", "iou", "precision", "recall")


def _masks(true_pos, false_pos, false_neg):
    """A 4x4 (truth, prediction) pair of 0/1 ids with the given counts."""
    truth, pred = np.zeros(16, np.int64), np.zeros(16, np.int64)
    truth[: true_pos + false_neg] = 1
    pred[:true_pos] = 1
    pred[true_pos + false_neg : true_pos + false_neg + false_pos] = 1
    return truth.reshape(4, 4), pred.reshape(4, 4)


@pytest.mark.parametrize("case", sorted(ZERO_BY_ZERO_CASES))
def test_one_rule_of_zero_by_zero_everywhere(case):
    from keras_unet_seg.evaluation import segmentation_scores
    from keras_unet_seg.losses import DiceLoss, JaccardLoss, TverskyLoss
    from keras_unet_seg.metrics import DiceCoefficient, IoUScore, Precision, Recall

    counts, expected = ZERO_BY_ZERO_CASES[case]
    expected = dict(zip(SCORE_NAMES, expected, strict=True))
    truth, pred = _masks(*counts)
    y_true = truth[None, ..., None].astype("float32")
    y_pred = pred[None, ..., None].astype("float32")
    evaluated = segmentation_scores(truth, pred, boundary=False)[1]
    metrics = dict(zip(SCORE_NAMES, (DiceCoefficient, IoUScore, Precision, Recall), strict=True))
    # Losses of hard predictions with smooth=0; Tversky (1, 0) is precision, (0, 1) recall.
    losses = {
        "dice": DiceLoss(smooth=0.0),
        "iou": JaccardLoss(smooth=0.0),
        "precision": TverskyLoss(alpha=1.0, beta=0.0, smooth=0.0),
        "recall": TverskyLoss(alpha=0.0, beta=1.0, smooth=0.0),
    }
    for name in SCORE_NAMES:
        numerator, denominator = _overlap.SCORES[name](*np.asarray(counts, "float32"))
        errors = np.float32(counts[1] + counts[2])
        found = {
            "keras.ops": to_numpy(_overlap.ratio(numerator, denominator, errors)),
            "numpy": float(_overlap.score_numpy(name, *counts)),
            "metric": to_numpy(_metric_result(metrics[name](), y_true, y_pred)),
            "loss": 1.0 - to_numpy(losses[name](y_true, y_pred)),
            "evaluation": evaluated[name],
        }
        for where, value in found.items():
            assert value == pytest.approx(expected[name], abs=1e-6), (name, where)


def _metric_result(metric, y_true, y_pred):
    metric.update_state(y_true, y_pred)
    return metric.result()


def test_the_ratios_keep_nan():
    nan = _overlap.ratio(np.float32(np.nan), np.float32(np.nan), np.float32(np.nan))
    assert np.isnan(to_numpy(nan))
    assert np.isnan(_overlap.score_numpy("dice", np.nan, 0, 0))


# --------------------------------------------------------------------------- #
# Targets the labels cannot hold
# --------------------------------------------------------------------------- #

BINARY_PRED = np.full((1, 4, 4, 1), 0.5, "float32")


@pytest.mark.parametrize(
    "y_true, y_pred, ignore_class, message",
    [
        (
            np.full((1, 4, 4, 1), 255.0, "float32"),
            BINARY_PRED,
            None,
            "Expected values in [0, 1] (a binary mask: divide a 0/255 mask by 255). "
            "Received: 16 values outside it, between 255 and 255",
        ),
        (
            np.full((1, 4, 4, 1), -1.0, "float32"),
            BINARY_PRED,
            255,
            "Expected values in [0, 1] (a binary mask: divide a 0/255 mask by 255) or "
            "ignore_class=255. Received: 16 values outside it, between -1 and -1",
        ),
        (
            np.array([[[[0], [3]], [[7], [1]]]], "float32"),
            np.zeros((1, 2, 2, 3), "float32"),
            None,
            "Expected class ids in [0, 2]. Received: 2 values outside it, between 3 and 7",
        ),
        (
            np.array([[[[0.5], [1]], [[2], [255]]]], "float32"),
            np.zeros((1, 2, 2, 3), "float32"),
            255,
            "Expected class ids in [0, 2] or ignore_class=255. Received: 1 values outside "
            "it, between 0.5 and 0.5",
        ),
        (
            np.full((1, 2, 2, 3), 2.0, "float32"),
            np.zeros((1, 2, 2, 3), "float32"),
            None,
            "Expected values in [0, 1]. Received: 12 values outside it, between 2 and 2",
        ),
    ],
)
def test_targets_the_labels_cannot_hold_are_refused_eagerly(y_true, y_pred, ignore_class, message):
    from keras_unet_seg.losses import DiceLoss
    from keras_unet_seg.metrics import IoUScore

    num_classes = y_pred.shape[-1]
    full = "Invalid value for argument `y_true`. " + message
    for use in (
        lambda: _overlap.targets_and_valid(y_true, y_pred, None, ignore_class),
        lambda: DiceLoss(ignore_class=ignore_class)(y_true, y_pred),
        lambda: IoUScore(num_classes, ignore_class=ignore_class).update_state(y_true, y_pred),
    ):
        with pytest.raises(ValueError, match=re.escape(full)):
            use()


def test_targets_the_labels_cannot_hold_make_a_traced_loss_nan():
    """In a compiled `fit` step no error can be raised: the loss is NaN, never wrong."""
    import keras

    from keras_unet_seg.losses import DiceLoss

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(1, 1)])
    model.compile(loss=DiceLoss(), metrics=["mae"])
    images = np.ones((2, 4, 4, 1), "float32")
    masks = np.full((2, 4, 4, 1), 255.0, "float32")
    if keras.backend.backend() == "torch":  # eager: the values are known
        with pytest.raises(ValueError, match="divide a 0/255 mask by 255"):
            model.evaluate(images, masks, verbose=0)
    else:
        assert math.isnan(model.evaluate(images, masks, verbose=0)[0])
