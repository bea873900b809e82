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


@pytest.mark.parametrize("spatial", [(3, 3), (4, 3, 3)], ids=["image", "volume"])
@pytest.mark.parametrize("per_image", [True, False])
def test_sample_weights_split_image_and_pixel_weights(per_image, spatial):
    rank = len(spatial) + 2
    image = np.array([2.0, 0.5], "float32")
    image_weight, pixel_weight = _overlap.sample_weights(image, rank, per_image)
    if per_image:
        np.testing.assert_allclose(to_numpy(image_weight), image)
        assert pixel_weight is None
    else:
        assert image_weight is None
        assert tuple(pixel_weight.shape) == (2,) + (1,) * (rank - 1)
    for shape in [(2, *spatial), (2, *spatial, 1)]:
        image_weight, pixel_weight = _overlap.sample_weights(np.ones(shape), rank, per_image)
        assert image_weight is None and tuple(pixel_weight.shape) == (2, *spatial, 1)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `sample_weight`. Expected weights of shape (batch,), "
            "(batch, *spatial) or (batch, *spatial, 1). Received: "
            f"sample_weight=<tensor of shape {(2, *spatial, 2)}>"
        ),
    ):
        _overlap.sample_weights(np.ones((2, *spatial, 2)), rank, per_image)


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
# One table of cases for the twins, the metrics, the losses and evaluation
# --------------------------------------------------------------------------- #

SCORE_NAMES = ("dice", "iou", "precision", "recall")
ROW_0 = [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
# (truth, prediction) class ids of a 4x4 image -> per class: dice, iou, precision, recall.
# Binary cases have classes 0 and 1 and score class 1 (evaluation's default).
OVERLAP_CASES = {
    "both empty": ((np.zeros((4, 4)), np.zeros((4, 4))), [(1.0, 1.0, 1.0, 1.0)]),
    "empty prediction": ((ROW_0, np.zeros((4, 4))), [(0.0, 0.0, 0.0, 0.0)]),
    "empty truth": ((np.zeros((4, 4)), ROW_0), [(0.0, 0.0, 0.0, 0.0)]),
    "perfect": ((ROW_0, ROW_0), [(1.0, 1.0, 1.0, 1.0)]),
    "disjoint": ((ROW_0, np.flipud(ROW_0)), [(0.0, 0.0, 0.0, 0.0)]),
    # TP 2, FP 1, FN 2.
    "partial": (
        (ROW_0, [[0, 0, 1, 0], [0, 1, 0, 1], [0] * 4, [0] * 4]),
        [(4 / 7, 2 / 5, 2 / 3, 1 / 2)],
    ),
    # Three classes, class 2 in neither: class 0 TP 11, FP 1, FN 1; class 1 TP 3, FP 1, FN 1.
    "multi-class, a class in neither": (
        (
            [[0, 0, 1, 1], [0, 0, 1, 1], [0] * 4, [0] * 4],
            [[0, 0, 1, 0], [0, 1, 1, 1], [0] * 4, [0] * 4],
        ),
        [(22 / 24, 11 / 13, 11 / 12, 11 / 12), (6 / 8, 3 / 5, 3 / 4, 3 / 4), (1.0, 1.0, 1.0, 1.0)],
    ),
    # Class 1 only in the truth, class 2 only in the prediction: class 0 TP 8, FP 4, FN 4.
    "multi-class, empty truth and empty prediction": (
        (
            [[1, 1, 0, 0], [1, 1, 0, 0], [0] * 4, [0] * 4],
            [[0, 0, 2, 2], [0, 0, 2, 2], [0] * 4, [0] * 4],
        ),
        [(16 / 24, 8 / 16, 8 / 12, 8 / 12), (0.0,) * 4, (0.0,) * 4],
    ),
}


def _counts(truth, pred, num_classes):
    """Per-class (tp, fp, fn) float32 arrays of two id maps."""
    classes = np.arange(num_classes)
    is_true = np.asarray(truth)[..., None] == classes
    is_pred = np.asarray(pred)[..., None] == classes
    true_pos = (is_true & is_pred).sum(axis=(0, 1))
    false_pos = (~is_true & is_pred).sum(axis=(0, 1))
    false_neg = (is_true & ~is_pred).sum(axis=(0, 1))
    return tuple(c.astype("float32") for c in (true_pos, false_pos, false_neg))


def _losses(name, num_classes):
    """The loss whose `1 - loss` is score `name` (hard predictions, `smooth=0`)."""
    from keras_unet_seg.losses import DiceLoss, JaccardLoss, TverskyLoss

    make = {
        "dice": DiceLoss,
        "iou": JaccardLoss,
        "precision": lambda **kw: TverskyLoss(alpha=1.0, beta=0.0, **kw),
        "recall": lambda **kw: TverskyLoss(alpha=0.0, beta=1.0, **kw),
    }[name]
    return make(smooth=0.0)


@pytest.mark.parametrize("case", sorted(OVERLAP_CASES))
def test_one_definition_of_the_scores_everywhere(case):
    """The twins per class; evaluation per class; the metrics' and losses' averages."""
    from keras_unet_seg.evaluation import segmentation_scores
    from keras_unet_seg.metrics import DiceCoefficient, IoUScore, Precision, Recall

    (truth, pred), expected = OVERLAP_CASES[case]
    truth, pred = np.asarray(truth, np.int64), np.asarray(pred, np.int64)
    multi = len(expected) > 1
    num_classes = 3 if multi else 2
    counts = _counts(truth, pred, num_classes)
    scored = slice(None) if multi else slice(1, None)  # binary: the foreground
    evaluated = segmentation_scores(
        truth, pred, num_classes, include_background=multi, boundary=False
    )
    # The metrics average the classes present in truth or prediction; the losses every class.
    present = (sum(counts) > 0)[scored]
    if multi:
        y_true, y_pred = truth[None, ..., None], np.eye(3, dtype="float32")[pred][None]
    else:
        y_true, y_pred = (a[None, ..., None].astype("float32") for a in (truth, pred))
    metrics = dict(zip(SCORE_NAMES, (DiceCoefficient, IoUScore, Precision, Recall), strict=True))
    for index, name in enumerate(SCORE_NAMES):
        want = np.array([row[index] for row in expected])
        terms = _overlap.SCORES[name]
        tp, fp, fn = (c[scored] for c in counts)
        np.testing.assert_allclose(_overlap.score_numpy(terms, tp, fp, fn), want, atol=1e-6)
        np.testing.assert_allclose(to_numpy(_overlap.score(terms, tp, fp, fn)), want, atol=1e-6)
        for class_id, value in zip(sorted(evaluated), want, strict=True):
            assert evaluated[class_id][name] == pytest.approx(value, abs=1e-6), (name, class_id)
        metric = metrics[name](num_classes=3 if multi else 1)
        metric.update_state(y_true, y_pred)
        want_metric = want[present].mean() if present.any() else 1.0
        assert to_numpy(metric.result()) == pytest.approx(want_metric, abs=1e-6), name
        loss = to_numpy(_losses(name, num_classes)(y_true, y_pred))
        assert 1.0 - loss == pytest.approx(want.mean(), abs=1e-6), name


def test_smooth_is_added_to_both_terms():
    dice, tversky = _overlap.SCORES["dice"], _overlap.tversky(0.3, 0.7)
    assert _overlap.score_numpy(dice, 1, 2, 3, smooth=1.0) == pytest.approx(3 / 8)
    assert _overlap.score_numpy(tversky, 1, 2, 3, smooth=1.0) == pytest.approx(2 / 4.7)
    # A zero count of everything scores 1 with or without `smooth`.
    assert _overlap.score_numpy(dice, 0, 0, 0, smooth=1e-5) == 1.0
    got = _overlap.score(tversky, *(np.zeros(2, "float32"),) * 3, smooth=1e-5)
    np.testing.assert_allclose(to_numpy(got), [1.0, 1.0])


def test_the_scores_keep_nan():
    nan = _overlap.ratio(np.float32(np.nan), np.float32(np.nan), np.float32(np.nan))
    assert np.isnan(to_numpy(nan))
    assert np.isnan(_overlap.score_numpy(_overlap.SCORES["dice"], np.nan, 0, 0))


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
            "Received: y_true=<16 values outside it, between 255 and 255>",
        ),
        (
            np.full((1, 4, 4, 1), -1.0, "float32"),
            BINARY_PRED,
            255,
            "Expected values in [0, 1] (a binary mask: divide a 0/255 mask by 255) or "
            "ignore_class=255. Received: y_true=<16 values outside it, between -1 and -1>",
        ),
        (
            np.array([[[[0], [3]], [[7], [1]]]], "float32"),
            np.zeros((1, 2, 2, 3), "float32"),
            None,
            "Expected class ids in [0, 2]. Received: y_true=<2 values outside it, between 3 and 7>",
        ),
        (
            np.array([[[[0.5], [1]], [[2], [255]]]], "float32"),
            np.zeros((1, 2, 2, 3), "float32"),
            255,
            "Expected class ids in [0, 2] or ignore_class=255. Received: y_true=<1 values "
            "outside it, between 0.5 and 0.5>",
        ),
        (
            np.full((1, 2, 2, 3), 2.0, "float32"),
            np.zeros((1, 2, 2, 3), "float32"),
            None,
            "Expected values in [0, 1]. Received: y_true=<12 values outside it, between 2 and 2>",
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
