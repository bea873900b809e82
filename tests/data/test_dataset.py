"""SegmentationDataset: layouts, pairing, formats, errors, order, cache, fit."""

import os
import re
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from _data_files import SIZE, epoch_ids, id_image, id_mask, save, write_id_pairs
from PIL import Image

from keras_unet_seg.data import InvalidFileError, SegmentationDataset, _pipeline, read_header


def _from_dir(root, **kwargs):
    kwargs.setdefault("image_size", (SIZE, SIZE))
    kwargs.setdefault("batch_size", 4)
    kwargs.setdefault("seed", 0)
    return SegmentationDataset.from_directory(root, **kwargs)


def _all(dataset):
    images, masks = zip(*[(i.numpy(), m.numpy()) for i, m in dataset], strict=True)
    return np.concatenate(images), np.concatenate(masks)


# --- layouts, shapes and dtypes ---------------------------------------------------------


def test_split_layout_reads_the_named_subset(tmp_path):
    write_id_pairs(tmp_path / "train", 6)
    write_id_pairs(tmp_path / "val", 3)
    train = _from_dir(tmp_path, subset="train")
    val = _from_dir(tmp_path, subset="val", shuffle=False)
    images, masks = next(iter(train))
    assert images.shape == (4, SIZE, SIZE, 3) and images.dtype == tf.float32
    assert masks.shape == (4, SIZE, SIZE, 1) and masks.dtype == tf.float32
    assert set(np.unique(masks.numpy())) <= {0.0, 1.0}
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    assert sorted(epoch_ids(train)) == list(range(6))
    assert epoch_ids(val) == [0, 1, 2]  # unshuffled: sorted by name
    assert len(train.image_paths) == 6 and train.skipped == []
    assert [os.path.basename(p) for p in val.mask_paths] == ["s000.png", "s001.png", "s002.png"]


def test_flat_layout_without_split_reads_every_pair(tmp_path):
    write_id_pairs(tmp_path, 5)
    dataset = _from_dir(tmp_path, shuffle=False, batch_size=None)
    image, mask = next(iter(dataset))
    assert image.shape == (SIZE, SIZE, 3) and mask.shape == (SIZE, SIZE, 1)
    assert epoch_ids(dataset.batch(5)) == list(range(5))


def test_pairs_by_stem_across_extensions_with_a_mask_suffix(tmp_path):
    write_id_pairs(tmp_path, 4, image_ext=".jpg", mask_ext=".png", mask_suffix="_mask")
    dataset = _from_dir(tmp_path, mask_suffix="_mask", shuffle=False)
    images, masks = _all(dataset)
    # JPEG is lossy, but a uniform image decodes to within a grey level or two.
    assert epoch_ids([(images, masks)]) == [0, 1, 2, 3]


def test_subfolders_pair_by_relative_path(tmp_path):
    save(tmp_path / "images" / "a" / "x.png", id_image(1))
    save(tmp_path / "images" / "b" / "x.png", id_image(2))
    save(tmp_path / "masks" / "a" / "x.png", id_mask(1))
    save(tmp_path / "masks" / "b" / "x.png", id_mask(2))
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    (tmp_path / "images" / ".DS_Store").write_bytes(b"\0")
    dataset = _from_dir(tmp_path, shuffle=False)
    assert epoch_ids(dataset) == [1, 2]


def test_multiclass_masks_are_int32_class_ids_with_ignore_class(tmp_path):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[:8], mask[8:16], mask[16:20] = 1, 2, 255
    save(tmp_path / "images" / "a.png", id_image(0))
    save(tmp_path / "masks" / "a.png", mask)
    dataset = _from_dir(tmp_path, num_classes=3, ignore_class=255)
    _, masks = next(iter(dataset))
    assert masks.dtype == tf.int32 and masks.shape == (1, SIZE, SIZE, 1)
    np.testing.assert_array_equal(masks.numpy()[0, ..., 0], mask)


def test_resize_image_bilinear_mask_nearest(tmp_path):
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, 30:] = 255
    mask = np.zeros((40, 60), np.uint8)
    mask[:, 30:] = 3
    mask[:5, :5] = 1
    save(tmp_path / "images" / "a.png", image)
    save(tmp_path / "masks" / "a.png", mask)
    dataset = _from_dir(tmp_path, image_size=(16, 25), num_classes=4)
    images, masks = next(iter(dataset))
    assert images.shape == (1, 16, 25, 3) and masks.shape == (1, 16, 25, 1)
    assert set(np.unique(masks.numpy())) == {0, 1, 3}  # nearest: no new values
    np.testing.assert_allclose(images.numpy()[0, :, 12], 0.5, atol=1e-5)  # bilinear: a blended edge


def test_crop_and_pad_to_aspect_ratio(tmp_path):
    image = np.full((20, 40, 3), 255, np.uint8)
    mask = np.zeros((20, 40), np.uint8)
    mask[:, :10] = 255  # left quarter
    save(tmp_path / "images" / "a.png", image)
    save(tmp_path / "masks" / "a.png", mask)
    _, cropped = next(iter(_from_dir(tmp_path, image_size=(20, 20), crop_to_aspect_ratio=True)))
    # The centred 20x20 crop holds columns 10..29: no foreground left.
    assert float(tf.reduce_sum(cropped)) == 0.0
    images, padded = next(iter(_from_dir(tmp_path, image_size=(40, 40), pad_to_aspect_ratio=True)))
    # 20x40 padded to 40x40: 10 rows of zeros above and below, nothing squeezed.
    np.testing.assert_array_equal(images.numpy()[0, :10], 0.0)
    np.testing.assert_array_equal(images.numpy()[0, 10:30], 1.0)
    np.testing.assert_array_equal(padded.numpy()[0, 10:30, :10, 0], 1.0)
    assert float(tf.reduce_sum(padded)) == 200.0


def test_image_size_none_keeps_size_and_refuses_mixed_sizes(tmp_path):
    write_id_pairs(tmp_path, 2)
    images, _ = next(iter(_from_dir(tmp_path, image_size=None)))
    assert images.shape == (2, SIZE, SIZE, 3)
    save(tmp_path / "images" / "z.png", np.zeros((8, 8, 3), np.uint8))
    save(tmp_path / "masks" / "z.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(
        ValueError, match=r"With image_size=None every pair must have the same size"
    ):
        _from_dir(tmp_path, image_size=None)
    assert len(list(_from_dir(tmp_path, image_size=None, batch_size=None))) == 3


def test_standardize_gives_zero_mean_unit_variance(tmp_path):
    rng = np.random.default_rng(0)
    save(tmp_path / "images" / "a.png", rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    save(tmp_path / "masks" / "a.png", id_mask(3))
    images, _ = next(iter(_from_dir(tmp_path, intensity="standardize")))
    assert abs(float(tf.reduce_mean(images))) < 1e-4
    assert abs(float(tf.math.reduce_std(images)) - 1.0) < 1e-3
    with pytest.warns(DeprecationWarning, match=r"Use intensity='standardize' instead"):
        former, _ = next(iter(_from_dir(tmp_path, normalization="standardize")))
    np.testing.assert_array_equal(former.numpy(), images.numpy())


# --- formats ------------------------------------------------------------------------------


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
    _, masks = next(iter(_from_dir(tmp_path, num_classes=3)))
    np.testing.assert_array_equal(masks.numpy()[0, ..., 0], indices)


def test_16_bit_png_and_tiff_are_read_at_full_depth(tmp_path):
    gradient = (np.arange(SIZE * SIZE).reshape(SIZE, SIZE) * 60).astype(np.uint16)
    save(tmp_path / "images" / "png16.png", gradient)
    save(tmp_path / "images" / "tif16.tif", gradient)
    for name in ("png16", "tif16"):
        save(tmp_path / "masks" / f"{name}.png", id_mask(2))
    assert Image.open(tmp_path / "images" / "tif16.tif").mode.startswith("I;16")
    scaled, _ = _all(_from_dir(tmp_path, color_mode="grayscale", shuffle=False, intensity="scale"))
    low, high = np.percentile(gradient, [1, 99.8])
    auto, _ = _all(_from_dir(tmp_path, color_mode="grayscale", shuffle=False))
    for image in scaled:
        np.testing.assert_allclose(image[..., 0], gradient / 65535.0, atol=1e-6)
    for image in auto:  # the default: 1st percentile to 0, 99.8th to 1
        np.testing.assert_allclose(image[..., 0], (gradient - low) / (high - low), atol=1e-5)
    assert scaled.max() > 0.9  # 16-bit range, not clipped to 8 bits


def test_16_bit_multichannel_png_and_tiff_keep_full_depth(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    rgb = (np.random.default_rng(0).random((SIZE, SIZE, 3)) * 65535).astype(np.uint16)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(tf.io.encode_png(rgb).numpy())
    tifffile.imwrite(tmp_path / "images" / "b.tif", rgb)
    tifffile.imwrite(
        tmp_path / "images" / "c.tif",
        np.moveaxis(rgb, -1, 0),
        planarconfig="separate",
        photometric="rgb",
    )
    # Two 16-bit channels, as microscopes write them: Pillow cannot open it.
    tifffile.imwrite(
        tmp_path / "images" / "d.tif", rgb[..., :2], photometric="minisblack", planarconfig="contig"
    )
    for name in "abcd":
        save(tmp_path / "masks" / f"{name}.png", id_mask(1))
    with pytest.raises(ValueError, match=r"d\.tif' has 2 channels.*color_mode='native'"):
        _from_dir(tmp_path, shuffle=False)
    (tmp_path / "images" / "d.tif").unlink()
    (tmp_path / "masks" / "d.png").unlink()
    images, _ = _all(_from_dir(tmp_path, shuffle=False, intensity="scale"))
    for image in images:
        np.testing.assert_allclose(image, rgb / 65535.0, atol=1e-6)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".gif", ".tif"])
def test_every_format_reads_as_the_same_image(tmp_path, ext):
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[:, 16:] = (200, 200, 200)  # two flat colours survive JPEG and GIF well
    save(tmp_path / "images" / f"a{ext}", image)
    save(tmp_path / "masks" / f"a{ext}", id_mask(4))
    # A JPEG mask is not exactly 0/255 any more: it needs a threshold. (Pillow writes a
    # GIF mask with palette indices 0/1, read as they are.)
    threshold = 127 if ext == ".jpg" else None
    images, masks = next(iter(_from_dir(tmp_path, mask_threshold=threshold)))
    np.testing.assert_allclose(images.numpy()[0], image / 255.0, atol=6 / 255)
    np.testing.assert_array_equal(masks.numpy()[0, ..., 0], id_mask(4) > 0)


@pytest.mark.parametrize(
    ("stored", "color_mode", "expected"),
    [
        ("L", "rgb", [0.4, 0.4, 0.4]),
        ("RGB", "grayscale", [0.299 * 1.0 + 0.587 * 0.4]),
        ("RGB", "rgba", [1.0, 0.4, 0.0, 1.0]),
        ("RGBA", "rgb", [1.0, 0.4, 0.0]),
        ("RGBA", "rgba", [1.0, 0.4, 0.0, 0.2]),
    ],
)
def test_color_modes_convert_channels(tmp_path, stored, color_mode, expected):
    pixel = {"L": [102], "RGB": [255, 102, 0], "RGBA": [255, 102, 0, 51]}[stored]
    array = np.tile(np.array(pixel, np.uint8), (SIZE, SIZE, 1))
    save(tmp_path / "images" / "a.png", array[..., 0] if stored == "L" else array)
    save(tmp_path / "masks" / "a.png", id_mask(0))
    images, _ = next(iter(_from_dir(tmp_path, color_mode=color_mode)))
    assert images.shape[-1] == len(expected)
    np.testing.assert_allclose(images.numpy()[0, 0, 0], expected, atol=1e-3)


def test_mask_threshold_binarises_noisy_masks(tmp_path):
    mask = id_mask(9).astype(np.int16)
    mask += np.random.default_rng(0).integers(-20, 20, mask.shape, dtype=np.int16)
    mask = np.clip(mask, 0, 255).astype(np.uint8)  # like a JPEG-compressed 0/255 mask
    save(tmp_path / "images" / "a.png", id_image(9))
    save(tmp_path / "masks" / "a.png", mask)
    with pytest.raises(ValueError, match=r"is not binary.*mask_threshold"):
        _from_dir(tmp_path)
    _, masks = next(iter(_from_dir(tmp_path, mask_threshold=127)))
    np.testing.assert_array_equal(masks.numpy()[0, ..., 0], id_mask(9) > 0)


def test_gray_mask_saved_as_rgb_is_accepted(tmp_path):
    save(tmp_path / "images" / "a.png", id_image(3))
    save(tmp_path / "masks" / "a.png", np.repeat(id_mask(3)[..., None], 3, axis=-1))
    _, masks = next(iter(_from_dir(tmp_path)))
    np.testing.assert_array_equal(masks.numpy()[0, ..., 0], id_mask(3) > 0)


# --- bad input: each error names the file ------------------------------------------------


def _raises_naming(path, pattern, root, **kwargs):
    with pytest.raises(ValueError, match=re.escape(f"'{path}'") + ".*" + pattern):
        _from_dir(root, **kwargs)


def test_image_without_mask(tmp_path):
    write_id_pairs(tmp_path, 2)
    orphan = save(tmp_path / "images" / "lonely.png", id_image(0))
    _raises_naming(
        orphan, r"has no matching mask in '.*masks' \(expected a file named 'lonely'", tmp_path
    )


def test_mask_without_image(tmp_path):
    write_id_pairs(tmp_path, 2)
    orphan = save(tmp_path / "masks" / "lonely.png", id_mask(0))
    _raises_naming(orphan, r"has no matching image in '.*images'", tmp_path)


def test_mask_without_the_suffix(tmp_path):
    write_id_pairs(tmp_path, 2, mask_suffix="_mask")
    stray = save(tmp_path / "masks" / "s000.png", id_mask(0))
    _raises_naming(stray, r"does not end with mask_suffix='_mask'", tmp_path, mask_suffix="_mask")


def test_two_images_with_the_same_stem(tmp_path):
    write_id_pairs(tmp_path, 2)
    save(tmp_path / "images" / "s001.jpg", id_image(1))
    with pytest.raises(
        ValueError, match=r"Found 2 images with the same name 's001'.*s001\.jpg.*s001\.png"
    ):
        _from_dir(tmp_path)


def test_zero_byte_file(tmp_path):
    write_id_pairs(tmp_path, 2)
    empty = tmp_path / "masks" / "s001.png"
    empty.write_bytes(b"")
    _raises_naming(empty, r"is empty \(0 bytes\)", tmp_path)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_file(tmp_path, ext):
    write_id_pairs(tmp_path, 2)
    rng = np.random.default_rng(0)
    path = save(tmp_path / "images" / f"s001{ext}", rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8))
    os.remove(tmp_path / "images" / "s001.png") if ext != ".png" else None
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    _raises_naming(path, r"cannot be decoded \(truncated or corrupt\?\)", tmp_path)


def test_not_an_image(tmp_path):
    write_id_pairs(tmp_path, 2)
    path = tmp_path / "images" / "s001.png"
    path.write_bytes(b"this is text, not a PNG")
    _raises_naming(path, r"is not a readable image", tmp_path)


def test_bmp_named_jpg(tmp_path):
    write_id_pairs(tmp_path, 2)
    os.remove(tmp_path / "images" / "s001.png")
    path = tmp_path / "images" / "s001.jpg"
    Image.fromarray(id_image(1)).save(path, format="BMP")
    _raises_naming(path, r"has the extension '\.jpg' but contains BMP data", tmp_path)


def test_read_header_refuses_an_unsupported_extension(tmp_path):
    path = tmp_path / "scan.webp"
    Image.fromarray(id_image(1)).save(path, format="WEBP")
    with pytest.raises(InvalidFileError, match=r"extension '\.webp', which is not one of"):
        read_header(str(path))


def test_image_and_mask_of_different_sizes(tmp_path):
    write_id_pairs(tmp_path, 2)
    save(tmp_path / "images" / "s001.png", np.zeros((48, 64, 3), np.uint8))
    message = (
        re.escape(f"Image '{tmp_path / 'images' / 's001.png'}' and mask ")
        + re.escape(f"'{tmp_path / 'masks' / 's001.png'}' have different sizes: ")
        + re.escape(f"image (height, width) = (48, 64), mask (height, width) = ({SIZE}, {SIZE}).")
    )
    with pytest.raises(ValueError, match=message):
        _from_dir(tmp_path)


def test_empty_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match=r"No image files found in '.*images' or '.*masks'"):
        _from_dir(tmp_path)


def test_missing_folders(tmp_path):
    write_id_pairs(tmp_path / "train", 2)
    with pytest.raises(ValueError, match=r"has no 'images' subfolder.*pass subset='train'"):
        _from_dir(tmp_path)
    with pytest.raises(
        ValueError, match=r"Invalid value for argument `subset`.*found: \['train'\]"
    ):
        _from_dir(tmp_path, subset="test")
    (tmp_path / "val" / "images").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"val/images' has no matching masks folder '.*val/masks'"):
        _from_dir(tmp_path, subset="val")


def test_split_by_kind_layout(tmp_path):
    """`images/{train,val}` and `masks/{train,val}`, as many public datasets ship."""
    write_id_pairs(tmp_path / "by_subset" / "train", 3)
    for kind in ("images", "masks"):
        (tmp_path / "by_kind" / kind).mkdir(parents=True)
        os.rename(tmp_path / "by_subset" / "train" / kind, tmp_path / "by_kind" / kind / "train")
    dataset = _from_dir(tmp_path / "by_kind", subset="train")
    assert len(dataset.image_paths) == 3
    assert dataset.image_paths[0].endswith(os.path.join("images", "train", "s000.png"))
    with pytest.raises(ValueError, match=r"found: \['train'\]"):
        _from_dir(tmp_path / "by_kind", subset="val")


def test_a_flat_folder_asked_for_a_subset_suggests_validation_split(tmp_path):
    write_id_pairs(tmp_path, 4)
    with pytest.raises(ValueError, match=r"found: \[\]\).*images/<subset>.*validation_split"):
        _from_dir(tmp_path, subset="train")


def test_mask_that_is_not_binary(tmp_path):
    write_id_pairs(tmp_path, 2)
    mask = id_mask(1)
    mask[20:] = 128
    path = save(tmp_path / "masks" / "s001.png", mask)
    _raises_naming(path, r"is not binary: it holds 3 distinct values \(0, 128, 255\)", tmp_path)


def test_mask_values_beyond_num_classes(tmp_path):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[:4], mask[4:8] = 2, 7
    save(tmp_path / "images" / "a.png", id_image(0))
    path = save(tmp_path / "masks" / "a.png", mask)
    _raises_naming(
        path,
        r"holds values \(7\) that are not class ids in \[0, 2\] \(num_classes=3\)",
        tmp_path,
        num_classes=3,
    )
    binary = save(tmp_path / "masks" / "a.png", id_mask(0))
    _raises_naming(
        binary, r"looks like a binary 0/255 mask: use num_classes=1", tmp_path, num_classes=2
    )


def test_colour_mask(tmp_path):
    save(tmp_path / "images" / "a.png", id_image(0))
    colours = np.zeros((SIZE, SIZE, 3), np.uint8)
    colours[:10] = (128, 0, 0)
    path = save(tmp_path / "masks" / "a.png", colours)
    _raises_naming(path, r"is a colour image whose channels differ", tmp_path)


# --- skip mode ---------------------------------------------------------------------------


def test_skip_mode_reports_every_skipped_file(tmp_path):
    write_id_pairs(tmp_path, 8)
    bad = {
        save(tmp_path / "images" / "orphan.png", id_image(0)): "has no matching mask",
        save(tmp_path / "masks" / "lost.png", id_mask(0)): "has no matching image",
        save(tmp_path / "masks" / "s002.png", np.zeros((8, 8), np.uint8)): "different sizes",
        save(
            tmp_path / "masks" / "s003.png",
            np.arange(SIZE * SIZE).reshape(SIZE, SIZE).astype(np.uint8),
        ): "is not binary",
    }
    (tmp_path / "images" / "s004.png").write_bytes(b"")
    bad[str(tmp_path / "images" / "s004.png")] = "is empty"
    with pytest.warns(UserWarning, match=r"Skipped 5 of 10 samples found") as record:
        dataset = _from_dir(tmp_path, on_error="skip")
    message = str(record[0].message)
    skipped = dict(dataset.skipped)
    assert set(skipped) == set(bad)
    for path, reason in bad.items():
        assert reason in skipped[path] and path in skipped[path]
        assert f"{path}: " in message
    found = 10  # 8 pairs + an orphan image + an orphan mask
    assert len(dataset.image_paths) + len(dataset.skipped) == found
    assert sorted(epoch_ids(dataset)) == [0, 1, 5, 6, 7]


def test_skip_mode_with_nothing_left(tmp_path):
    save(tmp_path / "images" / "a.png", id_image(0))
    (tmp_path / "masks").mkdir()
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"all 1 samples were skipped"):
        _from_dir(tmp_path, on_error="skip")


def test_verify_false_reports_decoding_errors_during_iteration(tmp_path):
    write_id_pairs(tmp_path, 3)
    path = tmp_path / "images" / "s001.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])  # header intact, pixels cut
    dataset = _from_dir(tmp_path, verify=False, shuffle=False)  # headers only: passes
    with pytest.raises(tf.errors.OpError, match=re.escape(f"File '{path}' cannot be decoded")):
        list(dataset)


# --- order, seeds, split -------------------------------------------------------------------


def test_every_pair_exactly_once_per_epoch_and_reshuffled(tmp_path):
    write_id_pairs(tmp_path, 22)
    dataset = _from_dir(tmp_path, batch_size=5, seed=3)
    epochs = [epoch_ids(dataset) for _ in range(3)]
    for ids in epochs:
        assert sorted(ids) == list(range(22))
    assert epochs[0] != epochs[1] != epochs[2]


def test_same_seed_same_batches_different_seed_different_order(tmp_path):
    write_id_pairs(tmp_path, 16)

    def run(seed, **kwargs):
        dataset = _from_dir(tmp_path, seed=seed, augment=True, **kwargs)
        return [(i.numpy(), m.numpy()) for _ in range(2) for i, m in dataset]

    first, second, other = run(1), run(1), run(2)
    for (i1, m1), (i2, m2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(m1, m2)
    assert epoch_ids(_from_dir(tmp_path, seed=1)) != epoch_ids(_from_dir(tmp_path, seed=2))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))
    cached = run(1, cache=True)  # caching does not change what comes out
    for (i1, m1), (i2, m2) in zip(first, cached, strict=False):
        assert i1.shape == i2.shape and m1.shape == m2.shape


def test_validation_split_is_disjoint_and_covers_every_pair(tmp_path):
    write_id_pairs(tmp_path, 23)
    kwargs = {"validation_split": 0.3, "seed": 5}
    train = _from_dir(tmp_path, subset="training", **kwargs)
    val = _from_dir(tmp_path, subset="validation", shuffle=False, **kwargs)
    train_ids, val_ids = epoch_ids(train), epoch_ids(val)
    assert len(val_ids) == int(0.3 * 23) == 6
    assert set(train_ids).isdisjoint(val_ids)
    assert sorted(train_ids + val_ids) == list(range(23))
    both = _from_dir(tmp_path, subset="both", **kwargs)
    assert sorted(epoch_ids(both[0])) == sorted(train_ids)
    assert sorted(epoch_ids(both[1])) == sorted(val_ids)
    other = _from_dir(tmp_path, subset="validation", validation_split=0.3, seed=6)
    assert sorted(epoch_ids(other)) != sorted(val_ids)


def test_verbose_prints_what_was_found_like_keras(tmp_path, capsys):
    write_id_pairs(tmp_path, 10)
    _from_dir(tmp_path, subset="both", validation_split=0.2)
    assert capsys.readouterr().out == (
        f"Found 10 image/mask pairs in '{tmp_path}'.\n"
        "Using 8 pairs for training.\nUsing 2 pairs for validation.\n"
    )
    _from_dir(tmp_path, verbose=False)
    assert capsys.readouterr().out == ""


def test_validation_split_argument_errors(tmp_path):
    write_id_pairs(tmp_path, 4)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `seed`\. Expected an int when validation_split is set",
    ):
        _from_dir(tmp_path, subset="training", validation_split=0.5, seed=None)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `validation_split`. Expected a float in (0, 1) when "
            "subset='training'. Received: validation_split=None"
        ),
    ):
        _from_dir(tmp_path, subset="training")
    with pytest.raises(
        ValueError,
        match=(
            r"Invalid value for argument `subset`\. Expected one of 'training', "
            r"'validation', 'both' when validation_split is set"
        ),
    ):
        _from_dir(tmp_path, validation_split=0.5)
    with pytest.raises(ValueError, match=r"leaves subset 'validation' empty"):
        _from_dir(tmp_path, subset="validation", validation_split=0.2)


# --- cache ---------------------------------------------------------------------------------


def _counting_reads(monkeypatch):
    calls = []
    read_image = _pipeline.read_image

    def counted(path, color_mode="rgb", intensity="auto"):
        calls.append(path)
        return read_image(path, color_mode, intensity)

    monkeypatch.setattr(_pipeline, "read_image", counted)
    return calls


def test_cache_decodes_each_file_once(tmp_path, monkeypatch):
    write_id_pairs(tmp_path, 10)
    calls = _counting_reads(monkeypatch)
    cached = _from_dir(tmp_path, cache=True, verify=False)
    first = epoch_ids(cached)
    second = epoch_ids(cached)
    assert len(calls) == 10 and sorted(second) == list(range(10)) and first != second
    calls.clear()
    uncached = _from_dir(tmp_path, verify=False)
    epoch_ids(uncached), epoch_ids(uncached)
    assert len(calls) == 20


def test_file_cache_is_written_and_reused(tmp_path, monkeypatch):
    write_id_pairs(tmp_path / "data", 6)
    cache = tmp_path / "cache" / "pairs"
    cache.parent.mkdir()
    calls = _counting_reads(monkeypatch)
    dataset = _from_dir(tmp_path / "data", cache=str(cache), verify=False)
    assert sorted(epoch_ids(dataset)) == list(range(6))
    assert any(name.startswith("pairs") for name in os.listdir(cache.parent))
    again = _from_dir(tmp_path / "data", cache=str(cache), verify=False)
    assert sorted(epoch_ids(again)) == list(range(6))
    assert len(calls) == 6  # the second dataset read the cache file, not the images


def test_cached_epochs_are_faster_than_the_first(tmp_path):
    # Decoding 256x256 PNGs dominates the first epoch; later epochs read memory. The
    # fastest of three cached epochs is compared, so one stall of this shared machine
    # cannot fail the test; the decode count above is the exact check.
    rng = np.random.default_rng(0)
    for index in range(40):
        save(tmp_path / "images" / f"{index}.png", rng.integers(0, 256, (256, 256, 3), np.uint8))
        save(tmp_path / "masks" / f"{index}.png", id_mask(index % 30, size=256))
    dataset = _from_dir(tmp_path, image_size=(256, 256), batch_size=8, cache=True, verify=False)

    def epoch_seconds():
        start = time.perf_counter()
        for _ in dataset:
            pass
        return time.perf_counter() - start

    first = epoch_seconds()
    later = min(epoch_seconds() for _ in range(3))
    assert later < first, (first, later)


# --- from_arrays ----------------------------------------------------------------------------


def test_from_arrays_scales_and_pairs():
    images = np.stack([id_image(i) for i in range(7)])
    masks = np.stack([id_mask(i) for i in range(7)])
    dataset = SegmentationDataset.from_arrays(images, masks, batch_size=3, seed=0)
    assert sorted(epoch_ids(dataset)) == list(range(7))
    batch_images, batch_masks = next(iter(dataset))
    assert batch_images.dtype == tf.float32 and batch_masks.shape == (3, SIZE, SIZE, 1)
    sixteen = SegmentationDataset.from_arrays(
        np.full((2, 8, 8), 65535, np.uint16),
        np.ones((2, 8, 8, 1), bool),
        shuffle=False,
        intensity="scale",
    )
    images16, masks16 = next(iter(sixteen))
    assert images16.shape == (2, 8, 8, 1) and float(tf.reduce_min(images16)) == 1.0
    assert float(tf.reduce_min(masks16)) == 1.0


def test_from_arrays_resizes_and_augments():
    images = np.random.default_rng(0).random((4, 40, 40, 3)).astype("float32")
    masks = (images[..., 0] > 0.5).astype("int64")
    dataset = SegmentationDataset.from_arrays(
        images, masks, image_size=(16, 16), num_classes=2, augment=True, seed=0
    )
    batch_images, batch_masks = next(iter(dataset))
    assert batch_images.shape == (4, 16, 16, 3) and batch_masks.dtype == tf.int32
    assert set(np.unique(batch_masks.numpy())) <= {0, 1}


def test_from_arrays_errors():
    images = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "expected masks of shape (3, 8, 8) (or (3, 8, 8, 1)) for images of shape (3, 8, "
            "8, 3). Received: masks.shape=(3, 8, 9)"
        ),
    ):
        SegmentationDataset.from_arrays(images, np.zeros((3, 8, 9), np.uint8))
    masks = np.zeros((3, 8, 8), np.uint8)
    masks[2, 0, :3] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"Mask 'masks\[2\]' is not binary"):
        SegmentationDataset.from_arrays(images, masks)
    with pytest.raises(
        ValueError, match=r"Mask 'masks\[2\]' holds values \(3\) that are not class ids"
    ):
        SegmentationDataset.from_arrays(images, masks, num_classes=3)
    with pytest.raises(
        ValueError, match=r"Invalid value for argument `images`\. Expected an array"
    ):
        SegmentationDataset.from_arrays(np.zeros((3, 8)), masks)


# --- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"image_size": (32,)},
            (
                "Invalid value for argument `image_size`. Expected a tuple `(height, width)` of "
                "positive ints or None. Received: image_size=(32,)"
            ),
        ),
        (
            {"batch_size": 0},
            (
                "Invalid value for argument `batch_size`. Expected a positive int or None. "
                "Received: batch_size=0"
            ),
        ),
        (
            {"color_mode": "rgbx"},
            (
                "Invalid value for argument `color_mode`. Expected one of 'grayscale', 'rgb', "
                "'rgba', 'native'. Received: color_mode='rgbx'"
            ),
        ),
        (
            {"num_classes": 0},
            (
                "Invalid value for argument `num_classes`. Expected an int >= 1 (1 for binary "
                "masks). Received: num_classes=0"
            ),
        ),
        (
            {"num_classes": 3, "mask_threshold": 0.5},
            "Invalid value for argument `mask_threshold`. Expected None when num_classes > 1",
        ),
        (
            {"ignore_class": 255},
            (
                "Invalid value for argument `ignore_class`. Expected None when num_classes=1. "
                "Received: ignore_class=255"
            ),
        ),
        (
            {"intensity": "robust"},
            (
                "Invalid value for argument `intensity`. Expected one of ('auto', 'scale', "
                "'percentile', 'minmax', 'standardize', None) or a dict"
            ),
        ),
        ({"interpolation": "cubic"}, "Invalid value for argument `interpolation`"),
        (
            {"crop_to_aspect_ratio": True, "pad_to_aspect_ratio": True},
            "Only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be True",
        ),
        (
            {"on_error": "ignore"},
            (
                "Invalid value for argument `on_error`. Expected one of 'raise', 'skip'. "
                "Received: on_error='ignore'"
            ),
        ),
        ({"augment": "yes"}, "Invalid value for argument `augment`"),
        (
            {"seed": 1.5},
            "Invalid value for argument `seed`. Expected an int or None. Received: seed=1.5",
        ),
    ],
)
def test_argument_errors(tmp_path, kwargs, message):
    write_id_pairs(tmp_path, 2)
    with pytest.raises(ValueError, match=re.escape(message)):
        _from_dir(tmp_path, **kwargs)


def test_missing_directory_and_instantiation(tmp_path):
    with pytest.raises(
        ValueError, match=r"Invalid value for argument `directory`\. Expected an existing folder"
    ):
        _from_dir(tmp_path / "nope")
    with pytest.raises(TypeError, match=r"SegmentationDataset is not instantiated"):
        SegmentationDataset()


# --- training -------------------------------------------------------------------------------


def _tiny_model(num_classes=1):
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    activation = "sigmoid" if num_classes == 1 else "softmax"
    outputs = keras.layers.Conv2D(num_classes, 1, activation=activation)(x)
    return keras.Model(inputs, outputs)


def test_model_fit_accepts_the_dataset(tmp_path):
    write_id_pairs(tmp_path / "train", 6)
    write_id_pairs(tmp_path / "val", 2)
    train = _from_dir(tmp_path, subset="train", augment=True, cache=True)
    val = _from_dir(tmp_path, subset="val", shuffle=False)
    model = _tiny_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["val_loss"]))


_BACKEND_SCRIPT = """
import numpy as np, keras
from keras_unet_seg.data import SegmentationDataset
from keras_unet_seg.losses import DiceLoss
assert keras.backend.backend() == {backend!r}
ds = SegmentationDataset.from_directory(
    {root!r}, image_size=(32, 32), batch_size=2, seed=0, augment=True, num_classes=2
)
inputs = keras.Input((32, 32, 3))
outputs = keras.layers.Conv2D(2, 1, activation="softmax")(inputs)
model = keras.Model(inputs, outputs)
# DiceLoss reads the int32 class-id masks; (Keras' own sparse categorical crossentropy
# fails on 4-D inputs under torch 2.13 with "grad_input must be contiguous", data or not.)
model.compile(optimizer="adam", loss=DiceLoss())
history = model.fit(ds, epochs=1, verbose=0)
assert np.isfinite(history.history["loss"][-1])
print("OK")
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_model_fit_on_other_backends(tmp_path, backend):
    pytest.importorskip(backend)
    for index in range(4):
        save(tmp_path / "images" / f"{index}.png", id_image(index))
        save(tmp_path / "masks" / f"{index}.png", (id_mask(index) > 0).astype(np.uint8))
    script = _BACKEND_SCRIPT.format(backend=backend, root=str(tmp_path))
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]
