"""make_synthetic_dataset: layout, determinism, and that a small UNet learns it."""

import os
import re
import time

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet_seg.data import (
    SegmentationDataset,
    make_synthetic_dataset,
    make_synthetic_volumes,
    read_volume,
)


def _read(root, split, kind, index):
    return np.asarray(Image.open(os.path.join(root, split, kind, f"{index:05d}.png")))


def test_layout_and_contents(tmp_path):
    root = make_synthetic_dataset(tmp_path, num_train=5, num_val=2, image_size=(48, 40), seed=1)
    assert root == str(tmp_path)
    for split, count in (("train", 5), ("val", 2)):
        for kind in ("images", "masks"):
            names = sorted(os.listdir(tmp_path / split / kind))
            assert names == [f"{i:05d}.png" for i in range(count)]
    image, mask = _read(root, "train", "images", 0), _read(root, "train", "masks", 0)
    assert image.shape == (48, 40, 3) and image.dtype == np.uint8
    assert mask.shape == (48, 40) and set(np.unique(mask)) <= {0, 255}
    foreground = np.mean([_read(root, "train", "masks", i).mean() / 255 for i in range(5)])
    assert 0.05 < foreground < 0.7
    dataset = SegmentationDataset.from_directory(root, subset="train", image_size=(48, 40))
    _, masks = next(iter(dataset))
    assert set(np.unique(masks.numpy())) == {0.0, 1.0}


def test_same_seed_same_files_different_seed_different_files(tmp_path):
    a = make_synthetic_dataset(tmp_path / "a", 3, 1, (32, 32), seed=4)
    b = make_synthetic_dataset(tmp_path / "b", 4, 1, (32, 32), seed=4)
    c = make_synthetic_dataset(tmp_path / "c", 3, 1, (32, 32), seed=5)
    for index in range(3):
        for kind in ("images", "masks"):
            np.testing.assert_array_equal(
                _read(a, "train", kind, index), _read(b, "train", kind, index)
            )
    assert not np.array_equal(_read(a, "train", "images", 0), _read(c, "train", "images", 0))
    assert not np.array_equal(_read(a, "train", "images", 0), _read(a, "val", "images", 0))


def test_refuses_to_overwrite_unless_asked(tmp_path):
    make_synthetic_dataset(tmp_path, 3, 1, (32, 32), seed=0)
    with pytest.raises(ValueError, match=r"already holds 8 files .* overwrite=True"):
        make_synthetic_dataset(tmp_path, 2, 1, (32, 32), seed=0)
    (tmp_path / "train" / "images" / "keep.txt").write_text("not ours")
    make_synthetic_dataset(tmp_path, 2, 1, (32, 32), seed=0, overwrite=True)
    assert sorted(os.listdir(tmp_path / "train" / "images")) == [
        "00000.png",
        "00001.png",
        "keep.txt",
    ]
    # A file it did not write where it writes (a user's image) is never replaced.
    mine = tmp_path / "train" / "masks" / "00001.png"
    mine.write_bytes(b"the user's mask")
    with pytest.raises(
        ValueError, match=r"holds files that make_synthetic_dataset did not write where"
    ):
        make_synthetic_dataset(tmp_path, 2, 1, (32, 32), seed=0, overwrite=True)
    assert mine.read_bytes() == b"the user's mask"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"num_train": 0},
            (
                "Invalid value for argument `num_train`. Expected a positive integer. "
                "Received: num_train=0"
            ),
        ),
        (
            {"num_val": -1},
            "Invalid value for argument `num_val`. Expected an integer >= 0. Received: num_val=-1",
        ),
        (
            {"image_size": (8, 8)},
            (
                "Invalid value for argument `image_size`. Expected a tuple `(height, width)` of "
                "ints >= 16. Received: image_size=(8, 8)"
            ),
        ),
        (
            {"seed": None},
            "Invalid value for argument `seed`. Expected an integer >= 0. Received: seed=None",
        ),
        (
            {"max_shapes": 0},
            (
                "Invalid value for argument `max_shapes`. Expected a positive integer. "
                "Received: max_shapes=0"
            ),
        ),
    ],
)
def test_argument_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_synthetic_dataset(tmp_path, **kwargs)


def test_writing_is_fast(tmp_path):
    start = time.perf_counter()
    make_synthetic_dataset(tmp_path, num_train=64, num_val=16, image_size=(64, 64), seed=0)
    assert time.perf_counter() - start < 10  # about 0.2 s here; generous for a busy CI


@pytest.mark.slow
def test_small_unet_reaches_validation_dice_0_9(tmp_path):
    from keras_unet_seg.losses import BCEDiceLoss
    from keras_unet_seg.metrics import DiceCoefficient
    from keras_unet_seg.models.unet import UNet

    start = time.perf_counter()
    root = make_synthetic_dataset(tmp_path, num_train=64, num_val=16, image_size=(64, 64), seed=0)
    common = {"image_size": (64, 64), "seed": 0, "cache": True}
    train = SegmentationDataset.from_directory(
        root, "train", batch_size=8, augment={"rotation": 0.0, "zoom": 0.0}, **common
    )
    val = SegmentationDataset.from_directory(root, "val", batch_size=16, shuffle=False, **common)
    keras.utils.set_random_seed(0)
    model = UNet(num_classes=1, base_filters=8, depth=3)
    model.build((None, None, None, 3))
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=BCEDiceLoss(), metrics=[DiceCoefficient()]
    )
    model.optimizer.build(model.trainable_variables)  # one trace of the step, not two
    # Validation Dice 0.46, 0.93, 0.95, 0.96 over the first four epochs here (0.97 at 8).
    history = model.fit(train, validation_data=val, epochs=4, verbose=0)
    seconds = time.perf_counter() - start
    best = max(history.history["val_dice_coefficient"])
    # Dice computed by hand on the validation set, as a check of the metric's name.
    masks = np.concatenate([m.numpy() for _, m in val])
    predicted = model.predict(val, verbose=0) >= 0.5
    by_hand = 2 * np.sum(predicted * masks) / (np.sum(predicted) + np.sum(masks))
    print(f"validation Dice {by_hand:.3f} (best epoch {best:.3f}) in {seconds:.1f} s")
    assert by_hand >= 0.9
    assert seconds < 120


# --- volumes -----------------------------------------------------------------------------


def test_synthetic_volumes_layout_spacing_and_contents(tmp_path):
    root = make_synthetic_volumes(tmp_path, num_train=2, num_val=1, shape=(12, 20, 16), seed=0)
    names = {
        (split, kind): sorted(os.listdir(tmp_path / split / kind))
        for split in ("train", "val")
        for kind in ("images", "masks")
    }
    assert names[("train", "images")] == names[("train", "masks")]
    assert names[("train", "images")] == ["case_000.nii.gz", "case_001.nii.gz"]
    assert names[("val", "masks")] == ["case_000.nii.gz"]
    image = read_volume(os.path.join(root, "train", "images", "case_000.nii.gz"))
    mask = read_volume(os.path.join(root, "train", "masks", "case_000.nii.gz"))
    assert image.array.shape == mask.array.shape == (12, 20, 16, 1)
    assert image.spacing == mask.spacing == (2.0, 1.0, 1.0)
    assert image.header.get_sform(coded=True)[1] == image.header.get_qform(coded=True)[1] == 1
    assert set(np.unique(mask.array).tolist()) == {0, 1}
    inside, outside = image.array[mask.array == 1], image.array[mask.array == 0]
    assert inside.mean() > outside.mean() + 150  # bright ellipsoids in noise


def test_synthetic_volumes_are_a_function_of_the_seed_and_never_overwritten(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        make_synthetic_volumes(tmp_path / name, num_train=1, num_val=0, seed=seed)
    path = os.path.join("train", "images", "case_000.nii.gz")
    a, b, c = ((tmp_path / name / path).read_bytes() for name in "abc")
    assert a == b and a != c
    with pytest.raises(ValueError, match="already holds"):
        make_synthetic_volumes(tmp_path / "a", num_train=1, num_val=0, seed=1)
    make_synthetic_volumes(tmp_path / "a", num_train=1, num_val=0, seed=2, overwrite=True)
    assert (tmp_path / "a" / path).read_bytes() == c


@pytest.mark.slow
def test_small_3d_unet_reaches_validation_dice_0_9(tmp_path):
    from keras_unet_seg.losses import BCEDiceLoss
    from keras_unet_seg.models.unet import UNet

    shape = (16, 24, 24)
    root = make_synthetic_volumes(tmp_path, num_train=8, num_val=2, shape=shape, seed=0)
    common = {"patch_size": shape, "seed": 0, "cache": True, "verbose": False}
    train = SegmentationDataset.from_volumes(
        root, "train", batch_size=4, patches_per_volume=4, augment=None, **common
    )
    val = SegmentationDataset.from_volumes(
        root, "val", batch_size=2, sampling="grid", shuffle=False, **common
    )
    keras.utils.set_random_seed(0)
    model = UNet(num_classes=1, base_filters=8, depth=2)
    model.build((None, None, None, None, 1))
    model.compile(optimizer=keras.optimizers.Adam(6e-3), loss=BCEDiceLoss())
    model.optimizer.build(model.trainable_variables)  # one trace of the step, not two
    assert int(train.cardinality()) == 8  # 8 volumes x 4 patches in batches of 4
    model.fit(train, epochs=8, verbose=0)  # Dice 0.962 here
    masks = np.concatenate([m.numpy() for _, m in val])
    predicted = model.predict(val, verbose=0) >= 0.5
    dice = 2 * np.sum(predicted * masks) / (np.sum(predicted) + np.sum(masks))
    print(f"validation Dice of the 3D U-Net: {dice:.3f}")
    assert dice >= 0.9
