"""The tf.data pipeline (`data/_pipeline.py`): resizing, order, seeds, cache."""

import os
import time

import numpy as np
import tensorflow as tf
from _data_files import (
    epoch_ids,
    from_dir,
    id_mask,
    save,
    write_id_pairs,
)

from keras_unet_seg.data import (
    SegmentationDataset,
    _pipeline,
)


def test_resize_image_bilinear_mask_nearest(tmp_path):
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, 30:] = 255
    mask = np.zeros((40, 60), np.uint8)
    mask[:, 30:] = 3
    mask[:5, :5] = 1
    save(tmp_path / "images" / "a.png", image)
    save(tmp_path / "masks" / "a.png", mask)
    dataset = from_dir(tmp_path, image_size=(16, 25), num_classes=4)
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
    _, cropped = next(iter(from_dir(tmp_path, image_size=(20, 20), crop_to_aspect_ratio=True)))
    # The centred 20x20 crop holds columns 10..29: no foreground left.
    assert float(tf.reduce_sum(cropped)) == 0.0
    images, padded = next(iter(from_dir(tmp_path, image_size=(40, 40), pad_to_aspect_ratio=True)))
    # 20x40 padded to 40x40: 10 rows of zeros above and below, nothing squeezed.
    np.testing.assert_array_equal(images.numpy()[0, :10], 0.0)
    np.testing.assert_array_equal(images.numpy()[0, 10:30], 1.0)
    np.testing.assert_array_equal(padded.numpy()[0, 10:30, :10, 0], 1.0)
    assert float(tf.reduce_sum(padded)) == 200.0


def test_every_pair_exactly_once_per_epoch_and_reshuffled(tmp_path):
    write_id_pairs(tmp_path, 22)
    dataset = from_dir(tmp_path, batch_size=5, seed=3)
    epochs = [epoch_ids(dataset) for _ in range(3)]
    for ids in epochs:
        assert sorted(ids) == list(range(22))
    assert epochs[0] != epochs[1] != epochs[2]


def test_same_seed_same_batches_different_seed_different_order(tmp_path):
    write_id_pairs(tmp_path, 16)

    def run(seed, **kwargs):
        dataset = from_dir(tmp_path, seed=seed, augment=True, **kwargs)
        return [(i.numpy(), m.numpy()) for _ in range(2) for i, m in dataset]

    first, second, other = run(1), run(1), run(2)
    for (i1, m1), (i2, m2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(m1, m2)
    assert epoch_ids(from_dir(tmp_path, seed=1)) != epoch_ids(from_dir(tmp_path, seed=2))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))
    cached = run(1, cache=True)  # caching does not change what comes out
    for (i1, m1), (i2, m2) in zip(first, cached, strict=False):
        assert i1.shape == i2.shape and m1.shape == m2.shape


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
    cached = from_dir(tmp_path, cache=True, verify=False)
    first = epoch_ids(cached)
    second = epoch_ids(cached)
    assert len(calls) == 10 and sorted(second) == list(range(10)) and first != second
    calls.clear()
    uncached = from_dir(tmp_path, verify=False)
    epoch_ids(uncached), epoch_ids(uncached)
    assert len(calls) == 20


def test_file_cache_is_written_and_reused(tmp_path, monkeypatch):
    write_id_pairs(tmp_path / "data", 6)
    cache = tmp_path / "cache" / "pairs"
    cache.parent.mkdir()
    calls = _counting_reads(monkeypatch)
    dataset = from_dir(tmp_path / "data", cache=str(cache), verify=False)
    assert sorted(epoch_ids(dataset)) == list(range(6))
    assert any(name.startswith("pairs") for name in os.listdir(cache.parent))
    again = from_dir(tmp_path / "data", cache=str(cache), verify=False)
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
    dataset = from_dir(tmp_path, image_size=(256, 256), batch_size=8, cache=True, verify=False)

    def epoch_seconds():
        start = time.perf_counter()
        for _ in dataset:
            pass
        return time.perf_counter() - start

    first = epoch_seconds()
    later = min(epoch_seconds() for _ in range(3))
    assert later < first, (first, later)


def test_from_arrays_resizes_and_augments():
    images = np.random.default_rng(0).random((4, 40, 40, 3)).astype("float32")
    masks = (images[..., 0] > 0.5).astype("int64")
    dataset = SegmentationDataset.from_arrays(
        images, masks, image_size=(16, 16), num_classes=2, augment=True, seed=0
    )
    batch_images, batch_masks = next(iter(dataset))
    assert batch_images.shape == (4, 16, 16, 3) and batch_masks.dtype == tf.int32
    assert set(np.unique(batch_masks.numpy())) <= {0, 1}
