"""`keras_unet_seg.inference.predict_directory`: folders of images to mask and overlay PNGs.

(Beside `tests/test_inference.py`, which tests `predict_tiled`.) The models are 1x1
convolutions with set weights, so every mask is known in advance.
"""

import os
import re

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet_seg.inference import predict_directory


def _model(kernel, bias, activation):
    """`activation(image @ kernel + bias)` per pixel: a model whose output is known."""
    inputs = keras.Input((None, None, 3))
    layer = keras.layers.Conv2D(len(bias), 1, activation=activation)
    outputs = layer(inputs)
    layer.set_weights(
        [np.array(kernel, "float32").reshape(1, 1, 3, len(bias)), np.array(bias, "float32")]
    )
    return keras.Model(inputs, outputs)


def _binary_model():
    """Foreground where the red channel is 255."""
    return _model([20.0, 0.0, 0.0], [-10.0], "sigmoid")


def _image(path, red, green=None):
    rgb = np.zeros((*red.shape, 3), np.uint8)
    rgb[..., 0] = red * 255
    if green is not None:
        rgb[..., 1] = green * 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


def test_masks_and_overlays_of_a_folder_keep_their_relative_names(tmp_path, capsys):
    red = np.zeros((12, 10), np.uint8)
    red[3:7, 2:5] = 1
    _image(tmp_path / "in" / "a.png", red)
    _image(tmp_path / "in" / "sub" / "b.png", 1 - red)
    written = predict_directory(_binary_model(), tmp_path / "in", tmp_path / "out", tile_size=8)
    out = tmp_path / "out"
    assert [row["mask"] for row in written] == [
        os.path.join(out, "masks", "a.png"),
        os.path.join(out, "masks", "sub/b.png"),
    ]
    np.testing.assert_array_equal(np.asarray(Image.open(written[0]["mask"])), red * 255)
    np.testing.assert_array_equal(np.asarray(Image.open(written[1]["mask"])), (1 - red) * 255)
    overlay = np.asarray(Image.open(written[0]["overlay"]))
    assert overlay.shape == (12, 10, 3) and (overlay[3:7, 2:5] != 0).any()
    assert f"Wrote 2 masks to '{out / 'masks'}' and overlays to '{out / 'overlays'}'." in (
        capsys.readouterr().out
    )


def test_several_classes_give_palette_masks_and_a_legend(tmp_path):
    red, green = np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8)
    red[2:6, 2:6], green[8:14, 8:14] = 1, 1
    _image(tmp_path / "a.png", red, green)
    model = _model([[0, 20, 0], [0, 0, 20], [0, 0, 0]], [5.0, 0.0, 0.0], "softmax")
    palette = [[0, 0, 0], [10, 20, 30], [200, 100, 0]]
    [row] = predict_directory(
        model,
        [tmp_path / "a.png"],
        tmp_path / "out",
        class_colors=palette,
        class_names=["background", "red", "green"],
        overlay_mode="fill",
        verbose=0,
    )
    with Image.open(row["mask"]) as mask:
        assert mask.mode == "P" and mask.getpalette()[:9] == [c for rgb in palette for c in rgb]
        np.testing.assert_array_equal(np.asarray(mask), red + 2 * green)
    with Image.open(row["overlay"]) as overlay:
        assert overlay.size[0] == 16 and overlay.size[1] > 16  # the legend strip


def test_a_scale_predicts_at_another_size_and_resizes_back(tmp_path):
    red = np.zeros((20, 20), np.uint8)
    red[4:16, 4:16] = 1
    _image(tmp_path / "a.png", red)
    [row] = predict_directory(
        _binary_model(), tmp_path / "a.png", tmp_path / "out", scale=0.5, verbose=0
    )
    mask = np.asarray(Image.open(row["mask"]))
    assert mask.shape == (20, 20)
    assert np.mean((mask > 0) == (red > 0)) > 0.9


@pytest.mark.parametrize(
    ("inputs", "error", "message"),
    [
        ("missing", FileNotFoundError, "input '{root}/missing' does not exist."),
        ("notes.txt", ValueError, "input '{root}/notes.txt' is not an image file"),
        ("empty", ValueError, "input folder '{root}/empty' holds no image files"),
        (["a.png", "sub/a.png"], ValueError, "would both be written as 'a.png'"),
    ],
)
def test_inputs_are_checked_before_anything_is_written(tmp_path, inputs, error, message):
    _image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    _image(tmp_path / "sub" / "a.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    paths = [str(tmp_path / i) for i in inputs] if isinstance(inputs, list) else tmp_path / inputs
    with pytest.raises(error, match=re.escape(message.format(root=tmp_path))):
        predict_directory(_binary_model(), paths, tmp_path / "out", verbose=0)
    assert not (tmp_path / "out").exists()


def test_only_files_an_earlier_prediction_wrote_are_replaced(tmp_path):
    _image(tmp_path / "in" / "a.png", np.zeros((4, 4), np.uint8))
    out = tmp_path / "out"
    predict_directory(_binary_model(), tmp_path / "in", out, verbose=0)
    with pytest.raises(FileExistsError, match="pass overwrite=True to replace them"):
        predict_directory(_binary_model(), tmp_path / "in", out, verbose=0)
    predict_directory(_binary_model(), tmp_path / "in", out, overwrite=True, verbose=0)

    (out / "masks" / "a.png").write_bytes(b"the user's mask")
    with pytest.raises(
        FileExistsError, match=r"did not write 'masks/a.png' \(or it changed since\)"
    ):
        predict_directory(_binary_model(), tmp_path / "in", out, overwrite=True, verbose=0)
    assert (out / "masks" / "a.png").read_bytes() == b"the user's mask"
    with pytest.raises(ValueError, match="outputs never go among the inputs"):
        predict_directory(_binary_model(), tmp_path / "in", tmp_path / "in" / "out", verbose=0)
    assert not (tmp_path / "in" / "out").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"threshold": -0.5}, "Invalid value for argument `threshold`. Expected a float in [0, 1]"),
        ({"overlay_mode": "outline"}, "Expected one of 'contour', 'fill'. Received: overlay_mode="),
        ({"scale": 0}, "Invalid value for argument `scale`. Expected None, a positive number"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, arguments, message):
    _image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=re.escape(message)):
        predict_directory(_binary_model(), tmp_path / "a.png", tmp_path / "out", **arguments)
