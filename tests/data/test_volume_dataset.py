"""`SegmentationDataset.from_volumes`: patches, foreground oversampling, 3D augmentation."""

import os

import numpy as np
import pytest
import tifffile

from keras_unet_seg._errors import DataError
from keras_unet_seg.data import InvalidFileError, SegmentationDataset, _volume_pipeline

NUM_LABELS = 7


def _write(root, name, image, mask, subset="train"):
    for kind, array in (("images", image), ("masks", mask)):
        os.makedirs(root / subset / kind, exist_ok=True)
        tifffile.imwrite(root / subset / kind / f"{name}.tif", array, photometric="minisblack")


def _coded(shape):
    """A float32 volume whose value is the voxel's position, and labels of that position."""
    z, y, x = np.indices(shape)
    image = (z * 10_000 + y * 100 + x).astype(np.float32)
    return image, _label_of(z, y, x).astype(np.uint8)


def _label_of(z, y, x):
    return (x + 2 * y + 3 * z) % NUM_LABELS


def _arrays(dataset):
    return [(image.numpy(), mask.numpy()) for image, mask in dataset]


def test_patches_have_the_patch_shape_padded_where_the_volume_is_smaller(tmp_path):
    rng = np.random.default_rng(0)
    _write(tmp_path, "odd", rng.random((23, 50, 37), np.float32), np.ones((23, 50, 37), np.uint8))
    _write(tmp_path, "small", rng.random((8, 10, 12), np.float32), np.ones((8, 10, 12), np.uint8))
    dataset = SegmentationDataset.from_volumes(
        tmp_path, "train", patch_size=(16, 16, 16), batch_size=None, seed=0, verbose=False
    )
    patches = _arrays(dataset)
    assert len(patches) == 2
    for image, mask in patches:
        assert image.shape == (16, 16, 16, 1) and image.dtype == np.float32
        assert mask.shape == (16, 16, 16, 1) and mask.dtype == np.float32
    # The small volume's mask is all foreground: its padding (background) fills the rest.
    assert sorted(float(mask.mean()) for _, mask in patches) == [8 * 10 * 12 / 16**3, 1.0]
    assert dataset.volume_shapes == [(23, 50, 37), (8, 10, 12)]
    assert dataset.spacings == [(1.0, 1.0, 1.0)] * 2


@pytest.mark.parametrize("fraction", [0.0, 1 / 3, 0.5])
def test_oversampling_centres_the_requested_fraction_on_foreground(tmp_path, fraction):
    mask = np.zeros((40, 40, 40), np.uint8)
    mask[30:32, 5:7, 20:22] = 1  # 8 labelled voxels of 64,000
    _write(tmp_path, "sparse", np.zeros(mask.shape, np.float32), mask)
    dataset = SegmentationDataset.from_volumes(
        tmp_path,
        "train",
        patch_size=(8, 8, 8),
        batch_size=None,
        patches_per_volume=30,
        foreground_fraction=fraction,
        seed=3,
        verbose=False,
    )
    on_foreground = [bool(mask.any()) for _, mask in _arrays(dataset)]
    forced = int(30 * fraction)
    assert forced <= sum(on_foreground) <= forced + 2  # a random patch rarely meets it
    if fraction == 1 / 3:
        assert all(on_foreground[2::3])  # spread evenly: each batch of 3 has one


def test_augmentation_moves_mask_and_image_together(tmp_path):
    image, labels = _coded((12, 16, 16))
    _write(tmp_path, "coded", image, labels)
    dataset = SegmentationDataset.from_volumes(
        tmp_path,
        "train",
        patch_size=(8, 12, 12),
        batch_size=None,
        patches_per_volume=12,
        num_classes=NUM_LABELS,
        intensity=None,
        seed=1,
        verbose=False,
        augment={"scale": 0.0, "shift": 0.0, "noise": 0.0},
    )
    changed = 0
    for patch, mask in _arrays(dataset):
        code = np.round(patch[..., 0]).astype(np.int64)
        z, y, x = code // 10_000, code // 100 % 100, code % 100
        assert np.array_equal(mask[..., 0], _label_of(z, y, x))
        changed += not np.all(np.diff(x, axis=2) == 1)  # flipped or turned in plane
    assert changed > 0


def test_intensity_augmentation_changes_the_image_only(tmp_path):
    image, labels = _coded((8, 8, 8))
    _write(tmp_path, "coded", image, labels)
    options = dict(patch_size=(8, 8, 8), batch_size=None, num_classes=NUM_LABELS, seed=2)
    plain = SegmentationDataset.from_volumes(tmp_path, "train", verbose=False, **options)
    noisy = SegmentationDataset.from_volumes(
        tmp_path, "train", verbose=False, augment={"flip": False, "rotate90": False}, **options
    )
    (image_a, mask_a), (image_b, mask_b) = _arrays(plain) + _arrays(noisy)
    assert np.array_equal(mask_a, mask_b)
    assert not np.allclose(image_a, image_b)
    assert np.corrcoef(image_a.ravel(), image_b.ravel())[0, 1] > 0.9


def test_same_seed_same_batches_and_each_epoch_new_patches(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        mask = (rng.random((16, 16, 16)) > 0.9).astype(np.uint8)
        _write(tmp_path, name, rng.random((16, 16, 16), np.float32), mask)
    options = dict(patch_size=(8, 8, 8), batch_size=2, patches_per_volume=2, augment=True)

    def make(seed):
        return SegmentationDataset.from_volumes(
            tmp_path, "train", seed=seed, verbose=False, **options
        )

    first = make(5)
    epoch_1, epoch_2 = _arrays(first), _arrays(first)
    assert int(first.cardinality()) == len(epoch_1) == 3  # 3 volumes x 2 patches, batches of 2
    again = make(5)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(epoch_1, _arrays(again), strict=True))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(epoch_1, epoch_2, strict=True))
    other = _arrays(make(6))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(epoch_1, other, strict=True))


def test_grid_sampling_covers_each_volume_the_same_every_epoch(tmp_path):
    image, labels = _coded((10, 23, 17))
    _write(tmp_path, "coded", image, labels, subset="val")
    dataset = SegmentationDataset.from_volumes(
        tmp_path,
        "val",
        patch_size=(8, 8, 8),
        batch_size=None,
        num_classes=NUM_LABELS,
        intensity=None,
        sampling="grid",
        augment=True,
        verbose=False,
    )
    patches = _arrays(dataset)
    assert len(patches) == 2 * 3 * 3  # ceil(10 / 8) * ceil(23 / 8) * ceil(17 / 8)
    assert int(dataset.cardinality()) == len(patches)  # Keras knows an epoch's steps
    seen = np.unique(np.concatenate([np.round(p[..., 0]).ravel() for p, _ in patches]))
    assert np.array_equal(seen, np.unique(image))  # every voxel, none augmented away
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(patches, _arrays(dataset), strict=True))


def test_ct_window_and_label_masks(tmp_path):
    ct = np.full((8, 8, 8), -1000, np.int16)
    ct[2:6, 2:6, 2:6] = 40
    labels = np.zeros((8, 8, 8), np.uint16)
    labels[2:4, 2:6, 2:6], labels[4:6, 2:6, 2:6] = 1, 2  # two objects of a label image
    _write(tmp_path, "ct", ct, labels)
    dataset = SegmentationDataset.from_volumes(
        tmp_path,
        "train",
        patch_size=(8, 8, 8),
        batch_size=None,
        verbose=False,
        intensity={"mode": "window", "center": 40, "width": 400},
    )
    ((image, mask),) = _arrays(dataset)
    assert set(np.unique(image).tolist()) == {0.0, 0.5}
    assert np.array_equal(mask[..., 0], (labels > 0).astype(np.float32))


def test_bad_pairs_are_named_or_skipped(tmp_path):
    _write(tmp_path, "good", np.zeros((8, 8, 8), np.float32), np.ones((8, 8, 8), np.uint8))
    _write(tmp_path, "sizes", np.zeros((8, 8, 8), np.float32), np.ones((8, 8, 9), np.uint8))
    (tmp_path / "train" / "images" / "lonely.nii.gz").write_bytes(b"")
    with pytest.raises(InvalidFileError, match=r"sizes\.tif") as caught:
        SegmentationDataset.from_volumes(tmp_path, "train", patch_size=(8, 8, 8), verbose=False)
    assert "lonely.nii.gz" in str(caught.value)
    with pytest.warns(UserWarning, match="Skipped 2 of 3"):
        dataset = SegmentationDataset.from_volumes(
            tmp_path, "train", patch_size=(8, 8, 8), on_error="skip", verbose=False
        )
    assert [os.path.basename(p) for p in dataset.image_paths] == ["good.tif"]
    for kind in ("images", "masks"):
        os.makedirs(tmp_path / "val" / kind)
    with pytest.raises(DataError, match="No volume files"):
        SegmentationDataset.from_volumes(tmp_path, "val", patch_size=(8, 8, 8))


def test_from_directory_points_a_folder_of_volumes_to_from_volumes(tmp_path):
    for kind in ("images", "masks"):
        os.makedirs(tmp_path / "train" / kind)
        (tmp_path / "train" / kind / "case.nii.gz").write_bytes(b"")
    with pytest.raises(DataError, match=r"use SegmentationDataset\.from_volumes"):
        SegmentationDataset.from_directory(tmp_path, "train", verbose=False)
    with pytest.raises(ValueError, match="directory"):
        SegmentationDataset.from_volumes(tmp_path / "missing", "train")


@pytest.mark.parametrize(("cache", "reads"), [(False, 2 * 2), (True, 0)])
def test_each_volume_is_read_once_an_epoch_for_all_its_patches(tmp_path, monkeypatch, cache, reads):
    for name in ("a", "b"):
        _write(tmp_path, name, np.zeros((8, 8, 8), np.float32), np.ones((8, 8, 8), np.uint8))
    dataset = SegmentationDataset.from_volumes(
        tmp_path, "train", patch_size=(4, 4, 4), patches_per_volume=5, cache=cache, verbose=False
    )
    files = []
    original = _volume_pipeline.read_volume
    monkeypatch.setattr(
        _volume_pipeline, "read_volume", lambda path: files.append(path) or original(path)
    )
    assert sum(int(images.shape[0]) for images, _ in dataset) == 10
    assert len(files) == reads  # an image and a mask a volume, or none from the cache


def test_a_mask_of_fractions_is_refused_as_a_2d_mask_is(tmp_path):
    mask = np.ones((8, 8, 8), np.float32)
    mask[0, 0, 0] = 0.5
    _write(tmp_path, "soft", np.zeros((8, 8, 8), np.float32), mask)
    with pytest.raises(InvalidFileError, match=r"soft\.tif' holds non-integer floating point"):
        SegmentationDataset.from_volumes(tmp_path, "train", patch_size=(8, 8, 8), verbose=False)
