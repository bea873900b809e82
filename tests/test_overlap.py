"""Tests of the overlap core that the losses and the metrics share (`keras_unet_seg._overlap`).

Backend-agnostic: tests/test_backends.py runs this file again under JAX and PyTorch.
"""

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
