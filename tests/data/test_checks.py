"""Every pair checked before training (`data/_checks.py`): sizes, channels, skip mode."""

import os
import re
import warnings

import numpy as np
import pytest
import tensorflow as tf
from _data_files import (
    SIZE,
    epoch_ids,
    fluorescence,
    from_dir,
    id_image,
    id_mask,
    save,
    save_with_orientation,
    upright_scene,
    write_id_pairs,
)

from keras_unet_seg.data import (
    InvalidFileError,
    SegmentationDataset,
)

tifffile = pytest.importorskip("tifffile")


def test_image_and_mask_of_different_sizes(tmp_path):
    write_id_pairs(tmp_path, 2)
    save(tmp_path / "images" / "s001.png", np.zeros((48, 64, 3), np.uint8))
    message = (
        re.escape(f"Image '{tmp_path / 'images' / 's001.png'}' and mask ")
        + re.escape(f"'{tmp_path / 'masks' / 's001.png'}' have different sizes: ")
        + re.escape(f"image (height, width) = (48, 64), mask (height, width) = ({SIZE}, {SIZE}).")
    )
    with pytest.raises(ValueError, match=message):
        from_dir(tmp_path)


def test_exif_size_mismatch_says_so(tmp_path):
    image, mask = upright_scene(40, 56)
    save_with_orientation(tmp_path / "images" / "a.jpg", image, 6)  # not turned first
    save(tmp_path / "masks" / "a.png", mask)
    with pytest.raises(InvalidFileError, match=r"after the files' EXIF orientations \(image 6"):
        SegmentationDataset.from_directory(tmp_path, verbose=False)


def test_image_size_none_keeps_size_and_refuses_mixed_sizes(tmp_path):
    write_id_pairs(tmp_path, 2)
    images, _ = next(iter(from_dir(tmp_path, image_size=None)))
    assert images.shape == (2, SIZE, SIZE, 3)
    save(tmp_path / "images" / "z.png", np.zeros((8, 8, 3), np.uint8))
    save(tmp_path / "masks" / "z.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(
        ValueError, match=r"With image_size=None every pair must have the same size"
    ):
        from_dir(tmp_path, image_size=None)
    assert len(list(from_dir(tmp_path, image_size=None, batch_size=None))) == 3


def test_native_refuses_images_with_different_channel_counts(tmp_path):
    for name, channels in (("a", 2), ("b", 3)):
        image, mask = fluorescence(channels)
        os.makedirs(tmp_path / "images", exist_ok=True)
        tifffile.imwrite(
            tmp_path / "images" / f"{name}.tif",
            image,
            photometric="minisblack",
            planarconfig="contig",
        )
        save(tmp_path / "masks" / f"{name}.png", mask)
    with pytest.raises(ValueError, match=r"different channel counts \('.*a\.tif' has 2; '.*b"):
        SegmentationDataset.from_directory(tmp_path, color_mode="native", verbose=False)


def _bad_files(tmp_path):
    """8 pairs, 3 bad, an orphan image and an orphan mask; `{path: reason}` of the bad."""
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
    return bad


def test_skip_mode_prints_every_skipped_file_one_a_line(tmp_path, capsys):
    bad = _bad_files(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # printed, not warned
        dataset = from_dir(tmp_path, on_error="skip")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"Skipped 5 of 10 samples found in '{tmp_path / 'images'}' and "
        f"'{tmp_path / 'masks'}' (`on_error='skip'`); kept 5:"
    )
    skipped = dict(dataset.skipped)
    assert set(skipped) == set(bad)
    for line, (path, reason) in zip(lines[1:6], dataset.skipped, strict=True):
        assert line == f"  {reason}" and path in reason and bad[path] in reason
    found = 10  # 8 pairs + an orphan image + an orphan mask
    assert len(dataset.image_paths) + len(dataset.skipped) == found
    assert sorted(epoch_ids(dataset)) == [0, 1, 5, 6, 7]
    with pytest.warns(UserWarning, match=r"Skipped 5 of 10 samples found") as record:
        from_dir(tmp_path, on_error="skip", verbose=False)
    assert str(record[0].message).splitlines()[1:] == lines[1:6]


def test_raise_mode_lists_every_bad_file_in_one_error(tmp_path):
    bad = _bad_files(tmp_path)
    with pytest.raises(InvalidFileError) as error:
        from_dir(tmp_path, verbose=False)
    lines = str(error.value).splitlines()
    assert lines[0] == (
        f"5 of 10 samples found in '{tmp_path / 'images'}' and '{tmp_path / 'masks'}' "
        "cannot be used:"
    )
    assert lines[-1] == "Fix them, or pass `on_error='skip'` to leave them out."
    assert len(lines) == 7 and all(line.startswith("  ") for line in lines[1:6])
    for path, reason in bad.items():
        assert sum(path in line and reason in line for line in lines[1:6]) == 1


def test_skip_mode_with_nothing_left(tmp_path):
    save(tmp_path / "images" / "a.png", id_image(0))
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match=r"all 1 samples were skipped"):
        from_dir(tmp_path, on_error="skip")


def test_verify_false_reports_decoding_errors_during_iteration(tmp_path):
    write_id_pairs(tmp_path, 3)
    path = tmp_path / "images" / "s001.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])  # header intact, pixels cut
    dataset = from_dir(tmp_path, verify=False, shuffle=False)  # headers only: passes
    with pytest.raises(tf.errors.OpError, match=re.escape(f"File '{path}' cannot be decoded")):
        list(dataset)


@pytest.mark.parametrize("limit", [2000, None])
def test_checking_threads_decode_at_most_the_limit_of_one_file(tmp_path, monkeypatch, limit):
    """Each pair decodes to 4,096 bytes (32x32 RGB and gray): under a pixel limit of 2,000
    (6,000 bytes) the threads decode one pair at a time; without one, several."""
    import threading
    import time

    from PIL import Image

    from keras_unet_seg.data import _checks

    write_id_pairs(tmp_path, 8)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    lock, state = threading.Lock(), {"now": 0, "most": 0}
    read_image = _checks.read_image

    def slow_read_image(*args):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return read_image(*args)

    monkeypatch.setattr(_checks, "read_image", slow_read_image)
    monkeypatch.setattr(_checks.os, "cpu_count", lambda: 2)  # 4 threads
    dataset = from_dir(tmp_path, verbose=False, image_size=None, batch_size=None)
    assert len(dataset.image_paths) == 8
    if limit is not None:
        assert state["most"] == 1
    else:
        assert state["most"] >= 2
