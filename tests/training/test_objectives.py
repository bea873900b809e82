"""Tests of the training config's losses and metrics by name (`training._objectives`)."""

import keras
import pytest

from keras_unet_seg.metrics import Precision, Recall
from keras_unet_seg.training import _objectives


@pytest.mark.one_backend
def test_the_library_short_names_give_the_library_metrics():
    # `keras_unet_seg.metrics.get("precision")` is Keras'; a training config's
    # "precision" stays this library's, sized to the classes.
    precision = _objectives.get_metric("precision", num_classes=3)
    assert type(precision) is Precision and precision.num_classes == 3
    recall = _objectives.get_metric({"name": "recall", "threshold": 0.3})
    assert type(recall) is Recall and recall.threshold == 0.3
    assert type(_objectives.get_metric("Precision")) is keras.metrics.Precision
