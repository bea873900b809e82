"""`.keras` files saved by an earlier version load and behave as they did.

The files in `saved/` were written before the package was restructured (see
`saved/make_saved_models.py`); each holds a compiled model, so its losses and
metrics are deserialized too. Those in `tests/data/compat/` were written by the
first version and by the last before the U-Net became encoder -> decoder -> head
(see their README).
"""

from pathlib import Path

import keras
import numpy as np
import pytest

import keras_unet_seg  # noqa: F401  (registers the package's classes)

SAVED = Path(__file__).parent / "saved"
COMPAT = Path(__file__).parents[1] / "data" / "compat"


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


@pytest.mark.one_backend
@pytest.mark.parametrize("version", ["0.1", "f376df5"])
@pytest.mark.parametrize("variant", ["plain", "residual_attention"])
def test_a_unet_of_an_earlier_version_predicts_the_same_saves_again_and_trains(
    tmp_path, version, variant
):
    stem = f"unet_{version}_{variant}"
    images = np.load(COMPAT / "input.npy")
    expected = np.load(COMPAT / f"{stem}.npy")
    model = keras.models.load_model(COMPAT / f"{stem}.keras", safe_mode=True)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-6)

    model.save(tmp_path / "again.keras")
    again = keras.models.load_model(tmp_path / "again.keras", safe_mode=True)
    np.testing.assert_allclose(again.predict(images, verbose=0), expected, atol=1e-6)

    before = again.get_weights()
    again.compile(optimizer="adam", loss="binary_crossentropy")
    loss = again.train_on_batch(images, (images[..., :1] > 0.5).astype("float32"))
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, again.get_weights(), strict=True))
