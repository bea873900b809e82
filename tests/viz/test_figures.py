"""Tests for `keras_unet_seg.viz.figures`."""

import os
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet_seg.viz.figures import plot_history, plot_predictions


def _scene(height=40, width=50, seed=0):
    """A uint8 RGB image and a bool disc mask."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype="uint8")
    yy, xx = np.mgrid[:height, :width]
    mask = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(height, width) / 3) ** 2
    return image, mask


# --- plot_predictions --------------------------------------------------------


def test_plot_predictions_axes_and_no_pyplot_state():
    import matplotlib
    import matplotlib.figure

    backend = matplotlib.get_backend()
    pyplot_loaded = "matplotlib.pyplot" in sys.modules
    images = np.stack([_scene(seed=i)[0] for i in range(3)])
    masks = np.stack([_scene(seed=i)[1] for i in range(3)])[..., None].astype("uint8")
    predictions = masks.astype("float32") * 0.8

    figure = plot_predictions(images, masks, predictions)
    assert isinstance(figure, matplotlib.figure.Figure)
    assert len(figure.axes) == 12
    assert [ax.get_title() for ax in figure.axes[:4]] == [
        "image",
        "ground truth",
        "prediction",
        "overlay",
    ]
    assert len(plot_predictions(list(images), None, list(predictions)).axes) == 9
    assert len(plot_predictions(images, masks, predictions, max_images=1).axes) == 4
    softmax = np.eye(3, dtype="float32")[masks[..., 0] + 1]  # multi-class predictions
    assert len(plot_predictions(images, masks, softmax, mode="contour").axes) == 12
    assert matplotlib.get_backend() == backend
    assert ("matplotlib.pyplot" in sys.modules) == pyplot_loaded


def test_plot_predictions_errors():
    images, masks = np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 8, 1))
    with pytest.raises(ValueError, match="Expected the same non-zero number of items"):
        plot_predictions(images, masks, np.zeros((3, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"argument `masks`.*image 0, \(8, 8\)"):
        plot_predictions(images, np.zeros((2, 8, 9, 1)), masks)


def test_missing_matplotlib_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install \"keras-unet-seg\[viz\]\""):
        plot_history({"loss": [1.0]})


# --- plot_history ------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A History and the CSVLogger file of the same two-epoch fit."""
    csv_path = tmp_path_factory.mktemp("history") / "log.csv"
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((16, 4), dtype="float32")
    y = (x[:, :1] > 0.5).astype("float32")
    history = model.fit(
        x,
        y,
        validation_split=0.25,
        epochs=3,
        verbose=0,
        callbacks=[keras.callbacks.CSVLogger(str(csv_path))],
    )
    return history, csv_path


def test_plot_history_from_history_and_csv_agree(trained, tmp_path):
    history, csv_path = trained
    for source in (history, history.history, csv_path, str(csv_path)):
        figure = plot_history(source)
        assert [ax.get_title() for ax in figure.axes] == ["loss", "accuracy"]
        for ax in figure.axes:
            assert [line.get_label() for line in ax.get_lines()] == ["training", "validation"]
            np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2, 3])
        np.testing.assert_allclose(
            figure.axes[0].get_lines()[1].get_ydata(), history.history["val_loss"], rtol=1e-6
        )
    path = tmp_path / "curves.png"
    plot_history(csv_path, metrics=["loss"], filepath=path)
    with Image.open(path) as png:
        assert png.format == "PNG"
    assert os.listdir(tmp_path) == ["curves.png"]


def test_plot_history_csv_with_missing_values_and_resumed_epochs(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(
        "epoch,dice,loss,val_dice,val_loss\n5,0.5,0.9,NA,1.0\n6,0.6,0.8,0.55,0.85\n"
        "7,0.7,0.7,0.6,0.8\n8,0.8,0.6,0.7,0.7\n"
    )
    figure = plot_history(path)
    assert len(figure.axes) == 2
    validation = figure.axes[1].get_lines()[1]
    np.testing.assert_array_equal(validation.get_xdata(), [6, 7, 8, 9])
    assert np.isnan(validation.get_ydata()[0])


def test_plot_history_errors(tmp_path):
    with pytest.raises(ValueError, match=r"Expected names among \['loss'\]"):
        plot_history({"loss": [1.0]}, metrics=["dice"])
    with pytest.raises(ValueError, match="Expected logged losses or metrics"):
        plot_history({})
    with pytest.raises(FileNotFoundError):
        plot_history(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("epoch,loss\n")
    with pytest.raises(ValueError, match="Expected a CSV log with a header and at least one epoch"):
        plot_history(tmp_path / "empty.csv")
    with pytest.raises(ValueError, match=r"Expected a keras\.callbacks\.History"):
        plot_history(42)
