"""Folder layouts, listing and pairing files, the validation split (`data/_layout.py`)."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf
from _data_files import (
    SIZE,
    all_pairs,
    epoch_ids,
    from_dir,
    id_image,
    id_mask,
    raises_naming,
    save,
    write_id_pairs,
)


def test_split_layout_reads_the_named_subset(tmp_path):
    write_id_pairs(tmp_path / "train", 6)
    write_id_pairs(tmp_path / "val", 3)
    train = from_dir(tmp_path, subset="train")
    val = from_dir(tmp_path, subset="val", shuffle=False)
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
    dataset = from_dir(tmp_path, shuffle=False, batch_size=None)
    image, mask = next(iter(dataset))
    assert image.shape == (SIZE, SIZE, 3) and mask.shape == (SIZE, SIZE, 1)
    assert epoch_ids(dataset.batch(5)) == list(range(5))


def test_pairs_by_stem_across_extensions_with_a_mask_suffix(tmp_path):
    write_id_pairs(tmp_path, 4, image_ext=".jpg", mask_ext=".png", mask_suffix="_mask")
    dataset = from_dir(tmp_path, mask_suffix="_mask", shuffle=False)
    images, masks = all_pairs(dataset)
    # JPEG is lossy, but a uniform image decodes to within a grey level or two.
    assert epoch_ids([(images, masks)]) == [0, 1, 2, 3]


def test_subfolders_pair_by_relative_path(tmp_path):
    save(tmp_path / "images" / "a" / "x.png", id_image(1))
    save(tmp_path / "images" / "b" / "x.png", id_image(2))
    save(tmp_path / "masks" / "a" / "x.png", id_mask(1))
    save(tmp_path / "masks" / "b" / "x.png", id_mask(2))
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    (tmp_path / "images" / ".DS_Store").write_bytes(b"\0")
    dataset = from_dir(tmp_path, shuffle=False)
    assert epoch_ids(dataset) == [1, 2]


def test_image_without_mask(tmp_path):
    write_id_pairs(tmp_path, 2)
    orphan = save(tmp_path / "images" / "lonely.png", id_image(0))
    raises_naming(
        orphan, r"has no matching mask in '.*masks' \(expected a file named 'lonely'", tmp_path
    )


def test_mask_without_image(tmp_path):
    write_id_pairs(tmp_path, 2)
    orphan = save(tmp_path / "masks" / "lonely.png", id_mask(0))
    raises_naming(orphan, r"has no matching image in '.*images'", tmp_path)


def test_mask_without_the_suffix(tmp_path):
    write_id_pairs(tmp_path, 2, mask_suffix="_mask")
    stray = save(tmp_path / "masks" / "s000.png", id_mask(0))
    raises_naming(stray, r"does not end with mask_suffix='_mask'", tmp_path, mask_suffix="_mask")


def test_two_images_with_the_same_stem(tmp_path):
    write_id_pairs(tmp_path, 2)
    save(tmp_path / "images" / "s001.jpg", id_image(1))
    with pytest.raises(
        ValueError, match=r"Found 2 images with the same name 's001'.*s001\.jpg.*s001\.png"
    ):
        from_dir(tmp_path)


def test_empty_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match=r"No image files found in '.*images' or '.*masks'"):
        from_dir(tmp_path)


def test_missing_folders(tmp_path):
    write_id_pairs(tmp_path / "train", 2)
    with pytest.raises(ValueError, match=r"has no 'images' subfolder.*pass subset='train'"):
        from_dir(tmp_path)
    with pytest.raises(
        ValueError, match=r"Invalid value for argument `subset`.*found: \['train'\]"
    ):
        from_dir(tmp_path, subset="test")
    (tmp_path / "val" / "images").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"val/images' has no matching masks folder '.*val/masks'"):
        from_dir(tmp_path, subset="val")


def test_split_by_kind_layout(tmp_path):
    """`images/{train,val}` and `masks/{train,val}`, as many public datasets ship."""
    write_id_pairs(tmp_path / "by_subset" / "train", 3)
    for kind in ("images", "masks"):
        (tmp_path / "by_kind" / kind).mkdir(parents=True)
        os.rename(tmp_path / "by_subset" / "train" / kind, tmp_path / "by_kind" / kind / "train")
    dataset = from_dir(tmp_path / "by_kind", subset="train")
    assert len(dataset.image_paths) == 3
    assert dataset.image_paths[0].endswith(os.path.join("images", "train", "s000.png"))
    with pytest.raises(ValueError, match=r"found: \['train'\]"):
        from_dir(tmp_path / "by_kind", subset="val")


def test_a_flat_folder_asked_for_a_subset_suggests_validation_split(tmp_path):
    write_id_pairs(tmp_path, 4)
    with pytest.raises(ValueError, match=r"found: \[\]\).*images/<subset>.*validation_split"):
        from_dir(tmp_path, subset="train")


def test_validation_split_is_disjoint_and_covers_every_pair(tmp_path):
    write_id_pairs(tmp_path, 23)
    kwargs = {"validation_split": 0.3, "seed": 5}
    train = from_dir(tmp_path, subset="training", **kwargs)
    val = from_dir(tmp_path, subset="validation", shuffle=False, **kwargs)
    train_ids, val_ids = epoch_ids(train), epoch_ids(val)
    assert len(val_ids) == int(0.3 * 23) == 6
    assert set(train_ids).isdisjoint(val_ids)
    assert sorted(train_ids + val_ids) == list(range(23))
    both = from_dir(tmp_path, subset="both", **kwargs)
    assert sorted(epoch_ids(both[0])) == sorted(train_ids)
    assert sorted(epoch_ids(both[1])) == sorted(val_ids)
    other = from_dir(tmp_path, subset="validation", validation_split=0.3, seed=6)
    assert sorted(epoch_ids(other)) != sorted(val_ids)


def test_verbose_prints_what_was_found_like_keras(tmp_path, capsys):
    write_id_pairs(tmp_path, 10)
    from_dir(tmp_path, subset="both", validation_split=0.2)
    assert capsys.readouterr().out == (
        f"Found 10 image/mask pairs in '{tmp_path}'.\n"
        "Using 8 pairs for training.\nUsing 2 pairs for validation.\n"
    )
    from_dir(tmp_path, verbose=False)
    assert capsys.readouterr().out == ""


def test_validation_split_argument_errors(tmp_path):
    write_id_pairs(tmp_path, 4)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `seed`\. Expected an int when validation_split is set",
    ):
        from_dir(tmp_path, subset="training", validation_split=0.5, seed=None)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for argument `validation_split`. Expected a float in (0, 1) when "
            "subset='training'. Received: validation_split=None"
        ),
    ):
        from_dir(tmp_path, subset="training")
    with pytest.raises(
        ValueError,
        match=(
            r"Invalid value for argument `subset`\. Expected one of 'training', "
            r"'validation', 'both' when validation_split is set"
        ),
    ):
        from_dir(tmp_path, validation_split=0.5)
    with pytest.raises(ValueError, match=r"leaves subset 'validation' empty"):
        from_dir(tmp_path, subset="validation", validation_split=0.2)
