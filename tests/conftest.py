"""Shared test configuration."""

import keras
import pytest


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
