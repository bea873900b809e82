"""`read_image` (`data/_images.py`): colour modes, 2 and 5 channels, alpha, NaN and
infinite values."""

import os

import numpy as np
import pytest
from _data_files import (
    SIZE,
    fluorescence,
    from_dir,
    id_mask,
    save,
)

from keras_unet_seg.data import (
    InvalidFileError,
    SegmentationDataset,
    read_image,
)

tifffile = pytest.importorskip("tifffile")


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
    images, _ = next(iter(from_dir(tmp_path, color_mode=color_mode)))
    assert images.shape[-1] == len(expected)
    np.testing.assert_allclose(images.numpy()[0, 0, 0], expected, atol=1e-3)


@pytest.mark.parametrize("channels", [2, 5])
def test_multichannel_tiffs_keep_their_channels(tmp_path, channels):
    image, mask = fluorescence(channels)
    path = str(tmp_path / "images" / "a.tif")
    os.makedirs(os.path.dirname(path))
    tifffile.imwrite(path, image, photometric="minisblack", planarconfig="contig")
    save(tmp_path / "masks" / "a.png", mask)
    read = read_image(path, "native")
    assert read.shape == (32, 32, channels)
    low, high = np.percentile(image, [1, 99.8])  # the channels are normalised together
    np.testing.assert_allclose(read, (image - low) / (high - low), atol=1e-5)
    dataset = SegmentationDataset.from_directory(
        tmp_path, image_size=None, color_mode="native", batch_size=1, verbose=False
    )
    assert dataset.element_spec[0].shape.as_list() == [None, None, None, channels]
    with pytest.raises(InvalidFileError, match=rf"has {channels} channels.*'native'"):
        read_image(path, "rgb")


def test_two_channel_png_is_gray_and_alpha(tmp_path):
    gray_alpha = np.zeros((4, 4, 2), np.uint8)
    gray_alpha[..., 0], gray_alpha[..., 1] = 51, 255
    path = save(tmp_path / "a.png", gray_alpha)
    np.testing.assert_allclose(read_image(path, "rgb"), 0.2)
    np.testing.assert_allclose(read_image(path, "rgba")[..., 3], 1.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_float_tiff_is_a_bad_file(tmp_path, bad):
    for name in ("good", "bad"):
        image = np.random.default_rng(0).random((16, 16)).astype(np.float32)
        if name == "bad":
            image[3, 3] = bad
        os.makedirs(tmp_path / "images", exist_ok=True)
        tifffile.imwrite(tmp_path / "images" / f"{name}.tif", image)
        save(tmp_path / "masks" / f"{name}.png", np.zeros((16, 16), np.uint8))
    bad_path = str(tmp_path / "images" / "bad.tif")
    with pytest.raises(InvalidFileError, match=rf"File '{bad_path}': The image holds 1 NaN"):
        SegmentationDataset.from_directory(tmp_path, verbose=False)
    with pytest.warns(UserWarning, match=r"Skipped 1 of 2 samples"):
        dataset = SegmentationDataset.from_directory(tmp_path, on_error="skip", verbose=False)
    assert [path for path, _ in dataset.skipped] == [bad_path]
