"""Tests of CombinedLoss and of the arithmetic on losses that builds one.

Backend-agnostic: tests/test_backends.py runs this file again under JAX and PyTorch.
"""

import re

import keras
import numpy as np
import pytest
from keras import ops

from keras_unet_seg.losses import CombinedLoss, DiceLoss, JaccardLoss, TverskyLoss

HAND_TRUE = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]], dtype="float32")
HAND_PRED = np.array([[[[1.0], [0.5]], [[0.5], [0.0]]]], dtype="float32")


def value(loss, y_true, y_pred, **kwargs):
    return float(np.asarray(ops.convert_to_numpy(loss(y_true, y_pred, **kwargs)), "float64"))


# --------------------------------------------------------------------------- #
# Combining losses
# --------------------------------------------------------------------------- #


def test_arithmetic_builds_a_combined_loss():
    bce = keras.losses.BinaryCrossentropy()
    combined = 0.5 * DiceLoss(smooth=0.0) + bce
    assert isinstance(combined, CombinedLoss)
    assert combined.weights == [0.5, 1.0]
    expected = 0.5 * value(DiceLoss(smooth=0.0), HAND_TRUE, HAND_PRED) + value(
        bce, HAND_TRUE, HAND_PRED
    )
    assert value(combined, HAND_TRUE, HAND_PRED) == pytest.approx(expected, abs=1e-6)
    # Keras loss on the left, scaling a combined loss, flattening.
    left = bce + DiceLoss()
    assert [type(x).__name__ for x in left.losses] == ["BinaryCrossentropy", "DiceLoss"]
    scaled = 2 * (DiceLoss() + 0.5 * JaccardLoss())
    assert scaled.weights == [2.0, 1.0]
    total = DiceLoss() + JaccardLoss() + TverskyLoss()
    assert isinstance(total, CombinedLoss) and total.weights == [1.0, 1.0, 1.0]
    # Only losses add up, as for Keras' own: no `loss + 0`, so no `sum(losses)`.
    with pytest.raises(TypeError, match="unsupported operand"):
        sum([DiceLoss(), JaccardLoss()])
    assert (DiceLoss() * 3).weights == [3.0]


def test_combined_loss_passes_sample_weight_to_each_part():
    y_true = np.concatenate([HAND_TRUE, np.ones_like(HAND_TRUE)])
    y_pred = np.concatenate([HAND_PRED, np.zeros_like(HAND_PRED)])
    weights = np.array([1.0, 0.0])
    combined = DiceLoss() + 2.0 * JaccardLoss()
    expected = value(DiceLoss(), y_true, y_pred, sample_weight=weights) + 2 * value(
        JaccardLoss(), y_true, y_pred, sample_weight=weights
    )
    assert value(combined, y_true, y_pred, sample_weight=weights) == pytest.approx(expected)


def test_combined_loss_from_names():
    combined = CombinedLoss(["dice", "BinaryCrossentropy"], weights=[1.0, 0.5])
    assert [type(x).__name__ for x in combined.losses] == ["DiceLoss", "BinaryCrossentropy"]


def test_combined_loss_errors():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `losses`. Expected a non-empty list of losses. "
            "Received: losses=[]"
        ),
    ):
        CombinedLoss([])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `weights`. Expected a list of 2 weights, one per "
            "loss. Received: weights=[1.0]"
        ),
    ):
        CombinedLoss([DiceLoss(), JaccardLoss()], weights=[1.0])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `weights`. Expected finite numbers >= 0. "
            "Received: weights=-1.0"
        ),
    ):
        -1.0 * DiceLoss()
    with pytest.raises(TypeError, match=re.escape("Expected `keras.losses.Loss` instances")):
        CombinedLoss([DiceLoss(), "binary_crossentropy"])
    with pytest.raises(TypeError):
        DiceLoss() + "dice"


def test_combined_loss_keeps_reduction_and_dtype():
    y_true = np.concatenate([HAND_TRUE, np.ones_like(HAND_TRUE)])
    y_pred = np.concatenate([HAND_PRED, np.zeros_like(HAND_PRED)])
    parts = [DiceLoss(smooth=0.0, reduction=None), JaccardLoss(smooth=0.0, reduction=None)]
    # Unreduced parts add up per image; the combined loss reduces the sum its own way.
    per_image = ops.convert_to_numpy(parts[0](y_true, y_pred) + parts[1](y_true, y_pred))
    combined = CombinedLoss(parts, reduction="sum", dtype="float16")
    result = combined(y_true, y_pred)
    assert keras.backend.standardize_dtype(result.dtype) == "float16"
    assert value(combined, y_true, y_pred) == pytest.approx(float(per_image.sum()), rel=1e-3)
    unreduced = CombinedLoss(parts, reduction=None)
    np.testing.assert_allclose(ops.convert_to_numpy(unreduced(y_true, y_pred)), per_image)
    np.testing.assert_allclose(ops.convert_to_numpy(unreduced.call(y_true, y_pred)), per_image)
    restored = CombinedLoss.from_config(combined.get_config())
    assert (restored.reduction, restored.dtype) == ("sum", "float16")
