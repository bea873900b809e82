"""The losses on volumes, `(batch, depth, height, width, channels)`, against NumPy counts.

Backend-agnostic; tests/test_backends.py runs this folder again under JAX and PyTorch.
"""

import math

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keras import ops

from keras_unet_seg import losses

FUNCTIONS = {
    "dice": losses.dice_loss,
    "jaccard": losses.jaccard_loss,
    "tversky": lambda *a, **kw: losses.tversky_loss(*a, alpha=0.3, beta=0.7, **kw),
    "focal_tversky": lambda *a, **kw: losses.focal_tversky_loss(*a, gamma=2.0, **kw),
    "bce_dice": lambda *a, **kw: losses.bce_dice_loss(*a, bce_weight=0.5, **kw),
}
SHAPE = (2, 7, 9, 5)  # batch, depth, height, width
SMOOTH = 1e-5


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def _class_losses(name, tp, fp, fn):
    """The per-class loss of NumPy soft counts, written out for each loss."""
    if name == "dice":
        return 1 - (2 * tp + SMOOTH) / (2 * tp + fp + fn + SMOOTH)
    if name == "jaccard":
        return 1 - (tp + SMOOTH) / (tp + fp + fn + SMOOTH)
    tversky = (tp + SMOOTH) / (tp + 0.3 * fp + 0.7 * fn + SMOOTH)
    if name == "tversky":
        return 1 - tversky
    if name == "focal_tversky":
        return (1 - tversky) ** 2.0
    return _class_losses("dice", tp, fp, fn)


def numpy_loss(name, target, probs, weight, per_image, classes=None, class_weights=None):
    """The loss from voxel counts: `target`, `probs` (batch, d, h, w, C) and voxel `weight`
    (batch, d, h, w, 1), 0 on the voxels left out."""
    axes = (1, 2, 3) if per_image else (0, 1, 2, 3)
    tp = np.sum(target * probs * weight, axis=axes)
    fp = np.sum((1 - target) * probs * weight, axis=axes)
    fn = np.sum(target * (1 - probs) * weight, axis=axes)
    per_class = _class_losses(name, tp, fp, fn)
    classes = list(range(target.shape[-1])) if classes is None else classes
    class_weights = np.ones(target.shape[-1]) if class_weights is None else class_weights
    chosen = np.asarray(class_weights, float)[classes]
    loss = np.sum(per_class[..., classes] * chosen, axis=-1) / chosen.sum()
    if name != "bce_dice":
        return loss
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)
    if target.shape[-1] == 1:
        pixel = -(target * np.log(clipped) + (1 - target) * np.log(1 - clipped))
    else:
        pixel = -np.sum(target * np.log(clipped), axis=-1, keepdims=True)
    cross_entropy = np.sum(pixel * weight, axis=(*axes, 4)) / np.sum(weight, axis=(*axes, 4))
    return 0.5 * cross_entropy + loss


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("per_image", [True, False])
def test_binary_volume_losses_equal_numpy_counts_with_voxel_weights(name, per_image):
    rng = np.random.default_rng(0)
    y_true = (rng.random((*SHAPE, 1)) < 0.4).astype("float32")
    logits = rng.normal(0, 2, (*SHAPE, 1)).astype("float32")
    weight = rng.random(SHAPE).astype("float32")
    loss = FUNCTIONS[name](
        y_true, logits, sample_weight=weight, from_logits=True, per_image=per_image
    )
    probs = 1 / (1 + np.exp(-logits.astype("float64")))
    expected = numpy_loss(name, y_true, probs, weight[..., None], per_image)
    assert to_numpy(loss).shape == ((2,) if per_image else ())
    np.testing.assert_allclose(to_numpy(loss), expected, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["dice", "tversky", "bce_dice"])
def test_three_class_volume_losses_equal_numpy_counts(name):
    """Class ids with an ignore label, softmax logits, background left out, class weights."""
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 3, SHAPE)
    ids[rng.random(SHAPE) < 0.1] = 255
    logits = rng.normal(0, 2, (*SHAPE, 3)).astype("float32")
    options = dict(from_logits=True, ignore_class=255, include_background=False)
    loss = FUNCTIONS[name](ids[..., None], logits, class_weights=[1.0, 1.0, 3.0], **options)
    valid = (ids != 255)[..., None].astype(float)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs = probs / probs.sum(axis=-1, keepdims=True) * valid
    target = np.eye(3)[np.where(ids == 255, 0, ids)] * valid
    expected = numpy_loss(name, target, probs, valid, True, [1, 2], [1.0, 1.0, 3.0])
    np.testing.assert_allclose(to_numpy(loss), expected, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_one_hot_and_class_ids_give_the_same_volume_loss(name):
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 3, SHAPE)
    probs = rng.dirichlet(np.ones(3), SHAPE).astype("float32")
    one_hot = np.eye(3, dtype="float32")[ids]
    sparse = to_numpy(FUNCTIONS[name](ids, probs))
    np.testing.assert_allclose(to_numpy(FUNCTIONS[name](one_hot, probs)), sparse, rtol=1e-6)


@given(
    seed=st.integers(0, 2**16),
    density=st.sampled_from([0.0, 0.2, 1.0]),
    per_image=st.booleans(),
)
def test_a_volume_scores_as_its_voxels_laid_out_as_an_image(seed, density, per_image):
    """Every loss sums over all the spatial axes: a volume's loss is that of its slices
    side by side in one image, empty and full masks included."""
    rng = np.random.default_rng(seed)
    y_true = (rng.random((*SHAPE, 1)) < density).astype("float32")
    y_pred = rng.random(y_true.shape).astype("float32")
    image_true, image_pred = (a.reshape(2, 7 * 9, 5, 1) for a in (y_true, y_pred))
    for fn in FUNCTIONS.values():
        volume = to_numpy(fn(y_true, y_pred, per_image=per_image))
        image = to_numpy(fn(image_true, image_pred, per_image=per_image))
        np.testing.assert_allclose(volume, image, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_volumes_are_summed_in_float32(dtype):
    """48x48x48 voxels: a float16 sum would pass float16's maximum of 65504."""
    y_true = np.ones((1, 48, 48, 48, 1), "float32")
    y_pred = np.full(y_true.shape, 0.75, "float32")
    loss = losses.dice_loss(ops.cast(y_true, dtype), ops.cast(y_pred, dtype))[0]
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    assert float(to_numpy(loss)) == pytest.approx(1 - 1.5 / 1.75, abs=1e-6)


def test_mixed_precision_training_step_on_volumes():
    keras.config.set_dtype_policy("mixed_float16")
    # A per-voxel Dense layer: PyTorch's CPU float16 convolutions have no backward pass.
    inputs = keras.Input((8, 8, 8, 2))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    assert keras.backend.standardize_dtype(model.outputs[0].dtype) == "float16"
    model.compile(optimizer="sgd", loss=losses.BCEDiceLoss(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 8, 8, 8, 2)).astype("float32")
    y = (rng.random((2, 8, 8, 8, 1)) < 0.4).astype("float32")
    weight = rng.random((2, 8, 8, 8)).astype("float32")
    history = model.fit(x, y, sample_weight=weight, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])


def test_volume_and_mask_must_agree_in_every_spatial_axis():
    expected = "the batch and spatial size of `y_pred`, whose shape is (1, 4, 4, 3, 1)"
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        losses.dice_loss(np.zeros((1, 4, 4, 4, 1)), np.zeros((1, 4, 4, 3, 1)))
