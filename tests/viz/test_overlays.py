"""Tests for `keras_unet_seg.viz.overlays`."""

import os
import sys
import warnings

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet_seg import viz
from keras_unet_seg.viz import overlays
from keras_unet_seg.viz.overlays import overlay_mask, save_overlays


def _scene(height=40, width=50, seed=0):
    """A uint8 RGB image and a bool disc mask."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype="uint8")
    yy, xx = np.mgrid[:height, :width]
    mask = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(height, width) / 3) ** 2
    return image, mask


def _read_only(array):
    array = array.copy()
    array.flags.writeable = False
    return array


# --- overlay_mask ------------------------------------------------------------


def test_overlay_does_not_modify_inputs():
    image, mask = _scene()
    for img, msk in [
        (image, mask),
        (image.astype("float32") / 255, mask.astype("float32") * 0.9),
        (image[..., :1], mask.astype("uint8")[..., None]),
    ]:
        img, msk = _read_only(img), _read_only(msk)  # writing to them would raise
        copies = img.copy(), msk.copy()
        for mode in ("fill", "contour"):
            out = overlay_mask(img, msk, mode=mode)
            assert not np.shares_memory(out, img)
        np.testing.assert_array_equal(img, copies[0])
        np.testing.assert_array_equal(msk, copies[1])


@pytest.mark.parametrize(
    "image_shape, mask_shape",
    [
        ((40, 50, 3), (40, 50)),
        ((40, 50), (40, 50, 1)),
        ((40, 50, 1), (40, 50)),
        ((40, 50, 4), (40, 50)),
    ],
)
def test_overlay_dtype_and_shape(image_shape, mask_shape):
    image = np.zeros(image_shape, "uint8")
    mask = np.ones(mask_shape, "uint8")
    out = overlay_mask(image, mask)
    assert out.shape == (40, 50, 3)
    assert out.dtype == np.uint8


def test_fill_is_keras_blend_inside_and_image_outside():
    image, mask = _scene()
    out = overlay_mask(image, mask, color=(10, 200, 30), alpha=0.3)
    expected = (image.astype("float32") * 0.7 + np.array([10, 200, 30], "float32") * 0.3).astype(
        "uint8"
    )
    np.testing.assert_array_equal(out[mask], expected[mask])
    np.testing.assert_array_equal(out[~mask], image[~mask])
    # The same as keras.visualization.draw_segmentation_masks on a batch of one.
    reference = keras.visualization.draw_segmentation_masks(
        image[None],
        mask[None, ..., None].astype("int32"),
        num_classes=2,
        color_mapping={0: (0, 0, 0), 1: (10, 200, 30)},
        alpha=0.3,
        ignore_index=0,
    )
    np.testing.assert_array_equal(out, keras.ops.convert_to_numpy(reference)[0])


def test_uint8_and_float_images_give_the_same_overlay():
    image, mask = _scene()
    for mode in ("fill", "contour"):
        expected = overlay_mask(image, mask, mode=mode)
        for dtype in ("float32", "float64"):
            np.testing.assert_array_equal(
                overlay_mask(image.astype(dtype) / 255, mask, mode=mode), expected
            )
        gray = overlay_mask(image[..., 0], mask, mode=mode)
        np.testing.assert_array_equal(
            overlay_mask(image[..., :1].astype("float32") / 255, mask, mode=mode), gray
        )


def test_binary_mask_forms_agree_and_threshold_is_inclusive():
    image, mask = _scene()
    expected = overlay_mask(image, mask)
    probabilities = np.where(mask, 0.5, 0.49).astype("float32")  # 0.5 >= threshold
    for form in (mask.astype("uint8"), mask[..., None], probabilities, probabilities[..., None]):
        np.testing.assert_array_equal(overlay_mask(image, form), expected)
    assert (overlay_mask(image, probabilities, threshold=0.6) == image).all()


def test_empty_mask_returns_a_copy_of_the_image():
    image, _ = _scene()
    out = overlay_mask(image, np.zeros(image.shape[:2], bool))
    np.testing.assert_array_equal(out, image)
    assert not np.shares_memory(out, image)


def test_contour_pixels_are_only_on_the_boundary():
    image = np.zeros((40, 50, 3), "uint8")
    _, mask = _scene()
    out = overlay_mask(image, mask, mode="contour", color=(0, 255, 0), alpha=1.0)
    drawn = (out != image).any(axis=-1)
    padded = np.pad(mask, 1)
    outside_neighbour = ~(
        padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    )
    boundary = mask & outside_neighbour
    np.testing.assert_array_equal(drawn, boundary)
    assert drawn.sum() < mask.sum() / 3
    assert (out[drawn] == [0, 255, 0]).all()
    # Thicker contours grow inwards only.
    thick = (overlay_mask(image, mask, mode="contour", thickness=3, alpha=1.0) != 0).any(-1)
    assert (thick & ~mask).sum() == 0
    assert (thick & boundary).sum() == boundary.sum() and thick.sum() > 2 * boundary.sum()


def test_contour_closes_regions_at_the_image_border():
    mask = np.zeros((10, 10), bool)
    mask[:5, :5] = True  # touches the top and left borders
    drawn = (overlay_mask(np.zeros((10, 10)), mask, mode="contour", alpha=1.0) != 0).any(-1)
    expected = np.zeros((10, 10), bool)
    expected[0, :5] = expected[:5, 0] = expected[4, :5] = expected[:5, 4] = True
    np.testing.assert_array_equal(drawn, expected)


def test_multi_class_colours():
    ids = np.zeros((6, 8), "int64")
    ids[0:2] = 1
    ids[2:4] = 2
    ids[4:5] = 7
    ids[5, :4] = 255
    image = np.zeros((6, 8, 3), "uint8")
    mapping = {1: (255, 0, 0), 2: (0, 255, 0), 7: (0, 0, 255)}
    out = overlay_mask(image, ids, alpha=1.0, color_mapping=mapping, ignore_class=255)
    for k, rgb in mapping.items():
        assert (out[ids == k] == rgb).all()
    assert (out[5] == 0).all()  # background and ignored
    # Default colours: `color` for class 1, then the palette.
    out = overlay_mask(image[:4], ids[:4], alpha=1.0, color=(1, 2, 3))
    assert (out[:2] == (1, 2, 3)).all() and (out[2:4] == overlays._PALETTE[0]).all()
    # Per-class scores (softmax) are reduced with an argmax, channel 0 = background.
    scores = np.eye(3, dtype="float32")[ids[:4]]
    np.testing.assert_array_equal(overlay_mask(image[:4], scores, alpha=1.0, color=(1, 2, 3)), out)


def test_backend_tensor_inputs():
    image, mask = _scene()
    expected = overlay_mask(image, mask)
    out = overlay_mask(keras.ops.convert_to_tensor(image), keras.ops.convert_to_tensor(mask))
    np.testing.assert_array_equal(out, expected)


def test_size_mismatch_error_quotes_both_shapes():
    with pytest.raises(ValueError) as info:
        overlay_mask(np.zeros((40, 50, 3), "uint8"), np.zeros((40, 51, 1), "uint8"))
    assert str(info.value) == (
        "Invalid value for argument `mask`. Expected a mask with the image's height and width "
        "(40, 50). Received: mask.shape=(40, 51, 1) for image.shape=(40, 50, 3)"
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": 1.5}, "Invalid value for argument `alpha`. Expected a float in [0, 1]."),
        ({"mode": "outline"}, "Expected one of 'fill', 'contour'. Received: mode='outline'"),
        ({"color": (300, 0, 0)}, "Invalid value for argument `color`. Expected an RGB tuple"),
        ({"thickness": 0}, "Invalid value for argument `thickness`"),
        ({"image": np.full((4, 4, 3), 255.0)}, "Expected a float image in [0, 1]"),
        ({"image": np.zeros((4, 4, 2))}, "Received: image.shape=(4, 4, 2)"),
        ({"mask": np.full((4, 4), 2.0)}, "Expected probabilities in [0, 1] for a float mask"),
        ({"mask": np.full((4, 4), -1)}, "Expected non-negative class ids"),
        (
            {"mask": np.ones((4, 4), "int32"), "color_mapping": {2: (0, 0, 0)}},
            "missing class ids [1]",
        ),
    ],
)
def test_overlay_invalid_arguments(kwargs, message):
    arguments = {"image": np.zeros((4, 4, 3), "uint8"), "mask": np.ones((4, 4), bool), **kwargs}
    with pytest.raises(ValueError) as info:
        overlay_mask(**arguments)
    assert message in str(info.value)


# --- save_overlays -----------------------------------------------------------


def test_save_overlays_writes_readable_pngs(tmp_path):
    scenes = [_scene(30, 40, seed=0), _scene(25, 20, seed=1)]  # different sizes: a list
    images = [s[0] for s in scenes]
    predictions = [s[1].astype("float32") for s in scenes]
    out_dir = tmp_path / "new" / "overlays"
    paths = save_overlays(
        images, predictions, out_dir, names=["first", "second.png"], mode="contour"
    )
    assert paths == [str(out_dir / "first.png"), str(out_dir / "second.png")]
    assert sorted(os.listdir(out_dir)) == ["first.png", "second.png"]  # no temporary files
    for path, image, prediction in zip(paths, images, predictions, strict=True):
        with Image.open(path) as png:
            assert png.format == "PNG" and png.mode == "RGB"
            np.testing.assert_array_equal(
                np.asarray(png), overlay_mask(image, prediction, mode="contour")
            )
    default = save_overlays(np.stack([images[0]] * 2), np.stack([predictions[0]] * 2), tmp_path)
    assert [os.path.basename(p) for p in default] == ["overlay_0000.png", "overlay_0001.png"]


@pytest.mark.parametrize(
    "names, message",
    [
        (["a"], "Received: 2 images, 2 predictions and 1 names"),
        (["a", "a.png"], "Expected distinct names"),
        (["a", "sub/b"], "Expected file names without a folder. Received: name='sub/b'"),
    ],
)
def test_save_overlays_bad_names(tmp_path, names, message):
    with pytest.raises(ValueError) as info:
        save_overlays(np.zeros((2, 4, 4, 3)), np.zeros((2, 4, 4)), tmp_path, names=names)
    assert message in str(info.value)
    assert os.listdir(tmp_path) == []


def test_ignore_index_is_a_deprecated_name_of_ignore_class():
    ids = np.array([[0, 1], [255, 255]])
    image = np.zeros((2, 2, 3), "uint8")
    expected = overlay_mask(image, ids, alpha=1.0, ignore_class=255)
    with pytest.warns(DeprecationWarning, match="use `ignore_class` instead"):
        np.testing.assert_array_equal(
            overlay_mask(image, ids, alpha=1.0, ignore_index=255), expected
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        overlay_mask(image, ids, alpha=1.0, ignore_class=255)
    with pytest.raises(ValueError, match="pass only `ignore_class`"):
        overlay_mask(image, ids, ignore_class=255, ignore_index=255)


def test_viz_package_re_exports_every_public_name():
    for name in viz.__all__:
        module = "figures" if name.startswith("plot_") else "overlays"
        assert getattr(viz, name) is getattr(getattr(viz, module), name)
    assert viz.class_color is overlays.class_color


def test_overlays_need_no_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    image, mask = _scene()
    assert overlay_mask(image, mask).shape == image.shape
