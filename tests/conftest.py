"""Shared test configuration."""

import os

import pytest
from hypothesis import HealthCheck, settings


def _threads_per_worker():
    """Sizes the backends' thread pools to the worker's share of the cores.

    TensorFlow, XLA and PyTorch each size their pools to the whole machine, so under
    `pytest -n 2` on 2 cores every worker (and each process a test starts, which
    inherits these variables) spins up threads that contend with the other worker's.
    One thread each on the 2-core machine: 17% less CPU time for the synthetic-data
    training test (`tests/data/test_synthetic.py`), and half its wall time.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", threads)
    os.environ.setdefault("OMP_NUM_THREADS", threads)  # PyTorch, OpenBLAS
    if threads == "1":  # JAX: XLA's CPU pool (11% less CPU time for the JAX volume losses)
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()


_threads_per_worker()  # before Keras imports its backend

import keras  # noqa: E402

# The property tests' settings. tests/test_backends.py lowers the examples for its JAX
# and PyTorch reruns: the properties are checked in full on the main backend, the
# reruns check that the other backends agree.
settings.register_profile(
    "keras_unet_seg",
    max_examples=int(os.environ.get("KERAS_UNET_SEG_MAX_EXAMPLES", "12")),
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("keras_unet_seg")


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends with the float32 dtype policy."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


def pytest_collection_modifyitems(items):
    """Runs the backend reruns first: each takes minutes, so that with `pytest -n 2`
    the two workers share them at the start instead of one worker ending alone."""
    items.sort(key=lambda item: item.path.name != "test_backends.py")
