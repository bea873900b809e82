"""Data-parallel training against one device: MirroredStrategy (TensorFlow) and DataParallel (JAX).

The distributed runs happen in fresh processes (`tests/performance/distributed_worker.py`),
because devices must be set up before the backend starts: two logical CPU
devices for `tf.distribute.MirroredStrategy`, two XLA host devices for
`keras.distribution.DataParallel`. Each process trains the same U-Net on
the same global batches once on one device and once on two, from the same
initial weights, and the losses, metrics, sample counts and weights must
agree.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from _xla_flags import with_devices

from keras_unet_seg.performance import Distribution, distribution

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().with_name("distributed_worker.py")


def _run_worker(spec, backend, extra_env=None):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.update(extra_env or {})
    proc = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


def _assert_same_training(result, samples_per_epoch, epochs=2):
    single, multi = result["single"], result["multi"]
    assert multi["replicas"] == 2
    assert single["replicas"] == 1
    # Global batch = per-replica batch x replicas, the one-device batch.
    assert multi["batch_size"] == single["batch_size"] == 8
    # Metric counts are the samples seen, once each, per epoch.
    assert multi["fit_count"] == single["fit_count"] == samples_per_epoch
    assert multi["eval_count"] == single["eval_count"] == samples_per_epoch
    assert set(multi["history"]) == set(single["history"])
    for name, values in single["history"].items():
        assert len(values) == epochs
        np.testing.assert_allclose(multi["history"][name], values, rtol=1e-4, atol=1e-5)
    for name, value in single["evaluate"].items():
        np.testing.assert_allclose(multi["evaluate"][name], value, rtol=1e-4, atol=1e-5)
    # Float32 sums grouped per replica round differently; SGD with momentum
    # carries that over six steps to a few 1e-5.
    for got, want in zip(multi["weights"], single["weights"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    assert multi["predict_shape"] == [4, 32, 32, 1]
    assert multi["predict_dtype"] == "float32"


@pytest.mark.slow
def test_mirrored_strategy_trains_like_one_device():
    """Two logical CPU devices; 22 samples in global batches of 8: 8, 8, then 6 (3 a replica).

    Group normalization, because batch normalization under MirroredStrategy
    uses each replica's own batch statistics and so legitimately differs.
    """
    spec = {"strategy": "mirrored", "normalization": "group", "samples": 22, "even_batches": True}
    result = _run_worker(spec, "tensorflow")
    assert result["backend"] == "tensorflow"
    _assert_same_training(result, samples_per_epoch=22)


@pytest.mark.slow
def test_data_parallel_trains_like_one_device():
    """Two JAX host devices; 21 samples: batches of 8 and 8 are kept, the odd 5 is dropped.

    Batch normalization included: DataParallel is one SPMD program, so the
    batch statistics are those of the whole global batch, as on one device.
    """
    pytest.importorskip("jax")
    spec = {
        "strategy": "data_parallel",
        "normalization": "batch",
        "samples": 21,
        "even_batches": True,
    }
    result = _run_worker(spec, "jax", {"XLA_FLAGS": with_devices(2)})
    assert result["backend"] == "jax"
    _assert_same_training(result, samples_per_epoch=16)


# --------------------------------------------------------------------------- in-process


def test_no_strategy_is_one_replica():
    dist = distribution(None)
    assert isinstance(dist, Distribution)
    assert dist.name is None and dist.strategy is None
    assert dist.num_replicas == 1
    assert dist.global_batch_size(8) == 8
    with dist.scope():
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert model.built
    data = object()
    assert dist.even_batches(data) is data
    assert repr(dist) == "Distribution(name=None, num_replicas=1)"


def test_global_batch_size_scales_with_replicas():
    dist = Distribution("mirrored", None, 4)
    assert dist.global_batch_size(16) == 64
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(ValueError, match="Invalid value for argument `per_replica_batch_size`"):
            dist.global_batch_size(bad)


def test_even_batches_drops_only_uneven_batches():
    tf = pytest.importorskip("tensorflow")
    dataset = tf.data.Dataset.from_tensor_slices(
        (np.arange(21, dtype="float32"), np.arange(21, dtype="float32"))
    ).batch(8)
    sizes = [int(x.shape[0]) for x, _ in Distribution("mirrored", None, 2).even_batches(dataset)]
    assert sizes == [8, 8]
    sizes = [int(x.shape[0]) for x, _ in Distribution("mirrored", None, 5).even_batches(dataset)]
    assert sizes == [5]
    single = tf.data.Dataset.from_tensor_slices(np.arange(6, dtype="float32")).batch(4)
    assert [len(x) for x in Distribution("mirrored", None, 2).even_batches(single)] == [4, 2]


def test_even_batches_with_known_counts_keeps_a_known_length():
    tf = pytest.importorskip("tensorflow")

    def batched(num_samples, batch_size):
        return tf.data.Dataset.from_tensor_slices(np.arange(num_samples, dtype="float32")).batch(
            batch_size
        )

    two = Distribution("mirrored", None, 2)
    for num_samples, batch_size, sizes in ((21, 8, [8, 8]), (22, 8, [8, 8, 6]), (16, 8, [8, 8])):
        even = two.even_batches(batched(num_samples, batch_size), num_samples, batch_size)
        assert [len(x) for x in even] == sizes
        assert int(even.cardinality()) == len(sizes)  # known, unlike after a filter
    with pytest.raises(ValueError, match="Expected `num_samples` and `batch_size` together"):
        two.even_batches(batched(4, 2), num_samples=4)
    with pytest.raises(ValueError, match="Expected a multiple of the 2 replicas"):
        two.even_batches(batched(9, 3), 9, 3)
    assert [two.left_out(n, 8) for n in (16, 21, 22, 3)] == [0, 5, 0, 3]


def test_even_batches_produce_every_batch_before_dropping():
    """The dropped batch is still computed, so a seeded augmentation draws as on one device."""
    tf = pytest.importorskip("tensorflow")
    produced = []

    def record(x):
        tf.py_function(lambda size: produced.append(int(size)), [tf.shape(x)[0]], [])
        return x

    dataset = tf.data.Dataset.from_tensor_slices(np.arange(21, dtype="float32")).batch(8)
    even = Distribution("mirrored", None, 2).even_batches(dataset.map(record), 21, 8)
    assert [len(x) for x in even] == [8, 8]
    assert produced == [8, 8, 5]


def test_unknown_strategy_is_refused():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `strategy`\. Expected one of 'mirrored', "
        r"'data_parallel' or None\. Received: strategy='horovod'",
    ):
        distribution("horovod")
    with pytest.raises(ValueError, match="Invalid value for argument `strategy`"):
        distribution(3)


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="DataParallel runs on JAX")
def test_data_parallel_needs_jax():
    with pytest.raises(ValueError, match=r"'data_parallel' .* needs the JAX backend"):
        distribution("data_parallel")


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="mirrored runs on TF")
def test_mirrored_needs_tensorflow():
    with pytest.raises(ValueError, match=r"'mirrored' .* needs the TensorFlow backend"):
        distribution("mirrored")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute")
def test_existing_tf_strategy_is_wrapped():
    import tensorflow as tf

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    dist = distribution(strategy)
    assert dist.name == "OneDeviceStrategy" and dist.strategy is strategy
    assert dist.num_replicas == 1
