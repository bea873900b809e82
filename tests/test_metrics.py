"""Tests of keras_unet_seg.metrics: streaming exactness, hand values, Keras agreement, saving,
MirroredStrategy.

Backend-agnostic except the MirroredStrategy check (TensorFlow only); tests/test_backends.py
runs this file again under JAX and PyTorch.
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keras import ops

from keras_unet_seg.metrics import DiceCoefficient, IoUScore, Precision, Recall

REPO = Path(__file__).resolve().parents[1]
CLASSES = [DiceCoefficient, IoUScore, Precision, Recall]


def score(metric, y_true, y_pred, sample_weight=None):
    metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    return float(ops.convert_to_numpy(metric.result()))


# One image, 2x2: labels [[1, 1], [0, 0]], probabilities [[0.9, 0.2], [0.6, 0.1]]:
# TP 1, FP 1, FN 1.
HAND_TRUE = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]], "float32")
HAND_PRED = np.array([[[[0.9], [0.2]], [[0.6], [0.1]]]], "float32")
HAND = {DiceCoefficient: 2 / 4, IoUScore: 1 / 3, Precision: 1 / 2, Recall: 1 / 2}

# Three classes on a 2x2 image; labels [[0, 1], [2, 2]], argmax [[0, 1], [2, 0]].
MC_IDS = np.array([[[[0], [1]], [[2], [2]]]])
MC_PRED = (0.1 + 0.7 * np.eye(3)[np.array([[[0, 1], [2, 0]]])]).astype("float32")


def numpy_counts(y_true, y_pred, threshold=0.5):
    pred = y_pred >= threshold
    true = y_true >= 0.5
    return np.sum(pred & true), np.sum(pred & ~true), np.sum(~pred & true)


@st.composite
def binary_data(draw, min_images=1, max_images=6):
    # Few distinct shapes: JAX compiles every op anew for each one.
    n = draw(st.integers(min_images, max_images))
    size = 8
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    kind = draw(st.sampled_from(["uniform", "zeros", "ones", "near"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    y_true = (rng.random((n, size, size, 1)) < density).astype("float32")
    if kind == "uniform":
        y_pred = rng.random(y_true.shape)
    elif kind == "zeros":
        y_pred = np.zeros(y_true.shape)
    elif kind == "ones":
        y_pred = np.ones(y_true.shape)
    else:
        y_pred = np.clip(y_true + rng.normal(0, 0.3, y_true.shape), 0, 1)
    return y_true, y_pred.astype("float32")


# --------------------------------------------------------------------------- #
# Hand-computed values and conventions
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("cls", CLASSES)
def test_hand_computed_binary(cls):
    assert score(cls(), HAND_TRUE, HAND_PRED) == pytest.approx(HAND[cls], abs=1e-7)


def test_threshold_is_inclusive():
    y_pred = np.array([[[[0.5], [0.4999]], [[0.0], [0.0]]]], "float32")
    # 0.5 >= 0.5 is positive (TP), 0.4999 is not (FN).
    assert score(IoUScore(), HAND_TRUE, y_pred) == pytest.approx(0.5)
    assert score(IoUScore(threshold=0.3), HAND_TRUE, y_pred) == pytest.approx(1.0)


@pytest.mark.parametrize("per_image", [False, True])
def test_empty_mask_convention(per_image):
    empty = np.zeros((2, 4, 4, 1), "float32")
    full = np.ones((2, 4, 4, 1), "float32")
    for cls in CLASSES:
        assert score(cls(per_image=per_image), empty, empty) == 1.0
        assert score(cls(per_image=per_image), full, full) == 1.0
        assert score(cls(per_image=per_image), empty, full) == 0.0
        assert score(cls(per_image=per_image), full, empty) == 0.0


@pytest.mark.parametrize("per_image", [False, True])
def test_nothing_seen_scores_zero_not_one(per_image):
    """An empty batch, or every pixel ignored, is no evidence of a perfect score."""
    empty_batch = np.zeros((0, 4, 4, 1), "float32")
    void = np.full((1, 4, 4, 1), 255.0, "float32")
    for cls in CLASSES:
        assert score(cls(per_image=per_image), empty_batch, empty_batch) == 0.0
        assert float(ops.convert_to_numpy(cls(per_image=per_image).result())) == 0.0
        ignored = cls(per_image=per_image, ignore_class=255)
        assert score(ignored, void, np.zeros_like(void)) == 0.0
        # Then one empty image seen: the empty/empty convention, 1.
        assert score(ignored, np.zeros_like(void), np.zeros_like(void)) == 1.0
    assert score(keras.metrics.Precision(), empty_batch, empty_batch) == 0.0


@pytest.mark.parametrize("cls", CLASSES)
def test_a_nan_target_gives_a_nan_score(cls):
    y_true = np.zeros((2, 4, 4, 1), "float32")
    y_true[1, 0, 0, 0] = np.nan
    for per_image in (False, True):
        assert math.isnan(score(cls(per_image=per_image), y_true, np.zeros_like(y_true)))


def test_per_image_against_pooled_by_hand():
    # Image 1: IoU 1/3; image 2: empty mask, empty prediction: 1.
    y_true = np.concatenate([HAND_TRUE, np.zeros_like(HAND_TRUE)])
    y_pred = np.concatenate([HAND_PRED, np.zeros_like(HAND_PRED)])
    assert score(IoUScore(per_image=True), y_true, y_pred) == pytest.approx(2 / 3)
    assert score(IoUScore(), y_true, y_pred) == pytest.approx(1 / 3)
    assert score(DiceCoefficient(per_image=True), y_true, y_pred) == pytest.approx(0.75)


def test_sample_weight():
    y_true = np.concatenate([HAND_TRUE, np.ones_like(HAND_TRUE)])
    y_pred = np.concatenate([HAND_PRED, np.zeros_like(HAND_PRED)])
    image_weights = np.array([1.0, 0.0])
    assert score(IoUScore(), y_true, y_pred, image_weights) == pytest.approx(1 / 3)
    assert score(IoUScore(per_image=True), y_true, y_pred, image_weights) == pytest.approx(1 / 3)
    # Per-pixel weights: drop the false positive of image 1 and all of image 2.
    pixel_weights = np.ones((2, 2, 2), "float32")
    pixel_weights[0, 1, 0] = 0.0
    pixel_weights[1] = 0.0
    assert score(IoUScore(), y_true, y_pred, pixel_weights) == pytest.approx(1 / 2)
    assert score(IoUScore(), y_true, y_pred, pixel_weights[..., None]) == pytest.approx(1 / 2)


@pytest.mark.parametrize("cls", CLASSES)
def test_fractional_pixel_weights(cls):
    rng = np.random.default_rng(4)
    t = rng.random((3, 8, 8, 1)) < 0.4
    p = rng.random((3, 8, 8, 1))
    w = rng.uniform(0, 3, (3, 8, 8))
    pred = p >= 0.5
    tp = np.sum(w[..., None] * (pred & t))
    fp = np.sum(w[..., None] * (pred & ~t))
    fn = np.sum(w[..., None] * (~pred & t))
    num, den = {
        DiceCoefficient: (2 * tp, 2 * tp + fp + fn),
        IoUScore: (tp, tp + fp + fn),
        Precision: (tp, tp + fp),
        Recall: (tp, tp + fn),
    }[cls]
    got = score(cls(), t.astype("float32"), p.astype("float32"), w.astype("float32"))
    assert got == pytest.approx(num / den, abs=1e-6)


def test_ignore_label_binary():
    y_true = HAND_TRUE.copy()
    y_true[0, 1, 0, 0] = 255.0  # the false positive becomes void
    assert score(IoUScore(ignore_class=255), y_true, HAND_PRED) == pytest.approx(1 / 2)
    # An image that is entirely void is not counted as an image.
    void = np.full_like(HAND_TRUE, 255.0)
    y_true2 = np.concatenate([HAND_TRUE, void])
    y_pred2 = np.concatenate([HAND_PRED, HAND_PRED])
    metric = IoUScore(per_image=True, ignore_class=255)
    assert score(metric, y_true2, y_pred2) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("cls", "kwargs", "expected"),
    [
        # Per class IoU: 1/2, 1, 1/2; Dice: 2/3, 1, 2/3.
        (IoUScore, {}, 2 / 3),
        (IoUScore, {"average": "micro"}, 3 / 5),
        (IoUScore, {"include_background": False}, 3 / 4),
        (IoUScore, {"ignore_class": 2}, 1.0),
        (DiceCoefficient, {}, 7 / 9),
        (DiceCoefficient, {"average": "micro"}, 3 / 4),
        (Precision, {}, 5 / 6),
        (Recall, {}, 5 / 6),
        (IoUScore, {"per_image": True}, 2 / 3),
    ],
)
def test_hand_computed_multiclass(cls, kwargs, expected):
    assert score(cls(num_classes=3, **kwargs), MC_IDS, MC_PRED) == pytest.approx(expected)
    one_hot = np.eye(3, dtype="float32")[MC_IDS[..., 0]]
    assert score(cls(num_classes=3, **kwargs), one_hot, MC_PRED) == pytest.approx(expected)
    assert score(cls(num_classes=3, **kwargs), MC_IDS[..., 0], MC_PRED) == pytest.approx(expected)


def test_multiclass_absent_class_is_left_out_of_the_average():
    # Class 3 appears in neither labels nor predictions.
    y_pred = np.concatenate([MC_PRED, np.zeros_like(MC_PRED[..., :1])], axis=-1)
    assert score(IoUScore(num_classes=4), MC_IDS, y_pred) == pytest.approx(2 / 3)


def test_multiclass_ignore_label_outside_the_classes():
    ids = MC_IDS.copy()
    ids[0, 1, 1, 0] = 255  # the one wrong pixel becomes void
    assert score(IoUScore(num_classes=3, ignore_class=255), ids, MC_PRED) == pytest.approx(1.0)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.9])
def test_from_logits_matches_probabilities(cls, threshold):
    rng = np.random.default_rng(7)
    y_true = (rng.random((3, 8, 8, 1)) < 0.4).astype("float32")
    logits = rng.normal(0, 3, y_true.shape).astype("float32")
    probs = ops.convert_to_numpy(ops.sigmoid(logits))
    cut = math.log(threshold / (1 - threshold))
    logits[np.abs(logits - cut) < 1e-3] += 0.01  # keep clear of the float32 tie
    assert score(cls(from_logits=True, threshold=threshold), y_true, logits) == pytest.approx(
        score(cls(threshold=threshold), y_true, probs), abs=1e-7
    )


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_and_extreme_inputs(cls, dtype):
    rng = np.random.default_rng(0)
    y_true = (rng.random((2, 256, 256, 1)) < 0.6).astype("float32")
    logits = 1e4 * (2 * (rng.random(y_true.shape) < 0.5) - 1)
    expected = score(cls(from_logits=True), y_true, logits.astype("float32"))
    got = score(cls(from_logits=True), ops.cast(y_true, dtype), ops.cast(logits, dtype))
    assert got == pytest.approx(expected, abs=1e-7)
    assert 0.0 <= got <= 1.0
    ones = ops.cast(np.ones_like(y_true), dtype)
    assert score(cls(), ones, ones) == 1.0


# --------------------------------------------------------------------------- #
# Streaming: exact over uneven batches, order-free
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("per_image", [False, True])
@given(data=binary_data(min_images=10, max_images=10), seed=st.integers(0, 1000))
def test_seven_uneven_batches_equal_one_batch(data, seed, per_image, cls):
    y_true, y_pred = data
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(y_true)), size=6, replace=False))
    whole = cls(per_image=per_image)
    expected = score(whole, y_true, y_pred)
    streamed = cls(per_image=per_image)
    for part_true, part_pred in zip(np.split(y_true, cuts), np.split(y_pred, cuts), strict=True):
        streamed.update_state(part_true, part_pred)
    assert float(ops.convert_to_numpy(streamed.result())) == pytest.approx(expected, abs=1e-6)
    if not per_image:
        tp, fp, fn = numpy_counts(y_true, y_pred)
        np.testing.assert_array_equal(ops.convert_to_numpy(streamed.true_positives), [tp])
        np.testing.assert_array_equal(ops.convert_to_numpy(streamed.false_positives), [fp])
        np.testing.assert_array_equal(ops.convert_to_numpy(streamed.false_negatives), [fn])


@pytest.mark.parametrize("average", ["macro", "micro"])
def test_seven_uneven_batches_multiclass(average):
    rng = np.random.default_rng(11)
    ids = rng.integers(0, 4, (10, 8, 8, 1))
    logits = rng.normal(size=(10, 8, 8, 4)).astype("float32")
    for per_image in (False, True):
        whole = IoUScore(num_classes=4, average=average, per_image=per_image, from_logits=True)
        expected = score(whole, ids, logits)
        streamed = IoUScore(num_classes=4, average=average, per_image=per_image, from_logits=True)
        for part_ids, part_logits in zip(
            np.split(ids, [1, 3, 4, 6, 7, 9]), np.split(logits, [1, 3, 4, 6, 7, 9]), strict=True
        ):
            streamed.update_state(part_ids, part_logits)
        assert float(ops.convert_to_numpy(streamed.result())) == pytest.approx(expected, abs=1e-6)


@given(data=binary_data(min_images=2, max_images=4), seed=st.integers(0, 1000))
def test_batch_order_invariance_bounds_and_perfect_score(data, seed):
    y_true, y_pred = data
    order = np.random.default_rng(seed).permutation(len(y_true))
    for cls in CLASSES:
        for per_image in (False, True):
            a = score(cls(per_image=per_image), y_true, y_pred)
            b = score(cls(per_image=per_image), y_true[order], y_pred[order])
            assert a == pytest.approx(b, abs=1e-6)
            assert 0.0 <= a <= 1.0
            assert score(cls(per_image=per_image), y_true, y_true) == 1.0  # perfect


def test_reset_state():
    metric = IoUScore()
    score(metric, HAND_TRUE, HAND_PRED)
    metric.reset_state()
    assert score(metric, HAND_TRUE, HAND_TRUE) == 1.0


# --------------------------------------------------------------------------- #
# Agreement with Keras where the conventions coincide
# --------------------------------------------------------------------------- #


@given(data=binary_data(max_images=3), threshold=st.sampled_from([0.5, 0.3, 0.7]))
def test_iou_agrees_with_keras_binary_iou(data, threshold):
    y_true, y_pred = data
    tp, fp, fn = numpy_counts(y_true, y_pred, threshold)
    ours = score(IoUScore(threshold=threshold), y_true, y_pred)
    keras_iou = keras.metrics.BinaryIoU(target_class_ids=[1], threshold=threshold)
    theirs = score(keras_iou, y_true, y_pred)
    if tp + fp + fn > 0:  # both tp / (tp + fp + fn)
        assert ours == pytest.approx(theirs, abs=1e-6)
    else:  # nothing to score: Keras says 0, we say 1 (empty prediction of empty mask)
        assert (ours, theirs) == (1.0, 0.0)


@given(data=binary_data(max_images=3))
def test_precision_recall_agree_with_keras(data):
    y_true, y_pred = data
    y_pred = np.where(y_pred == 0.5, 0.51, y_pred)  # Keras compares with >, we with >=
    tp, fp, fn = numpy_counts(y_true, y_pred)
    if tp + fp > 0:
        assert score(Precision(), y_true, y_pred) == pytest.approx(
            score(keras.metrics.Precision(thresholds=0.5), y_true, y_pred), abs=1e-6
        )
    if tp + fn > 0:
        assert score(Recall(), y_true, y_pred) == pytest.approx(
            score(keras.metrics.Recall(thresholds=0.5), y_true, y_pred), abs=1e-6
        )


@pytest.mark.parametrize("ignore_class", [None, 255])
def test_multiclass_iou_agrees_with_keras_mean_iou(ignore_class):
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 3, (4, 8, 8, 1))
    ids[0, :2] = 255
    if ignore_class is None:
        ids[ids == 255] = 0
    logits = rng.normal(size=(4, 8, 8, 3)).astype("float32")
    ours = score(IoUScore(num_classes=3, ignore_class=ignore_class), ids, logits)
    keras_iou = keras.metrics.MeanIoU(
        num_classes=3, sparse_y_true=True, sparse_y_pred=False, ignore_class=ignore_class
    )
    assert ours == pytest.approx(score(keras_iou, ids, logits), abs=1e-6)


# --------------------------------------------------------------------------- #
# Configs, saving
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("cls", CLASSES)
def test_config_round_trip(cls):
    import inspect

    metric = cls(
        num_classes=4,
        threshold=0.3,
        from_logits=True,
        per_image=True,
        average="micro",
        ignore_class=255,
        include_background=False,
        sparse_y_true=True,
        name="custom",
    )
    config = metric.get_config()
    params = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert set(config) == params
    assert cls.from_config(config).get_config() == config
    serialized = keras.saving.serialize_keras_object(metric)
    assert serialized["registered_name"] == f"keras_unet_seg>{cls.__name__}"
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(clone) is cls and clone.get_config() == config


def test_compiled_model_survives_keras_file(tmp_path):
    from keras_unet_seg.losses import DiceLoss

    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 16, 16, 2)).astype("float32")
    y = (rng.random((7, 16, 16, 1)) < 0.4).astype("float32")
    inputs = keras.Input((16, 16, 2))
    outputs = keras.layers.Conv2D(
        1, 3, padding="same", kernel_initializer=keras.initializers.GlorotUniform(seed=3)
    )(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        loss=DiceLoss(from_logits=True),
        metrics=[
            IoUScore(from_logits=True),
            DiceCoefficient(from_logits=True, per_image=True),
            Precision(from_logits=True, threshold=0.4),
            Recall(from_logits=True),
        ],
    )
    before = model.evaluate(x, y, batch_size=3, verbose=0, return_dict=True)
    # The streamed value is exact: equal to the IoU of all pixels at once.
    tp, fp, fn = numpy_counts(y, model.predict(x, verbose=0), threshold=0.0)
    assert before["iou_score"] == pytest.approx(tp / (tp + fp + fn), abs=1e-6)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True by default
    after = loaded.evaluate(x, y, batch_size=3, verbose=0, return_dict=True)
    assert after == pytest.approx(before, abs=1e-6)
    assert set(before) == {"loss", "iou_score", "dice_coefficient", "precision", "recall"}


# --------------------------------------------------------------------------- #
# Argument errors
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"num_classes": 0},
            "Invalid value for argument `num_classes`. Expected a positive integer "
            "(1 for binary). Received: num_classes=0",
        ),
        (
            {"threshold": 1.5},
            "Invalid value for argument `threshold`. Expected a number in [0, 1]. "
            "Received: threshold=1.5",
        ),
        (
            {"average": "weighted"},
            "Invalid value for argument `average`. Expected 'macro' or 'micro'. "
            "Received: average='weighted'",
        ),
        (
            {"per_image": None},
            "Invalid value for argument `per_image`. Expected a boolean (True or False). "
            "Received: per_image=None",
        ),
        (
            {"num_classes": 2, "include_background": False, "ignore_class": 1},
            "Invalid value for argument `include_background`. Expected at least one class "
            "left to score (ignore_class=1 with 2 channels). Received: include_background=False",
        ),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        IoUScore(**kwargs)


def test_update_errors():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `y_pred`. Expected a channels-last tensor of rank >= 3 "
            "with num_classes=1 channels. Received: y_pred=<tensor of shape (1, 4, 4, 3)>"
        ),
    ):
        IoUScore().update_state(np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 4, 3)))


# --------------------------------------------------------------------------- #
# MirroredStrategy (TensorFlow only, in a fresh process: logical devices must be
# configured before TensorFlow initialises)
# --------------------------------------------------------------------------- #

MIRRORED_SCRIPT = r"""
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from keras_unet_seg.losses import DiceLoss
from keras_unet_seg.metrics import DiceCoefficient, IoUScore, Precision

rng = np.random.default_rng(0)
x = rng.normal(size=(13, 16, 16, 2)).astype("float32")
y = (rng.random((13, 16, 16, 1)) < 0.3).astype("float32")
ids = rng.integers(0, 3, (13, 16, 16, 1))


def build(channels):
    inputs = keras.Input((16, 16, 2))
    outputs = keras.layers.Conv2D(
        channels, 3, padding="same",
        kernel_initializer=keras.initializers.GlorotUniform(seed=1),
    )(inputs)
    model = keras.Model(inputs, outputs)
    binary = channels == 1
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0),
        jit_compile=False,  # XLA compiling on CPU costs more than these few steps
        loss=DiceLoss(from_logits=True),
        metrics=[
            IoUScore(num_classes=channels, from_logits=True),
            DiceCoefficient(num_classes=channels, from_logits=True, per_image=True),
            Precision(num_classes=channels, from_logits=True, average="micro"),
        ],
    )
    return model


results = {}
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
for channels, labels in ((1, y), (3, ids)):
    # Binary: 13 images in batches of 4, so the last batch leaves replica 2 empty.
    # TensorFlow's oneDNN Conv2D returns that empty batch with the input's channel
    # count, (0, 16, 16, 2): a 1-channel output still broadcasts, a 3-channel one
    # breaks any loss inside TensorFlow, so the 3-class model gets 12 images.
    n = 13 if channels == 1 else 12
    data = tf.data.Dataset.from_tensor_slices((x[:n], labels[:n])).batch(4)
    # fit() under MirroredStrategy fails inside TensorFlow/Keras when the replicas'
    # shares of a batch differ (AddN of unequal shapes) or one is empty (the Conv2D
    # gradient): train on 12 images in batches of 4, 2 per replica.
    train = tf.data.Dataset.from_tensor_slices((x[:12], labels[:12])).batch(4)
    single = build(channels)
    weights = single.get_weights()
    with strategy.scope():
        mirrored = build(channels)
    mirrored.set_weights(weights)
    single_eval = single.evaluate(data, verbose=0, return_dict=True)
    results[channels] = {
        "replicas": strategy.num_replicas_in_sync,
        "single_eval": single_eval,
        "mirrored_eval": mirrored.evaluate(data, verbose=0, return_dict=True),
        # With a learning rate of 0, fitting one epoch logs what evaluating the
        # same batches gives: the single-device reference needs no training step.
        "single_fit": (
            single.evaluate(train, verbose=0, return_dict=True) if n != 12 else single_eval
        ),
        "mirrored_fit": {k: v[-1] for k, v in mirrored.fit(train, verbose=0).history.items()},
    }
    if channels == 1:
        pred = keras.ops.convert_to_numpy(single(x)) >= 0
        true = y >= 0.5
        tp, fp, fn = (np.sum(pred & true), np.sum(pred & ~true), np.sum(~pred & true))
        results[channels]["exact_iou"] = float(tp / (tp + fp + fn))
print("RESULT " + json.dumps(results))
"""


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.distribute needs TensorFlow"
)
def test_mirrored_strategy_matches_single_device():
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    results = json.loads(lines[-1][len("RESULT ") :])
    for channels, result in results.items():
        assert result["replicas"] == 2
        for phase in ("eval", "fit"):
            single, mirrored = result[f"single_{phase}"], result[f"mirrored_{phase}"]
            assert set(single) == set(mirrored)
            for key in single:
                assert mirrored[key] == pytest.approx(single[key], abs=1e-6), (
                    channels,
                    phase,
                    key,
                )
        if channels == "1":
            assert result["mirrored_eval"]["iou_score"] == pytest.approx(
                result["exact_iou"], abs=1e-6
            )


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_nan_or_infinite_probability_is_never_a_perfect_score(cls, per_image, bad):
    y_true = np.zeros((2, 4, 4, 1), "float32")
    y_pred = np.zeros((2, 4, 4, 1), "float32")
    y_pred[1, 0, 0, 0] = bad
    assert math.isnan(score(cls(per_image=per_image), y_true, y_pred))
    # A NaN softmax output too; an infinite logit is a saturated probability.
    probs = np.full((2, 4, 4, 3), 1 / 3, "float32")
    probs[0, 1, 1] = np.nan
    assert math.isnan(score(cls(num_classes=3, per_image=per_image), y_true, probs))
    assert score(cls(from_logits=True), np.ones_like(y_true), np.full_like(y_pred, np.inf)) == 1


@pytest.mark.parametrize("cls", CLASSES)
def test_batch_or_spatial_mismatch_names_both_shapes(cls):
    for true_shape, pred_shape in (((2, 4, 4, 1), (1, 4, 4, 1)), ((2, 4, 4, 1), (2, 5, 4, 1))):
        message = (
            "Invalid value for argument `y_true`. Expected the batch and spatial size of "
            f"`y_pred`, whose shape is {pred_shape} (every axis but the last must agree). "
            f"Received: y_true=<tensor of shape {true_shape}>"
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            cls().update_state(np.zeros(true_shape), np.zeros(pred_shape))


# --------------------------------------------------------------------------- #
# Volumes: (batch, depth, height, width, channels)
# --------------------------------------------------------------------------- #

VOLUME = (2, 7, 9, 5)  # batch, depth, height, width


def numpy_score(cls, tp, fp, fn):
    """The score of NumPy counts, written out (no denominator is 0 in these cases)."""
    num, den = {
        DiceCoefficient: (2 * tp, 2 * tp + fp + fn),
        IoUScore: (tp, tp + fp + fn),
        Precision: (tp, tp + fp),
        Recall: (tp, tp + fn),
    }[cls]
    return num / den


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("per_image", [False, True])
def test_binary_volumes_equal_a_numpy_count_of_weighted_voxels(cls, per_image):
    rng = np.random.default_rng(5)
    t = rng.random((*VOLUME, 1)) < 0.4
    logits = rng.normal(0, 2, (*VOLUME, 1)).astype("float32")
    w = rng.uniform(0, 3, VOLUME)[..., None]
    pred = logits >= math.log(0.3 / 0.7)  # threshold 0.3 on the sigmoid
    axes = (1, 2, 3, 4) if per_image else None
    tp, fp, fn = (np.sum(w * m, axis=axes) for m in (pred & t, pred & ~t, ~pred & t))
    expected = np.mean(numpy_score(cls, tp, fp, fn))
    metric = cls(threshold=0.3, from_logits=True, per_image=per_image)
    got = score(metric, t.astype("float32"), logits, w[..., 0].astype("float32"))
    assert got == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("average", ["macro", "micro"])
def test_three_class_volumes_equal_a_numpy_count(cls, average):
    """Class ids with an ignore label, background left out, streamed in two batches."""
    rng = np.random.default_rng(6)
    ids = rng.integers(0, 3, VOLUME)
    ids[rng.random(VOLUME) < 0.1] = 255
    probs = rng.dirichlet(np.ones(3), VOLUME).astype("float32")
    winner, valid = probs.argmax(-1), ids != 255
    counts = np.array(
        [
            [np.sum(valid & m) for m in (t & p, ~t & p, t & ~p)]
            for t, p in ((ids == c, winner == c) for c in (1, 2))
        ]
    )
    if average == "micro":
        expected = numpy_score(cls, *counts.sum(axis=0))
    else:
        expected = np.mean([numpy_score(cls, *row) for row in counts])
    metric = cls(num_classes=3, average=average, ignore_class=255, include_background=False)
    for part in (slice(0, 1), slice(1, 2)):
        metric.update_state(ids[part][..., None], probs[part])
    assert float(ops.convert_to_numpy(metric.result())) == pytest.approx(expected, abs=1e-6)


@given(seed=st.integers(0, 2**16), density=st.sampled_from([0.0, 0.2, 1.0]))
def test_a_volume_counts_as_its_slices_laid_out_as_an_image(seed, density):
    """Every voxel counts once: a volume has the counts and the per-image score of its
    slices side by side in one image, empty and full masks included."""
    rng = np.random.default_rng(seed)
    volumes = [(rng.random((*VOLUME, 1)) < density).astype("float32")]
    volumes.append(rng.random(volumes[0].shape).astype("float32"))
    slices = [v.reshape(2, 7 * 9, 5, 1) for v in volumes]
    pooled_volume, pooled_slices = IoUScore(), IoUScore()
    pooled_volume.update_state(*volumes)
    pooled_slices.update_state(*slices)
    for name in ("true_positives", "false_positives", "false_negatives"):
        np.testing.assert_array_equal(
            ops.convert_to_numpy(getattr(pooled_volume, name)),
            ops.convert_to_numpy(getattr(pooled_slices, name)),
        )
    per_image = score(IoUScore(per_image=True), *volumes)
    assert per_image == pytest.approx(score(IoUScore(per_image=True), *slices), abs=1e-6)


@pytest.mark.parametrize("cls", CLASSES)
def test_float16_volumes_score_as_float32(cls):
    rng = np.random.default_rng(8)
    y_true = (rng.random((1, 40, 40, 48, 1)) < 0.5).astype("float32")
    y_pred = rng.random(y_true.shape).astype("float32")
    y_pred[np.abs(y_pred - 0.5) < 1e-3] = 0.4  # clear of float16's rounding at the threshold
    expected = score(cls(), y_true, y_pred)
    assert score(cls(), ops.cast(y_true, "float16"), ops.cast(y_pred, "float16")) == expected
