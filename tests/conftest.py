"""Shared test configuration."""

import os

# XLA (JAX, and TensorFlow's jit_compile) compiles each operation of the tests' small
# models anew for every shape, and LLVM's optimizations cost more than they save:
# the JAX reruns of the decoder and ConvBlock tests took 63 s with them, 29 s without.
# Set before Keras imports a backend, and inherited by the tests' subprocesses.
XLA_TEST_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_TEST_FLAGS}".strip()

import keras  # noqa: E402
import pytest  # noqa: E402


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
