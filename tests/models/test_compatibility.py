"""`.keras` files saved by an earlier version load and behave as they did.

The files in `saved/` were written before the package was restructured (see
`saved/make_saved_models.py`); each holds a compiled model, so its losses and
metrics are deserialized too.
"""

from pathlib import Path

import keras
import numpy as np
import pytest

import keras_unet_seg  # noqa: F401  (registers the package's classes)

SAVED = Path(__file__).parent / "saved"


# About versions, not backends: the files were written under TensorFlow.
@pytest.mark.one_backend
@pytest.mark.parametrize("name", ["unet", "unet_attention_residual_group", "unet_plus_plus"])
def test_a_file_from_before_loads_with_the_same_outputs_loss_and_metrics(name):
    model = keras.models.load_model(SAVED / f"{name}.keras", safe_mode=True)
    saved = np.load(SAVED / f"{name}.npz")

    np.testing.assert_allclose(
        model.predict(saved["images"], verbose=0), saved["outputs"], atol=1e-5
    )
    values = model.evaluate(saved["images"], saved["masks"], verbose=0, return_dict=True)
    expected = {key[len("evaluate_") :]: saved[key] for key in saved if key.startswith("evaluate_")}
    assert set(values) == set(expected)
    for key, value in values.items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-4, atol=1e-5, err_msg=key)
