"""Tests of the loss classes and functions: properties, hand values, Keras agreement, saving.

Backend-agnostic: tests/test_backends.py runs this file again under JAX and PyTorch.
"""

import math
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keras import ops

from keras_unet_seg import losses
from keras_unet_seg.losses import (
    BCEDiceLoss,
    CombinedLoss,
    DiceLoss,
    FocalTverskyLoss,
    JaccardLoss,
    TverskyLoss,
)

# Losses whose value lies in [0, 1], by factory (fresh instances for each use).
BOUNDED = {
    "dice": DiceLoss,
    "jaccard": JaccardLoss,
    "tversky": lambda **kw: TverskyLoss(alpha=0.3, beta=0.7, **kw),
    "focal_tversky": FocalTverskyLoss,
    "focal_tversky_gamma2": lambda **kw: FocalTverskyLoss(gamma=2.0, **kw),
}
ALL = {**BOUNDED, "bce_dice": BCEDiceLoss}


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def value(loss, y_true, y_pred, **kwargs):
    return float(to_numpy(loss(y_true, y_pred, **kwargs)))


def gradient(fn, x):
    """d fn(x) / dx with the active backend's autodiff (fn returns a scalar)."""
    backend = keras.backend.backend()
    x = np.asarray(x, dtype="float32")
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = fn(x)
        return tape.gradient(out, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(jax.numpy.asarray(x)))
    if backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        fn(x).backward()
        return x.grad.detach().cpu().numpy()
    pytest.skip(f"no gradient helper for backend {backend}")
    return None


@st.composite
def binary_batches(draw):
    """(y_true, y_pred) of shape (batch, s, s, 1): empty, full, sparse masks; soft,
    hard, all-zero and all-one predictions."""
    # Few distinct shapes: JAX compiles every op anew for each one.
    batch = draw(st.integers(1, 3))
    size = 8
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    kind = draw(st.sampled_from(["uniform", "hard", "zeros", "ones", "near"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    y_true = (rng.random((batch, size, size, 1)) < density).astype("float32")
    if kind == "uniform":
        y_pred = rng.random(y_true.shape)
    elif kind == "hard":
        y_pred = (rng.random(y_true.shape) < 0.5).astype("float32")
    elif kind == "zeros":
        y_pred = np.zeros(y_true.shape)
    elif kind == "ones":
        y_pred = np.ones(y_true.shape)
    else:
        y_pred = np.clip(y_true + rng.normal(0, 0.2, y_true.shape), 0, 1)
    return y_true, y_pred.astype("float32")


HAND_TRUE = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]], dtype="float32")
HAND_PRED = np.array([[[[1.0], [0.5]], [[0.5], [0.0]]]], dtype="float32")
# Soft counts: TP = 1.5, FP = 0.5, FN = 0.5.


# --------------------------------------------------------------------------- #
# Properties
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("per_image", [True, False])
@given(data=binary_batches())
def test_bounded_and_finite(data, per_image):
    y_true, y_pred = data
    for name, make in BOUNDED.items():
        result = value(make(per_image=per_image), y_true, y_pred)
        assert 0.0 <= result <= 1.0, name
    assert math.isfinite(value(BCEDiceLoss(per_image=per_image), y_true, y_pred))
    assert value(BCEDiceLoss(per_image=per_image), y_true, y_pred) >= 0.0


@given(data=binary_batches())
def test_perfect_prediction_has_loss_zero(data):
    y_true, _ = data
    for name, make in BOUNDED.items():
        assert value(make(), y_true, y_true) == pytest.approx(0.0, abs=1e-6), name
        assert value(make(per_image=False), y_true, y_true) == pytest.approx(0.0, abs=1e-6)
    # Probabilities are clipped to [1e-7, 1 - 1e-7] before the log.
    assert value(BCEDiceLoss(), y_true, y_true) == pytest.approx(0.0, abs=1e-6)


@given(data=binary_batches())
def test_symmetry(data):
    y_true, y_pred = data
    for make in (DiceLoss, JaccardLoss, lambda: TverskyLoss(0.4, 0.4)):
        assert value(make(), y_true, y_pred) == pytest.approx(
            value(make(), y_pred, y_true), abs=1e-6
        )
    # Swapping prediction and truth swaps false positives and false negatives.
    assert value(TverskyLoss(0.2, 0.8), y_true, y_pred) == pytest.approx(
        value(TverskyLoss(0.8, 0.2), y_pred, y_true), abs=1e-6
    )


@pytest.mark.parametrize("per_image", [True, False])
@given(data=binary_batches(), seed=st.integers(0, 1000))
def test_batch_order_invariance(data, seed, per_image):
    y_true, y_pred = data
    order = np.random.default_rng(seed).permutation(len(y_true))
    for make in ALL.values():
        assert value(make(per_image=per_image), y_true, y_pred) == pytest.approx(
            value(make(per_image=per_image), y_true[order], y_pred[order]), abs=1e-6
        )


@pytest.mark.parametrize("name", sorted(BOUNDED))
@given(data=binary_batches(), scale=st.sampled_from([1.0, 8.0, 30.0]))
def test_from_logits_matches_sigmoid(data, scale, name):
    y_true, _ = data
    rng = np.random.default_rng(int(y_true.sum()) + int(scale))
    logits = rng.uniform(-scale, scale, y_true.shape).astype("float32")
    probs = to_numpy(ops.sigmoid(logits)).astype("float32")
    make = BOUNDED[name]
    assert value(make(from_logits=True), y_true, logits) == pytest.approx(
        value(make(), y_true, probs), abs=1e-6
    )


@given(data=binary_batches(), scale=st.sampled_from([1.0, 8.0, 30.0]))
def test_bce_dice_from_logits(data, scale):
    y_true, _ = data
    rng = np.random.default_rng(int(y_true.sum()) + int(scale))
    logits = rng.uniform(-scale, scale, y_true.shape).astype("float32")
    # float64 reference: stable BCE from the logits, Dice on sigmoid(z), per image.
    z, t = logits.astype("float64"), y_true.astype("float64")
    bce = np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))), axis=(1, 2, 3))
    sig = 1 / (1 + np.exp(-z))
    tp = np.sum(t * sig, axis=(1, 2, 3))
    dice = 1 - (2 * tp + 1e-5) / (np.sum(t + sig, axis=(1, 2, 3)) + 1e-5)
    got = value(BCEDiceLoss(from_logits=True), y_true, logits)
    assert got == pytest.approx(np.mean(bce + dice), rel=1e-6, abs=1e-6)
    # On probabilities sigmoid(z) the BCE is clipped at 1e-7 and log(1 - p) loses
    # float32 digits as p -> 1, so it matches to 1e-5 relative for |z| <= 10 only.
    if scale <= 10:
        probs = to_numpy(ops.sigmoid(logits)).astype("float32")
        assert got == pytest.approx(value(BCEDiceLoss(), y_true, probs), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", sorted(ALL))
def test_from_logits_matches_softmax_multiclass(name):
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 4, (2, 8, 8, 3)).astype("float32")
    ids = rng.integers(0, 3, (2, 8, 8, 1))
    probs = to_numpy(ops.softmax(logits, axis=-1)).astype("float32")
    make = ALL[name]
    assert value(make(from_logits=True), ids, logits) == pytest.approx(
        value(make(), ids, probs), abs=1e-6
    )


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_no_nan_or_inf_at_extremes(name, dtype):
    make = ALL[name]
    empty = np.zeros((2, 8, 8, 1), "float32")
    full = np.ones((2, 8, 8, 1), "float32")
    half = np.concatenate([empty[:, :4], full[:, 4:]], axis=1)
    cases = []
    for y_true in (empty, full, half):
        for sign in (-1.0, 1.0):
            cases.append((y_true, sign * 1e4 * np.ones_like(y_true), True))
            cases.append((y_true, sign * 1e4 * (2 * half - 1), True))
        for y_pred in (empty, full, half):
            cases.append((y_true, y_pred, False))
    for y_true, y_pred, from_logits in cases:
        y_pred = ops.cast(y_pred, dtype)
        for kwargs in ({}, {"per_image": False}, {"smooth": 0.0}):
            result = value(make(from_logits=from_logits, **kwargs), y_true, y_pred)
            assert math.isfinite(result), (y_true.mean(), from_logits, kwargs)


@pytest.mark.parametrize("name", sorted(ALL))
def test_infinite_logits_give_a_finite_loss_and_gradient(name):
    y_true = np.concatenate([np.zeros((2, 4, 8, 1)), np.ones((2, 4, 8, 1))], axis=1)
    for logits in (np.inf * (2 * y_true - 1), -np.inf * (2 * y_true - 1)):
        logits = logits.astype("float32")
        loss = ALL[name](from_logits=True)
        assert math.isfinite(value(loss, y_true, logits)), logits[0, 0, 0]
        assert np.isfinite(gradient(lambda x, loss=loss: loss(y_true, x), logits)).all()
    right = np.where(y_true > 0, np.inf, -np.inf).astype("float32")
    assert value(ALL[name](from_logits=True), y_true, right) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_nan_or_infinite_probability_is_never_a_perfect_score(name, bad):
    """An empty mask scored by an all-bad prediction: NaN, whatever the reduction."""
    y_true = np.zeros((2, 4, 4, 1), "float32")
    y_pred = np.zeros((2, 4, 4, 1), "float32")
    y_pred[1, 2, 3, 0] = bad  # one bad pixel in the second image
    for kwargs in ({}, {"per_image": False}):
        assert math.isnan(value(ALL[name](**kwargs), y_true, y_pred)), kwargs
    per_image = to_numpy(ALL[name](reduction=None)(y_true, y_pred))
    assert per_image[0] == pytest.approx(0.0, abs=1e-6) and math.isnan(per_image[1])
    if np.isnan(bad):  # a NaN logit too; an infinite one is a saturated probability
        assert math.isnan(value(ALL[name](from_logits=True), y_true, y_pred))


@pytest.mark.parametrize("name", sorted(ALL))
def test_a_nan_target_gives_a_nan_loss(name):
    """NaN targets are never a perfect score (focal Tversky's power used to hide them)."""
    y_true = np.zeros((2, 4, 4, 1), "float32")
    y_true[1, 0, 0, 0] = np.nan
    y_pred = np.full((2, 4, 4, 1), 0.3, "float32")
    assert math.isnan(value(ALL[name](), y_true, y_pred))
    per_image = to_numpy(ALL[name](reduction=None)(y_true, y_pred))
    assert not math.isnan(per_image[0]) and math.isnan(per_image[1])


@pytest.mark.parametrize("name", sorted(ALL))
def test_an_empty_batch_has_loss_zero(name):
    """As `keras.losses.BinaryCrossentropy` gives: no image adds nothing to the sum."""
    empty = np.zeros((0, 4, 4, 1), "float32")
    assert value(keras.losses.BinaryCrossentropy(), empty, empty) == 0.0
    for reduction in ("sum_over_batch_size", "sum", "mean_with_sample_weight"):
        assert value(ALL[name](reduction=reduction), empty, empty) == 0.0
    assert tuple(ALL[name](reduction=None)(empty, empty).shape) == (0,)


def test_terminate_on_nan_sees_a_nan_prediction():
    """A model whose output turns NaN stops `fit` (the loss no longer hides it)."""
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Lambda(lambda x: x * np.float32("nan"))(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(loss=FocalTverskyLoss())
    history = model.fit(
        np.ones((4, 4, 4, 1), "float32"),
        np.zeros((4, 4, 4, 1), "float32"),
        batch_size=2,
        epochs=3,
        verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN()],
    )
    assert len(history.history["loss"]) == 1 and math.isnan(history.history["loss"][0])


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize(
    "true_shape, pred_shape",
    [((2, 4, 4, 1), (1, 4, 4, 1)), ((1, 4, 4, 1), (2, 4, 4, 1)), ((2, 4, 4, 1), (2, 4, 5, 1))],
)
def test_batch_or_spatial_mismatch_names_both_shapes(name, true_shape, pred_shape):
    message = (
        "Invalid value for argument `y_true`. Expected the batch and spatial size of "
        f"`y_pred`, whose shape is {pred_shape} (every axis but the last must agree). "
        f"Received: y_true=<tensor of shape {true_shape}>"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        ALL[name]()(np.zeros(true_shape), np.zeros(pred_shape))


@pytest.mark.parametrize(
    "fn", [losses.dice_loss, losses.jaccard_loss, losses.tversky_loss, losses.focal_tversky_loss]
)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_pure_functions_compute_in_float32(fn, dtype):
    # 2 x 256 x 256 ones: each image's sum (65536) passes float16's max of 65504.
    rng = np.random.default_rng(0)
    y_true = (rng.random((2, 256, 256, 1)) < 0.7).astype("float32")
    y_pred = np.ones_like(y_true)
    low = fn(ops.cast(y_true, dtype), ops.cast(y_pred, dtype))
    assert keras.backend.standardize_dtype(low.dtype) == "float32"
    np.testing.assert_allclose(to_numpy(low), to_numpy(fn(y_true, y_pred)), atol=1e-6)
    assert to_numpy(fn(ops.cast(y_true, dtype), ops.cast(y_true, dtype))) == pytest.approx(0.0)


def test_empty_mask_convention():
    empty = np.zeros((2, 8, 8, 1), "float32")
    for name, make in ALL.items():
        assert value(make(), empty, empty) == pytest.approx(0.0, abs=1e-6), name
    # smooth=0 too, by the rule of 0/0 of the metrics (keras.losses.Dice gives loss 1).
    for make in BOUNDED.values():
        assert value(make(smooth=0.0), empty, empty) == 0.0
    assert value(keras.losses.Dice(), empty, empty) == pytest.approx(1.0)


# --------------------------------------------------------------------------- #
# Gradients
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", sorted(ALL))
def test_gradients_finite_and_non_zero_at_saturated_logits(name):
    rng = np.random.default_rng(1)
    y_true = np.zeros((2, 8, 8, 1), "float32")
    y_true[:, 2:6, 2:6] = 1.0
    cases = {
        "mixed": 30.0 * np.where(rng.random(y_true.shape) < 0.5, 1.0, -1.0),
        "all_positive": np.full(y_true.shape, 30.0),
        "all_negative": np.full(y_true.shape, -30.0),
        "perfect": 30.0 * (2 * y_true - 1),
    }
    loss = ALL[name](from_logits=True)
    for case, logits in cases.items():
        grad = gradient(lambda z, loss=loss: loss(y_true, z), logits)
        assert np.all(np.isfinite(grad)), case
        if case != "perfect":
            assert np.any(grad != 0.0), case


@pytest.mark.parametrize("name", sorted(ALL))
def test_gradients_finite_and_non_zero_at_hard_probabilities(name):
    rng = np.random.default_rng(2)
    y_true = np.zeros((2, 8, 8, 1), "float32")
    y_true[:, 1:5, 3:7] = 1.0
    loss = ALL[name]()
    for case, y_pred in {
        "random_0_1": (rng.random(y_true.shape) < 0.5).astype("float32"),
        "zeros": np.zeros_like(y_true),
        "ones": np.ones_like(y_true),
        "perfect": y_true,
    }.items():
        grad = gradient(lambda p, loss=loss: loss(y_true, p), y_pred)
        assert np.all(np.isfinite(grad)), case
        if case != "perfect":
            assert np.any(grad != 0.0), case


def test_focal_tversky_gradient_finite_at_perfect_and_near_perfect():
    # (1 - TI) ** 0.75 has an infinite slope at TI = 1.
    y_true = np.zeros((1, 8, 8, 1), "float32")
    y_true[:, :4] = 1.0
    loss = FocalTverskyLoss(smooth=0.0)
    for y_pred in (y_true, np.clip(y_true + 1e-6, 0, 1), np.clip(y_true - 1e-7, 0, 1)):
        grad = gradient(lambda p: loss(y_true, p), y_pred)
        assert np.all(np.isfinite(grad))


# --------------------------------------------------------------------------- #
# Hand-computed values
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        (DiceLoss(smooth=0.0), 1 - 3.0 / 4.0),  # 2*1.5 / (2*1.5 + 0.5 + 0.5)
        (JaccardLoss(smooth=0.0), 1 - 1.5 / 2.5),
        (TverskyLoss(alpha=0.2, beta=0.8, smooth=0.0), 1 - 1.5 / (1.5 + 0.1 + 0.4)),
        (FocalTverskyLoss(alpha=0.2, beta=0.8, gamma=2.0, smooth=0.0), 0.25**2),
        (FocalTverskyLoss(smooth=0.0), (1 - 1.5 / 2.0) ** 0.75),
        (DiceLoss(smooth=1.0), 1 - 4.0 / 5.0),  # (3 + 1) / (4 + 1)
        (JaccardLoss(smooth=0.5), 1 - 2.0 / 3.0),
    ],
)
def test_hand_computed_binary(loss, expected):
    assert value(loss, HAND_TRUE, HAND_PRED) == pytest.approx(expected, abs=1e-6)


def test_hand_computed_bce_dice():
    # BCE per pixel: -log(1 - 1e-7), -log(0.5), -log(0.5), -log(1 - 1e-7)
    bce = (2 * math.log(2) - 2 * math.log(1 - 1e-7)) / 4
    dice = 0.25
    got = value(BCEDiceLoss(bce_weight=0.3, dice_weight=2.0, smooth=0.0), HAND_TRUE, HAND_PRED)
    assert got == pytest.approx(0.3 * bce + 2.0 * dice, abs=1e-6)
    logits = np.array([[[[2.0], [-1.0]], [[0.0], [-3.0]]]], "float32")
    sig = 1 / (1 + np.exp(-logits.astype("float64")))
    t = HAND_TRUE.astype("float64")
    bce = -np.mean(t * np.log(sig) + (1 - t) * np.log(1 - sig))
    tp = np.sum(t * sig)
    dice = 1 - 2 * tp / (np.sum(t) + np.sum(sig))
    got = value(BCEDiceLoss(from_logits=True, smooth=0.0), HAND_TRUE, logits)
    assert got == pytest.approx(bce + dice, abs=1e-6)


def test_per_image_against_pooled_by_hand():
    y_true = np.concatenate([HAND_TRUE, np.ones_like(HAND_TRUE)])
    y_pred = np.concatenate([HAND_PRED, np.ones_like(HAND_PRED)])
    # Image 1: 0.25, image 2: 0. Pooled: TP 5.5, FP 0.5, FN 0.5.
    assert value(DiceLoss(smooth=0.0), y_true, y_pred) == pytest.approx(0.125, abs=1e-6)
    assert value(DiceLoss(smooth=0.0, per_image=False), y_true, y_pred) == pytest.approx(
        1 - 11.0 / 12.0, abs=1e-6
    )
    per_image = losses.dice_loss(y_true, y_pred, smooth=0.0)
    np.testing.assert_allclose(to_numpy(per_image), [0.25, 0.0], atol=1e-6)


def test_sample_weight_weights_the_images():
    y_true = np.concatenate([HAND_TRUE, np.ones_like(HAND_TRUE)])
    y_pred = np.concatenate([HAND_PRED, np.zeros_like(HAND_PRED)])
    weights = np.array([1.0, 0.0])
    # per_image=True: Keras' rule, weighted per-image losses / batch size.
    got = value(DiceLoss(smooth=0.0), y_true, y_pred, sample_weight=weights)
    assert got == pytest.approx(0.25 / 2, abs=1e-6)
    # per_image=False: the weight of each image's pixels in the pooled sums.
    got = value(DiceLoss(smooth=0.0, per_image=False), y_true, y_pred, sample_weight=weights)
    assert got == pytest.approx(0.25, abs=1e-6)


@pytest.mark.parametrize("per_image", [True, False])
@pytest.mark.parametrize("weight_shape", [(3, 8, 8), (3, 8, 8, 1)])
def test_pixel_weights_go_into_the_sums(per_image, weight_shape):
    rng = np.random.default_rng(9)
    t = (rng.random((3, 8, 8, 1)) < 0.4).astype("float32")
    p = rng.random((3, 8, 8, 1)).astype("float32")
    w = rng.uniform(0, 3, (3, 8, 8, 1)).astype("float32")
    axes = (1, 2, 3) if per_image else (0, 1, 2, 3)
    t64, p64, w64 = t.astype("float64"), p.astype("float64"), w.astype("float64")
    tp = np.sum(w64 * t64 * p64, axis=axes)
    fp = np.sum(w64 * (1 - t64) * p64, axis=axes)
    fn = np.sum(w64 * t64 * (1 - p64), axis=axes)
    dice = np.mean(1 - 2 * tp / (2 * tp + fp + fn))
    bce = -(t64 * np.log(p64) + (1 - t64) * np.log(1 - p64))
    bce = np.mean(np.sum(w64 * bce, axis=axes) / np.sum(w64, axis=axes))
    weights = w.reshape(weight_shape)
    got = value(DiceLoss(smooth=0.0, per_image=per_image), t, p, sample_weight=weights)
    assert got == pytest.approx(dice, abs=1e-6)
    loss = BCEDiceLoss(smooth=0.0, per_image=per_image)
    assert value(loss, t, p, sample_weight=weights) == pytest.approx(bce + dice, abs=1e-5)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `sample_weight`. Expected weights of shape (batch,), "
            "(batch, *spatial) or (batch, *spatial, 1). Received: "
            "sample_weight=<tensor of shape (3, 8)>"
        ),
    ):
        DiceLoss()(t, p, sample_weight=w[:, :, 0, 0])


# Keras' own reduction of the per-image losses. Two images: Dice losses 0.25
# (HAND_*) and 1.0 (a full mask, an empty prediction); image weights 2 and 0.5.
RED_TRUE = np.concatenate([HAND_TRUE, np.ones_like(HAND_TRUE)])
RED_PRED = np.concatenate([HAND_PRED, np.zeros_like(HAND_PRED)])
RED_WEIGHTS = np.array([2.0, 0.5], "float32")


@pytest.mark.parametrize(
    ("reduction", "unweighted", "weighted"),
    [
        ("sum_over_batch_size", 1.25 / 2, (0.5 + 0.5) / 2),
        ("mean", 1.25 / 2, (0.5 + 0.5) / 2),
        ("sum", 1.25, 0.5 + 0.5),
        ("mean_with_sample_weight", 1.25 / 2, (0.5 + 0.5) / 2.5),
        (None, [0.25, 1.0], [0.5, 0.5]),
        ("none", [0.25, 1.0], [0.5, 0.5]),
    ],
)
def test_every_keras_reduction_by_hand(reduction, unweighted, weighted):
    loss = DiceLoss(smooth=0.0, reduction=reduction)
    np.testing.assert_allclose(to_numpy(loss(RED_TRUE, RED_PRED)), unweighted, atol=1e-6)
    got = loss(RED_TRUE, RED_PRED, sample_weight=RED_WEIGHTS)
    np.testing.assert_allclose(to_numpy(got), weighted, atol=1e-6)
    # A scalar weight scales the per-image losses (and, as in Keras, is the
    # divisor of "mean_with_sample_weight").
    got = loss(RED_TRUE, RED_PRED, sample_weight=3.0)
    scaled = 1.25 if reduction == "mean_with_sample_weight" else np.multiply(unweighted, 3.0)
    np.testing.assert_allclose(to_numpy(got), scaled, atol=1e-5)
    # Pixel weights are inside each image's loss (Dice is scale-invariant): the
    # reduction sees unweighted per-image losses.
    pixels = np.full((2, 2, 2, 1), 2.0, "float32")
    got = loss(RED_TRUE, RED_PRED, sample_weight=pixels)
    np.testing.assert_allclose(to_numpy(got), unweighted, atol=1e-6)
    # A pooled loss is one value: (batch,) weights go into the sums, and no
    # reduction changes it. TP 1.5, FP 0.5, FN 4.5; weighted TP 3, FP 1, FN 3.
    pooled = DiceLoss(smooth=0.0, per_image=False, reduction=reduction)
    assert value(pooled, RED_TRUE, RED_PRED) == pytest.approx(1 - 3 / 8, abs=1e-6)
    got = value(pooled, RED_TRUE, RED_PRED, sample_weight=RED_WEIGHTS)
    assert got == pytest.approx(1 - 6 / 10, abs=1e-6)


def test_dtype_float32_by_default_and_as_given():
    keras.config.set_dtype_policy("mixed_float16")
    y_true, y_pred = RED_TRUE, RED_PRED.astype("float16")
    for cls in (DiceLoss, BCEDiceLoss):
        default = cls(smooth=0.0)
        assert default.dtype == "float32"
        assert keras.backend.standardize_dtype(default(y_true, y_pred).dtype) == "float32"
        half = cls(smooth=0.0, dtype="float16")
        assert half.dtype == "float16"
        result = half(y_true, y_pred, sample_weight=np.ones((2, 2, 2), "float32"))
        assert keras.backend.standardize_dtype(result.dtype) == "float16"
        assert float(to_numpy(result)) == pytest.approx(value(default, y_true, y_pred), rel=1e-3)
    policy = DiceLoss(dtype=keras.DTypePolicy("mixed_bfloat16"))
    assert policy.dtype == "bfloat16"
    restored = DiceLoss.from_config(policy.get_config())
    assert restored.dtype == "bfloat16"
    assert DiceLoss(dtype="float16").get_config()["dtype"] == "float16"
    assert DiceLoss().get_config()["dtype"] is None


# Three classes on a 2x2 image; labels [[0, 1], [2, 2]], predictions [[0, 1], [2, 0]].
MC_IDS = np.array([[[[0], [1]], [[2], [2]]]])
MC_PRED = np.eye(3, dtype="float32")[np.array([[[0, 1], [2, 0]]])]
# Per-class Dice: class 0: 2/3 (FP 1), class 1: 1, class 2: 2/3 (FN 1).


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, (1 / 3 + 0 + 1 / 3) / 3),
        ({"include_background": False}, (0 + 1 / 3) / 2),
        ({"class_weights": [0.0, 1.0, 3.0]}, (1 / 3 * 3) / 4),
        ({"ignore_class": 2}, 0.0),  # pixels labelled 2 and class 2 left out
        ({"per_image": False}, (1 / 3 + 0 + 1 / 3) / 3),
    ],
)
def test_hand_computed_multiclass(kwargs, expected):
    loss = DiceLoss(smooth=0.0, **kwargs)
    assert value(loss, MC_IDS, MC_PRED) == pytest.approx(expected, abs=1e-6)
    # Same with one-hot labels and with (batch, h, w) class ids.
    one_hot = np.eye(3, dtype="float32")[MC_IDS[..., 0]]
    assert value(DiceLoss(smooth=0.0, **kwargs), one_hot, MC_PRED) == pytest.approx(
        expected, abs=1e-6
    )
    assert value(DiceLoss(smooth=0.0, **kwargs), MC_IDS[..., 0], MC_PRED) == pytest.approx(
        expected, abs=1e-6
    )


def test_ignore_label_outside_the_classes():
    ids = MC_IDS.copy()
    ids[0, 1, 1, 0] = 255  # the one wrong pixel becomes "void"
    assert value(DiceLoss(smooth=0.0, ignore_class=255), ids, MC_PRED) == pytest.approx(0.0)
    # Binary masks with a void label too.
    y_true = HAND_TRUE.copy()
    y_true[0, 0, 1, 0] = 255.0
    y_pred = HAND_PRED.copy()
    expected = 1 - 2 * 1.0 / (2 * 1.0 + 0.5)  # TP 1, FP 0.5, FN 0
    assert value(DiceLoss(smooth=0.0, ignore_class=255), y_true, y_pred) == pytest.approx(
        expected, abs=1e-6
    )


def test_explicit_sparse_flag():
    # Two channels and a two-channel y_true: one-hot by default, ids when told so.
    y_pred = np.eye(2, dtype="float32")[np.array([[[0, 1], [1, 1]]])]
    ids = np.array([[[[0], [1]], [[1], [1]]]], "float32")
    assert value(DiceLoss(sparse_y_true=True, smooth=0.0), ids, y_pred) == pytest.approx(0.0)
    with pytest.raises(ValueError, match=re.escape("Expected one-hot labels for `y_pred`")):
        DiceLoss(sparse_y_true=False)(ids, y_pred)


# --------------------------------------------------------------------------- #
# Agreement with Keras where the conventions coincide
# --------------------------------------------------------------------------- #


@given(data=binary_batches())
def test_agrees_with_keras_dice_and_tversky(data):
    y_true, y_pred = data
    if y_true.sum() + y_pred.sum() < 1:
        return  # Keras scores an empty pair 0 (loss 1), smooth=0 here 1, see above
    # smooth=0, per_image=False == keras.losses.Dice() (batch pooled, axis=None).
    assert value(DiceLoss(smooth=0.0, per_image=False), y_true, y_pred) == pytest.approx(
        value(keras.losses.Dice(), y_true, y_pred), abs=1e-6
    )
    # smooth=0, per_image=True == keras.losses.Dice(axis=(1, 2, 3)), mean over images,
    # where every image has a non-zero denominator.
    if np.all(y_true.sum(axis=(1, 2, 3)) + y_pred.sum(axis=(1, 2, 3)) >= 1):
        assert value(DiceLoss(smooth=0.0), y_true, y_pred) == pytest.approx(
            value(keras.losses.Dice(axis=(1, 2, 3)), y_true, y_pred), abs=1e-6
        )
    # keras.losses.Tversky(alpha=a, beta=b) puts `a` on false negatives: our (b, a).
    ours = TverskyLoss(alpha=0.7, beta=0.3, smooth=0.0, per_image=False)
    assert value(ours, y_true, y_pred) == pytest.approx(
        value(keras.losses.Tversky(alpha=0.3, beta=0.7), y_true, y_pred), abs=1e-6
    )
    # BCE + Dice == Keras' BinaryCrossentropy + Dice (equal image sizes, pooled Dice).
    ours = BCEDiceLoss(smooth=0.0, per_image=False)
    theirs = value(keras.losses.BinaryCrossentropy(), y_true, y_pred) + value(
        keras.losses.Dice(), y_true, y_pred
    )
    assert value(ours, y_true, y_pred) == pytest.approx(theirs, abs=1e-5)


def test_tversky_half_half_is_dice():
    rng = np.random.default_rng(5)
    y_true = (rng.random((3, 8, 8, 1)) < 0.4).astype("float32")
    y_pred = rng.random((3, 8, 8, 1)).astype("float32")
    assert value(TverskyLoss(smooth=0.0), y_true, y_pred) == pytest.approx(
        value(DiceLoss(smooth=0.0), y_true, y_pred), abs=1e-6
    )
    assert value(FocalTverskyLoss(0.5, 0.5, gamma=1.0), y_true, y_pred) == pytest.approx(
        value(TverskyLoss(0.5, 0.5), y_true, y_pred), abs=1e-7
    )


# --------------------------------------------------------------------------- #
# Configs, saving
# --------------------------------------------------------------------------- #


CONFIG_CASES = [
    DiceLoss(),
    DiceLoss(
        from_logits=True,
        smooth=0.5,
        per_image=False,
        sparse_y_true=True,
        class_weights=[1.0, 2.0, 0.5],
        ignore_class=255,
        include_background=False,
        reduction="sum",
        name="my_dice",
    ),
    JaccardLoss(smooth=0.0, class_weights=[1, 2]),
    TverskyLoss(alpha=0.1, beta=0.9, sparse_y_true=False),
    FocalTverskyLoss(alpha=0.2, beta=0.8, gamma=1.5, from_logits=True),
    BCEDiceLoss(bce_weight=0.2, dice_weight=0.8, ignore_class=0, dtype="float16"),
    DiceLoss(dtype=keras.DTypePolicy("mixed_bfloat16")),
    0.5 * DiceLoss(from_logits=True) + keras.losses.BinaryCrossentropy(from_logits=True),
]


@pytest.mark.parametrize("loss", CONFIG_CASES, ids=lambda x: type(x).__name__)
def test_config_round_trip(loss):
    config = loss.get_config()
    restored = type(loss).from_config(config)
    assert restored.get_config() == config
    # Through the registry and JSON, as `model.save` does it.
    serialized = keras.saving.serialize_keras_object(loss)
    assert serialized["registered_name"].startswith("keras_unet_seg>")
    import json

    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(clone) is type(loss)
    assert clone.get_config() == config


def test_config_holds_every_constructor_argument():
    import inspect

    from keras_unet_seg.losses._functions import OverlapOptions

    shared = set(OverlapOptions().config()) | {"reduction", "dtype"}
    for cls in (DiceLoss, JaccardLoss, TverskyLoss, FocalTverskyLoss, BCEDiceLoss):
        params = set(inspect.signature(cls.__init__).parameters) - {"self", "options"}
        assert set(cls().get_config()) == params | shared, cls.__name__
    params = set(inspect.signature(CombinedLoss.__init__).parameters) - {"self"}
    assert set(CombinedLoss([DiceLoss()]).get_config()) == params


def _tiny_model(activation="sigmoid", channels=1):
    inputs = keras.Input((16, 16, 2))
    outputs = keras.layers.Conv2D(
        channels,
        3,
        padding="same",
        activation=activation,
        kernel_initializer=keras.initializers.GlorotUniform(seed=4),
    )(inputs)
    return keras.Model(inputs, outputs)


def test_compiled_model_survives_keras_file(tmp_path):
    # One head a loss, so that one save / load / evaluate covers every class.
    from keras_unet_seg.metrics import IoUScore

    compiled_losses = {
        "dice": DiceLoss(),
        "jaccard": JaccardLoss(per_image=False),
        "tversky": TverskyLoss(alpha=0.3, beta=0.7),
        "focal_tversky": FocalTverskyLoss(),
        "bce_dice": BCEDiceLoss(bce_weight=0.5),
        "combined": 0.5 * DiceLoss() + keras.losses.BinaryCrossentropy(),
    }
    inputs = keras.Input((16, 16, 2))
    outputs = {
        name: keras.layers.Conv2D(
            1,
            3,
            padding="same",
            activation="sigmoid",
            kernel_initializer=keras.initializers.GlorotUniform(seed=index),
            name=name,
        )(inputs)
        for index, name in enumerate(compiled_losses)
    }
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss=compiled_losses,
        metrics={name: [IoUScore()] for name in compiled_losses},
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 16, 16, 2)).astype("float32")
    mask = (rng.random((6, 16, 16, 1)) < 0.4).astype("float32")
    y = {name: mask for name in compiled_losses}
    before = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    assert len(before) == 1 + 2 * len(compiled_losses)  # total, each loss, each IoU
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True by default
    for name, loss in compiled_losses.items():
        restored = loaded.loss[name]
        assert type(restored) is type(loss)
        assert restored.get_config() == loss.get_config()
    after = loaded.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    assert after == pytest.approx(before, abs=1e-6)


def test_mixed_precision_training_step_is_finite():
    keras.config.set_dtype_policy("mixed_float16")
    # A per-pixel Dense layer: PyTorch's CPU float16 Conv2D has no backward pass.
    inputs = keras.Input((16, 16, 2))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    assert keras.backend.standardize_dtype(model.outputs[0].dtype) == "float16"
    model.compile(optimizer="sgd", loss=BCEDiceLoss(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 16, 16, 2)).astype("float32")
    y = (rng.random((2, 16, 16, 1)) < 0.4).astype("float32")
    history = model.fit(x, y, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])


# --------------------------------------------------------------------------- #
# Argument errors
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: DiceLoss(smooth=-1),
            "Invalid value for argument `smooth`. Expected a finite number >= 0. "
            "Received: smooth=-1",
        ),
        (
            lambda: DiceLoss(from_logits="yes"),
            "Invalid value for argument `from_logits`. Expected a boolean (True or False). "
            "Received: from_logits='yes'",
        ),
        (
            lambda: DiceLoss(sparse_y_true=1),
            "Invalid value for argument `sparse_y_true`. Expected None (detect from the "
            "shapes), True or False. Received: sparse_y_true=1",
        ),
        (
            lambda: DiceLoss(class_weights=[1, -2]),
            "Invalid value for argument `class_weights`. Expected None or a list of "
            "non-negative numbers, one per class, not all zero. Received: class_weights=[1, -2]",
        ),
        (
            lambda: DiceLoss(ignore_class=1.5),
            "Invalid value for argument `ignore_class`. Expected None or an integer class id. "
            "Received: ignore_class=1.5",
        ),
        (
            lambda: TverskyLoss(alpha=0, beta=0),
            "Invalid value for argument `alpha`. Expected `alpha` and `beta` not both 0 "
            "(the loss would ignore every error; beta=0.0). Received: alpha=0.0",
        ),
        (
            lambda: TverskyLoss(beta=float("nan")),
            "Invalid value for argument `beta`. Expected a finite number >= 0. Received: beta=nan",
        ),
        (
            lambda: FocalTverskyLoss(gamma=0),
            "Invalid value for argument `gamma`. Expected a finite number > 0. Received: gamma=0",
        ),
        (
            lambda: BCEDiceLoss(bce_weight=-0.5),
            "Invalid value for argument `bce_weight`. Expected a finite number >= 0. "
            "Received: bce_weight=-0.5",
        ),
    ],
)
def test_constructor_errors(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_call_errors():
    y_pred = np.zeros((1, 4, 4, 3), "float32")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `class_weights`. Expected one weight per channel of "
            "`y_pred` (3). Received: class_weights=[1.0, 1.0]"
        ),
    ):
        DiceLoss(class_weights=[1, 1])(np.zeros((1, 4, 4, 1)), y_pred)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `y_true`. Expected a binary mask with one channel, "
            "since `y_pred` has one channel. Received: y_true=<tensor of shape (1, 4, 4, 2)>"
        ),
    ):
        DiceLoss()(np.zeros((1, 4, 4, 2)), np.zeros((1, 4, 4, 1)))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `y_true`. Expected a tensor of rank 4 or 3 to match "
            "`y_pred` of shape (1, 4, 4, 3). Received: y_true=<tensor of shape (1, 4)>"
        ),
    ):
        DiceLoss()(np.zeros((1, 4)), y_pred)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `ignore_class`. Expected a channel index in [0, 3) "
            "when `y_true` is one-hot. Received: ignore_class=255"
        ),
    ):
        DiceLoss(ignore_class=255)(np.zeros((1, 4, 4, 3)), y_pred)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `include_background`. Expected at least one class "
            "left to score (ignore_class=1 with 2 channels). Received: include_background=False"
        ),
    ):
        DiceLoss(include_background=False, ignore_class=1)(
            np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 4, 2))
        )


# Saved by main at f376df5, before the losses became function wrappers: a 1x1
# convolution compiled with 0.5 * DiceLoss(smooth=1, class_weights=[1]) +
# TverskyLoss(alpha=0.3, beta=0.7, per_image=False) + BinaryCrossentropy, and metrics
# IoUScore(threshold=0.4), Precision(per_image=True), DiceCoefficient().
SAVED_BEFORE = Path(__file__).parent / "data" / "compiled_f376df5.keras"
# Configs as main at f376df5 wrote them.
CONFIGS_BEFORE = [
    {
        "module": "keras_unet_seg.losses._classes",
        "class_name": "BCEDiceLoss",
        "config": {
            "name": "bce_dice_loss",
            "reduction": "sum_over_batch_size",
            "dtype": None,
            "from_logits": True,
            "smooth": 1e-05,
            "per_image": True,
            "sparse_y_true": None,
            "class_weights": None,
            "ignore_class": None,
            "include_background": True,
            "bce_weight": 0.5,
            "dice_weight": 1.0,
        },
        "registered_name": "keras_unet_seg>BCEDiceLoss",
    },
    {
        "module": "keras_unet_seg.losses._classes",
        "class_name": "FocalTverskyLoss",
        "config": {
            "name": "focal_tversky_loss",
            "reduction": "sum_over_batch_size",
            "dtype": None,
            "from_logits": False,
            "smooth": 1e-05,
            "per_image": True,
            "sparse_y_true": None,
            "class_weights": None,
            "ignore_class": 255,
            "include_background": True,
            "alpha": 0.3,
            "beta": 0.7,
            "gamma": 2.0,
        },
        "registered_name": "keras_unet_seg>FocalTverskyLoss",
    },
    {
        "module": "keras_unet_seg.losses._classes",
        "class_name": "JaccardLoss",
        "config": {
            "name": "jaccard_loss",
            "reduction": "sum",
            "dtype": "float16",
            "from_logits": False,
            "smooth": 1e-05,
            "per_image": True,
            "sparse_y_true": None,
            "class_weights": None,
            "ignore_class": None,
            "include_background": False,
        },
        "registered_name": "keras_unet_seg>JaccardLoss",
    },
]


def test_configs_saved_before_the_wrappers_load():
    for saved in CONFIGS_BEFORE:
        loss = keras.saving.deserialize_keras_object(saved)
        assert type(loss).__name__ == saved["class_name"]
        assert loss.get_config() == saved["config"]


def test_keras_file_saved_before_the_wrappers_loads():
    from keras_unet_seg.metrics import DiceCoefficient, IoUScore, Precision

    model = keras.models.load_model(SAVED_BEFORE)
    loss = model.loss
    assert [type(part).__name__ for part in loss.losses] == [
        "DiceLoss",
        "TverskyLoss",
        "BinaryCrossentropy",
    ]
    assert loss.weights == [0.5, 1.0, 1.0]
    rng = np.random.default_rng(1)
    images = rng.random((2, 8, 8, 1)).astype("float32")
    masks = (images > 0.5).astype("float32")
    probs = model.predict(images, verbose=0)
    today = (
        0.5 * DiceLoss(smooth=1.0, class_weights=[1.0])
        + TverskyLoss(alpha=0.3, beta=0.7, per_image=False)
        + keras.losses.BinaryCrossentropy()
    )
    assert value(loss, masks, probs) == pytest.approx(value(today, masks, probs), abs=1e-6)
    scores = model.evaluate(images, masks, verbose=0, return_dict=True)
    assert scores["loss"] == pytest.approx(value(today, masks, probs), abs=1e-5)
    for metric in (IoUScore(threshold=0.4), Precision(per_image=True), DiceCoefficient()):
        metric.update_state(masks, probs)
        assert scores[metric.name] == pytest.approx(float(to_numpy(metric.result())), abs=1e-6)
