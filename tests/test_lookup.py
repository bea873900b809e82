"""Tests of the lookup by name: `keras_unet_seg.losses.get` and `keras_unet_seg.metrics.get`.

Backend-agnostic: tests/test_backends.py runs this file again under JAX and PyTorch.
"""

import inspect
import re

import keras
import pytest

from keras_unet_seg import losses, metrics
from keras_unet_seg.losses import (
    BCEDiceLoss,
    CombinedLoss,
    DiceLoss,
    FocalTverskyLoss,
    JaccardLoss,
    TverskyLoss,
)
from keras_unet_seg.metrics import DiceCoefficient, IoUScore, Precision, Recall


def snake_case(name):
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()


def test_losses_get():
    assert isinstance(losses.get("dice"), DiceLoss)
    assert isinstance(losses.get("iou"), JaccardLoss)
    assert isinstance(losses.get("jaccard"), JaccardLoss)
    assert isinstance(losses.get("tversky"), TverskyLoss)
    assert isinstance(losses.get("focal_tversky"), FocalTverskyLoss)
    assert isinstance(losses.get("bce_dice"), BCEDiceLoss)
    assert isinstance(losses.get("DiceLoss"), DiceLoss)
    assert losses.get("binary_crossentropy") is keras.losses.binary_crossentropy
    assert isinstance(losses.get("BinaryCrossentropy"), keras.losses.BinaryCrossentropy)
    assert losses.get(None) is None
    loss = TverskyLoss(alpha=0.1, beta=0.9)
    assert losses.get(loss) is loss
    restored = losses.get(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, TverskyLoss) and restored.beta == 0.9
    with pytest.raises(ValueError, match="Could not interpret loss identifier"):
        losses.get("no_such_loss")


def test_metrics_get():
    assert isinstance(metrics.get("iou"), IoUScore)
    assert isinstance(metrics.get("iou_score"), IoUScore)
    assert isinstance(metrics.get("jaccard"), IoUScore)
    assert isinstance(metrics.get("dice"), DiceCoefficient)
    assert isinstance(metrics.get("keras_unet_seg>Precision"), Precision)
    assert isinstance(metrics.get("keras_unet_seg>Recall"), Recall)
    assert isinstance(metrics.get("IoUScore"), IoUScore)
    assert metrics.get(None) is None
    assert isinstance(metrics.get("BinaryIoU"), keras.metrics.BinaryIoU)
    metric = IoUScore(num_classes=3, average="micro")
    restored = metrics.get(keras.saving.serialize_keras_object(metric))
    assert isinstance(restored, IoUScore) and restored.average == "micro"
    with pytest.raises(ValueError, match="Could not interpret metric identifier"):
        metrics.get("no_such_metric")


@pytest.mark.parametrize("module", [losses, metrics], ids=["losses", "metrics"])
def test_every_public_name_is_found_and_ours_wins(module):
    """Each class by its class name and snake_case name, each function by its name."""
    classes = {}
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            classes[snake_case(name)] = obj
    assert snake_case("IoUScore") == "iou_score"
    assert snake_case("BCEDiceLoss") == "bce_dice_loss"
    for snake, cls in classes.items():
        if cls is CombinedLoss:
            continue
        assert type(module.get(keras.saving.get_registered_name(cls))) is cls, cls.__name__
        if cls in (Precision, Recall):  # Keras' names: see test_keras_names_stay_keras
            continue
        assert type(module.get(cls.__name__)) is cls, cls.__name__
        assert type(module.get(snake)) is cls, snake
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj) and name != "get":
            assert type(module.get(name)) is classes[name], name


def test_keras_names_stay_keras():
    # Keras has its own Precision and Recall: the names give Keras', as
    # `keras.metrics.get` does; ours by their registered names.
    assert type(metrics.get("Precision")) is keras.metrics.Precision
    assert type(metrics.get("precision")) is keras.metrics.Precision
    assert type(metrics.get("Recall")) is keras.metrics.Recall
    assert type(metrics.get("recall")) is keras.metrics.Recall
    assert type(metrics.get("keras_unet_seg>Precision")) is Precision


def test_our_class_names_and_aliases():
    assert type(metrics.get("DiceCoefficient")) is DiceCoefficient
    assert type(metrics.get("f1")) is DiceCoefficient
    for name, cls in [
        ("BCEDiceLoss", BCEDiceLoss),
        ("FocalTverskyLoss", FocalTverskyLoss),
        ("TverskyLoss", TverskyLoss),
        ("JaccardLoss", JaccardLoss),
        ("iou_loss", JaccardLoss),
    ]:
        assert type(losses.get(name)) is cls


def test_other_names_fall_back_to_keras():
    assert losses.get("binary_crossentropy") is keras.losses.binary_crossentropy
    assert isinstance(losses.get("Dice"), keras.losses.Dice)
    assert isinstance(metrics.get("accuracy"), keras.metrics.Accuracy)
    assert isinstance(metrics.get("BinaryAccuracy"), keras.metrics.BinaryAccuracy)
    assert callable(losses.get(keras.losses.mean_squared_error))


def test_clear_errors():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Could not interpret loss identifier: 'dise'. Expected a loss of keras_unet_seg "
            "(bce_dice, bce_dice_loss, combined_loss, dice, dice_loss, "
        ),
    ):
        losses.get("dise")
    with pytest.raises(ValueError, match=re.escape("or a name that `keras.metrics.get` knows")):
        metrics.get("no_such_metric")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Could not build the loss 'CombinedLoss' from its name: `CombinedLoss` has "
            "required arguments. Build it in Python or give its config dict."
        ),
    ):
        losses.get("CombinedLoss")
    # Keras' abstract base classes and classes with required arguments.
    for get, name, message in (
        (losses.get, "Loss", "`Loss` is an abstract base class to subclass"),
        (metrics.get, "Metric", "(it leaves `update_state` and `result` to subclasses)"),
        (losses.get, "LossFunctionWrapper", "`LossFunctionWrapper` has required arguments"),
        (metrics.get, "MeanMetricWrapper", "`MeanMetricWrapper` has required arguments"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            get(name)
    combined = CombinedLoss([DiceLoss()])
    restored = losses.get(keras.saving.serialize_keras_object(combined))
    assert type(restored) is CombinedLoss
