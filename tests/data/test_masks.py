"""Masks to training targets (`data/_masks.py`): binary, class ids, palettes, thresholds."""

import numpy as np
import pytest
import tensorflow as tf
from _data_files import (
    SIZE,
    from_dir,
    id_image,
    id_mask,
    raises_naming,
    save,
    write_id_pairs,
)
from PIL import Image


def test_multiclass_masks_are_int32_class_ids_with_ignore_class(tmp_path):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[:8], mask[8:16], mask[16:20] = 1, 2, 255
    save(tmp_path / "images" / "a.png", id_image(0))
    save(tmp_path / "masks" / "a.png", mask)
    dataset = from_dir(tmp_path, num_classes=3, ignore_class=255)
    _, masks = next(iter(dataset))
    assert masks.dtype == tf.int32 and masks.shape == (1, SIZE, SIZE, 1)
    np.testing.assert_array_equal(masks.numpy()[0, ..., 0], mask)


def test_palette_png_masks_are_read_as_class_indices(tmp_path):
    indices = np.zeros((SIZE, SIZE), np.uint8)
    indices[:10], indices[10:20] = 1, 2
    palette_mask = Image.fromarray(indices, mode="P")
    # Pascal VOC colours: index 1 is dark red (128, 0, 0), index 2 dark green.
    palette_mask.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
    (tmp_path / "masks").mkdir()
    palette_mask.save(tmp_path / "masks" / "a.png")
    save(tmp_path / "images" / "a.png", id_image(0))
    assert Image.open(tmp_path / "masks" / "a.png").mode == "P"
    _, masks = next(iter(from_dir(tmp_path, num_classes=3)))
    np.testing.assert_array_equal(masks.numpy()[0, ..., 0], indices)


def test_mask_threshold_binarises_noisy_masks(tmp_path):
    mask = id_mask(9).astype(np.int16)
    mask += np.random.default_rng(0).integers(-20, 20, mask.shape, dtype=np.int16)
    mask = np.clip(mask, 0, 255).astype(np.uint8)  # like a JPEG-compressed 0/255 mask
    save(tmp_path / "images" / "a.png", id_image(9))
    save(tmp_path / "masks" / "a.png", mask)
    with pytest.raises(ValueError, match=r"is not binary.*mask_threshold"):
        from_dir(tmp_path)
    _, masks = next(iter(from_dir(tmp_path, mask_threshold=127)))
    np.testing.assert_array_equal(masks.numpy()[0, ..., 0], id_mask(9) > 0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_label_images_are_read_as_foreground_and_said_so(tmp_path, dtype, capsys):
    labels = np.zeros((SIZE, SIZE), dtype)
    labels[2:8, 2:8], labels[10:14, 3:9], labels[20:30, 20:25] = 1, 2, 37
    save(tmp_path / "images" / "a.png", id_image(0))
    save(tmp_path / "masks" / "a.png", labels)
    _, masks = next(iter(from_dir(tmp_path)))
    np.testing.assert_array_equal(masks.numpy()[0, ..., 0], labels > 0)
    assert (
        "1 masks are label images (0 and object ids 1..N): foreground is value > 0."
        in capsys.readouterr().out
    )
    # A threshold is another rule; nothing is said.
    _, masks = next(iter(from_dir(tmp_path, mask_threshold=1)))
    np.testing.assert_array_equal(masks.numpy()[0, ..., 0], labels > 1)
    assert "label images" not in capsys.readouterr().out


def test_gray_mask_saved_as_rgb_is_accepted(tmp_path):
    save(tmp_path / "images" / "a.png", id_image(3))
    save(tmp_path / "masks" / "a.png", np.repeat(id_mask(3)[..., None], 3, axis=-1))
    _, masks = next(iter(from_dir(tmp_path)))
    np.testing.assert_array_equal(masks.numpy()[0, ..., 0], id_mask(3) > 0)


def test_mask_that_is_not_binary(tmp_path):
    write_id_pairs(tmp_path, 2)
    mask = id_mask(1)
    mask[20:] = 128
    path = save(tmp_path / "masks" / "s001.png", mask)
    raises_naming(path, r"is not binary: it holds 3 distinct values \(0, 128, 255\)", tmp_path)


def test_mask_values_beyond_num_classes(tmp_path):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[:4], mask[4:8] = 2, 7
    save(tmp_path / "images" / "a.png", id_image(0))
    path = save(tmp_path / "masks" / "a.png", mask)
    raises_naming(
        path,
        r"holds values \(7\) that are not class ids in \[0, 2\] \(num_classes=3\)",
        tmp_path,
        num_classes=3,
    )
    binary = save(tmp_path / "masks" / "a.png", id_mask(0))
    raises_naming(
        binary, r"looks like a binary 0/255 mask: use num_classes=1", tmp_path, num_classes=2
    )


def test_colour_mask(tmp_path):
    save(tmp_path / "images" / "a.png", id_image(0))
    colours = np.zeros((SIZE, SIZE, 3), np.uint8)
    colours[:10] = (128, 0, 0)
    path = save(tmp_path / "masks" / "a.png", colours)
    raises_naming(path, r"is a colour image whose channels differ", tmp_path)
