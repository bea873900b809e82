"""Tests for `keras_unet_seg.performance.precision`: precision and XLA selection, rebuilding
under a policy, the XLA U-Net."""

import tempfile

import keras
import numpy as np
import pytest

from keras_unet_seg import UNet
from keras_unet_seg.performance import (
    PRECISIONS,
    Distribution,
    devices,
    precision,
    resolve_jit_compile,
    resolve_precision,
    set_precision,
    with_precision,
)

TF_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow's XLA and oneDNN"
)


@pytest.fixture
def machine(monkeypatch):
    """Pretends to be a machine: accelerator, CPU bfloat16 support and backend."""

    def pretend(kind="cpu", capability=None, bfloat16_cpu=True, backend="tensorflow"):
        monkeypatch.setattr(devices, "accelerator", lambda: (kind, capability))
        monkeypatch.setattr(devices, "cpu_supports_bfloat16", lambda: bfloat16_cpu)
        monkeypatch.setattr(keras.backend, "backend", lambda: backend)
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)

    return pretend


# --------------------------------------------------------------------------- precision


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_explicit_precision_is_kept(precision):
    assert resolve_precision(precision) == precision


def test_unknown_precision_is_refused():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `precision`\. Expected one of 'auto', 'float32', "
        r"'mixed_bfloat16', 'mixed_float16'\. Received: precision='bfloat16'",
    ):
        resolve_precision("bfloat16")
    assert PRECISIONS == ("auto", "float32", "mixed_bfloat16", "mixed_float16")


@pytest.mark.parametrize(
    ("capability", "expected"),
    [
        ((9, 0), "mixed_bfloat16"),  # H100
        ((8, 0), "mixed_bfloat16"),  # A100
        ((8, 6), "mixed_bfloat16"),  # RTX 30xx
        ((7, 5), "mixed_float16"),  # T4
        ((7, 0), "mixed_float16"),  # V100
        ((6, 1), "float32"),  # P40, no tensor cores
        (None, "float32"),  # unknown
    ],
)
def test_auto_on_gpus_follows_compute_capability(machine, capability, expected):
    machine(kind="gpu", capability=capability)
    assert resolve_precision("auto") == expected
    assert resolve_precision("auto", base_filters=8) == expected


def test_auto_on_tpus_is_bfloat16(machine):
    machine(kind="tpu", backend="jax")
    assert resolve_precision("auto") == "mixed_bfloat16"


def test_auto_on_bfloat16_cpus_depends_on_the_model_width(machine):
    machine()
    threshold = precision._CPU_BFLOAT16_MIN_TRAIN_FILTERS
    assert resolve_precision("auto", base_filters=threshold) == "mixed_bfloat16"
    assert resolve_precision("auto", base_filters=threshold - 1) == "float32"
    # UNet's default width when no width is given.
    assert resolve_precision("auto") == (
        "mixed_bfloat16" if precision._DEFAULT_BASE_FILTERS >= threshold else "float32"
    )
    infer = precision._CPU_BFLOAT16_MIN_INFER_FILTERS
    assert resolve_precision("auto", base_filters=infer, training=False) == "mixed_bfloat16"


def test_auto_on_cpus_without_bfloat16_is_float32(machine):
    machine(bfloat16_cpu=False)
    assert resolve_precision("auto", base_filters=128) == "float32"
    assert resolve_precision("auto", base_filters=128, training=False) == "float32"


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_auto_on_cpus_keeps_float32_where_bfloat16_was_not_measured_faster(machine, backend):
    machine(backend=backend)
    assert resolve_precision("auto", base_filters=128) == "float32"


def test_auto_keeps_float32_when_onednn_is_off(machine, monkeypatch):
    machine()
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert resolve_precision("auto", base_filters=128) == "float32"


def test_set_precision_sets_the_global_policy_for_new_models():
    assert set_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    model = UNet(base_filters=4, depth=2)
    outputs = model(np.zeros((1, 16, 16, 3), "float32"))
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
    assert {v.dtype for v in model.weights} == {"float32"}
    assert set_precision("float32") == "float32"
    assert keras.config.dtype_policy().name == "float32"


def test_set_precision_auto_returns_what_it_set():
    policy = set_precision("auto", base_filters=8)
    assert policy in PRECISIONS[1:]
    assert keras.config.dtype_policy().name == policy


def test_with_precision_copies_weights_under_the_new_policy():
    model = UNet(base_filters=4, depth=2)
    model.build((None, None, None, 3))
    images = np.random.default_rng(0).random((2, 20, 12, 3), dtype="float32")
    fast = with_precision(model, "mixed_bfloat16")
    assert fast is not model
    assert fast.dtype_policy.name == "mixed_bfloat16"
    assert model.dtype_policy.name == "float32"
    for got, want in zip(fast.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    expected = keras.ops.convert_to_numpy(model(images))
    got = keras.ops.convert_to_numpy(fast(images))
    assert got.dtype == np.float32 and got.shape == (2, 20, 12, 1)
    np.testing.assert_allclose(got, expected, atol=0.05)
    assert with_precision(model, "float32") is model


def test_with_precision_needs_a_built_model_with_a_dtype_argument():
    with pytest.raises(ValueError, match="Expected a built model"):
        with_precision(UNet(base_filters=4, depth=2), "mixed_bfloat16")
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    with pytest.raises(ValueError, match="whose config takes a `dtype` argument"):
        with_precision(plain, "mixed_bfloat16")


# --------------------------------------------------------------------------- XLA


def test_jit_compile_choices(machine):
    assert resolve_jit_compile(True) is True
    assert resolve_jit_compile(False) is False
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `jit_compile`\. Expected 'auto', True or False\. "
        r"Received: jit_compile='xla'",
    ):
        resolve_jit_compile("xla")
    machine(backend="jax")
    assert resolve_jit_compile("auto") is True
    machine(backend="torch")
    assert resolve_jit_compile("auto") is False
    machine(kind="gpu", capability=(8, 0))
    assert resolve_jit_compile("auto") is True
    assert resolve_jit_compile("auto", distribution=Distribution("mirrored", None, 2)) is False
    machine(kind="cpu")
    assert resolve_jit_compile("auto") is precision._TF_CPU_XLA_TRAIN
    assert resolve_jit_compile("auto", training=False) is precision._TF_CPU_XLA_INFER
    machine(backend="jax")
    assert resolve_jit_compile("auto", distribution=Distribution("data_parallel", None, 2))


@TF_ONLY
def test_unet_trains_and_predicts_under_xla_at_any_size():
    """XLA compiles per shape; the pad-and-crop of sizes off the 2**depth grid must compile.

    The second size makes Keras retrace with unknown height and width
    (`reduce_retracing`), so the padding amounts are computed from dynamic
    shapes, which XLA must resolve when it compiles.
    """
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = UNet(base_filters=4, depth=1)
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=True)
    assert model.jit_compile is True
    rng = np.random.default_rng(0)
    for height, width in [(37, 22), (16, 30)]:
        images = rng.random((2, height, width, 3), dtype="float32")
        masks = (images[..., :1] > 0.5).astype("float32")
        assert np.isfinite(model.train_on_batch(images, masks))
        assert model.predict_on_batch(images).shape == (2, height, width, 1)

    # The same outputs with and without XLA, through a graph of unknown size.
    compiled = tf.function(
        lambda x: model(x, training=False),
        jit_compile=True,
        input_signature=[tf.TensorSpec((None, None, None, 3), "float32")],
    )
    images = rng.random((1, 33, 47, 3), dtype="float32")
    eager = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(compiled(images).numpy(), eager, atol=1e-5)


@TF_ONLY
def test_mixed_bfloat16_unet_predicts_under_xla():
    set_precision("mixed_bfloat16")
    model = UNet(base_filters=4, depth=2)
    set_precision("float32")
    model.jit_compile = True
    images = np.random.default_rng(1).random((2, 30, 18, 3), dtype="float32")
    predictions = model.predict_on_batch(images)
    assert predictions.dtype == np.float32 and predictions.shape == (2, 30, 18, 1)
    assert np.all(np.isfinite(predictions))


# --------------------------------------------------------------------------- accuracy


@pytest.mark.slow
@TF_ONLY
def test_mixed_bfloat16_reaches_the_float32_validation_dice():
    """The same short training at float32 and at mixed_bfloat16, the CPU `auto` choice.

    Same data order and initial weights; only the precision differs. The
    validation Dice (mean of the last three epochs, which smooths the
    epoch-to-epoch wobble of a short run) must agree within 0.01. Images of
    32x32 and a depth of 2 keep it short (float32 reaches about 0.90).
    """
    from keras_unet_seg.data import SegmentationDataset, make_synthetic_dataset
    from keras_unet_seg.losses import BCEDiceLoss
    from keras_unet_seg.metrics import DiceCoefficient

    with tempfile.TemporaryDirectory() as folder:
        root = make_synthetic_dataset(folder, num_train=64, num_val=32, image_size=(32, 32))
        scores = {}
        for precision in ("float32", "mixed_bfloat16"):
            keras.utils.set_random_seed(0)
            # New datasets for each run: the same shuffled order, epoch by epoch.
            train = SegmentationDataset.from_directory(
                root, "train", image_size=(32, 32), batch_size=8, seed=0, verbose=False
            )
            val = SegmentationDataset.from_directory(
                root, "val", image_size=(32, 32), batch_size=16, shuffle=False, verbose=False
            )
            set_precision(precision)
            model = UNet(base_filters=8, depth=2)
            set_precision("float32")
            model.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss=BCEDiceLoss(),
                metrics=[DiceCoefficient(name="dice")],
            )
            history = model.fit(train, validation_data=val, epochs=8, verbose=0).history
            scores[precision] = float(np.mean(history["val_dice"][-3:]))
    assert scores["float32"] > 0.85, scores
    assert abs(scores["mixed_bfloat16"] - scores["float32"]) < 0.01, scores
