"""Shared test configuration."""

import os

import keras
import pytest
from hypothesis import HealthCheck, settings

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
