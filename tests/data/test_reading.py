"""`read_image` and the checks of `from_directory` on files as cameras and microscopes
write them: EXIF orientation, 2 and 5 channels, NaN and infinite values, huge images,
things that are not files."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _data_files import save
from PIL import Image, ImageOps

from keras_unet_seg.data import InvalidFileError, SegmentationDataset, read_image

tifffile = pytest.importorskip("tifffile")

ORIENTATION = 0x0112


def _save_with_orientation(path, array, orientation, **kwargs):
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, exif=exif, **kwargs)
    return str(path)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_does(tmp_path, orientation):
    stored = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    path = _save_with_orientation(tmp_path / "a.png", stored, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    np.testing.assert_array_equal(read_image(path, intensity=None), expected)


def _upright_scene(height, width):
    """An image with a bright rectangle off-centre, and its mask, both upright."""
    image = np.full((height, width, 3), 30, np.uint8)
    mask = np.zeros((height, width), np.uint8)
    image[4:14, 6:30] = 220
    mask[4:14, 6:30] = 255
    return image, mask


@pytest.mark.parametrize(("size", "orientation"), [((40, 40), 6), ((40, 56), 6), ((40, 56), 3)])
def test_exif_rotated_photos_train_against_upright_masks(tmp_path, size, orientation):
    """A phone photo stored sideways with an orientation tag, its mask drawn upright."""
    image, mask = _upright_scene(*size)
    # What the camera stores: the pixels that its orientation tag turns upright.
    inverse = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90}[orientation]
    stored = np.asarray(Image.fromarray(image).transpose(inverse))
    _save_with_orientation(tmp_path / "images" / "a.jpg", stored, orientation, quality=95)
    save(tmp_path / "masks" / "a.png", mask)
    dataset = SegmentationDataset.from_directory(
        tmp_path, image_size=None, batch_size=None, shuffle=False, verbose=False
    )
    read, target = next(iter(dataset))
    bright = read.numpy()[..., 0] > 0.5
    foreground = target.numpy()[..., 0] > 0
    assert bright.shape == size
    assert np.sum(bright & foreground) / np.sum(bright | foreground) > 0.95


def test_exif_size_mismatch_says_so(tmp_path):
    image, mask = _upright_scene(40, 56)
    _save_with_orientation(tmp_path / "images" / "a.jpg", image, 6)  # not turned first
    save(tmp_path / "masks" / "a.png", mask)
    with pytest.raises(InvalidFileError, match=r"after the files' EXIF orientations \(image 6"):
        SegmentationDataset.from_directory(tmp_path, verbose=False)


def _fluorescence(channels, seed=0, size=32):
    """A uint16 image whose channels differ, and the mask of channel 0's bright blob."""
    rng = np.random.default_rng(seed)
    image = rng.integers(100, 300, (size, size, channels)).astype(np.uint16)
    image[8:20, 10:24, 0] += 2000
    mask = np.zeros((size, size), np.uint8)
    mask[8:20, 10:24] = 255
    return image, mask


@pytest.mark.parametrize("channels", [2, 5])
def test_multichannel_tiffs_keep_their_channels(tmp_path, channels):
    image, mask = _fluorescence(channels)
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


def test_native_refuses_images_with_different_channel_counts(tmp_path):
    for name, channels in (("a", 2), ("b", 3)):
        image, mask = _fluorescence(channels)
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


def test_pixel_limit_is_pillows_and_configurable(tmp_path, monkeypatch):
    path = save(tmp_path / "a.png", np.zeros((32, 32), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InvalidFileError, match=r"is 32x32 = 1024 pixels, more than the limit"):
        read_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert read_image(path).shape == (32, 32, 3)


def _write_huge_tiff(path, shape, dtype):
    """A 456 KB-sized bomb: zero tiles, compressed, written without holding the image."""
    tile = (1024, 1024)
    tiles = -(-shape[0] // tile[0]) * -(-shape[1] // tile[1])
    zeros = np.zeros(tile + shape[2:], dtype)
    tifffile.imwrite(
        path,
        data=(zeros for _ in range(tiles)),
        shape=shape,
        dtype=dtype,
        tile=tile,
        compression="zlib",
        photometric="minisblack",
        planarconfig="contig" if len(shape) == 3 else None,
    )


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((20000, 20000), np.uint8), ((12000, 12000, 2), np.uint16)],  # Pillow; tifffile only
)
def test_decompression_bomb_tiff_is_refused_in_bounded_memory(tmp_path, shape, dtype):
    root = tmp_path / "data"
    os.makedirs(root / "images")
    _write_huge_tiff(root / "images" / "bomb.tif", shape, dtype)
    save(root / "masks" / "bomb.png", np.zeros((8, 8), np.uint8))
    assert os.path.getsize(root / "images" / "bomb.tif") < 2_000_000
    script = textwrap.dedent(
        f"""
        import resource
        from keras_unet_seg.data import SegmentationDataset, read_image
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        messages = []
        for call in (
            lambda: read_image({str(root / "images" / "bomb.tif")!r}),
            lambda: SegmentationDataset.from_directory({str(root)!r}, verbose=False),
        ):
            try:
                call()
            except ValueError as error:
                messages.append(str(error))
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(growth // 1024)
        print(*messages, sep="\\n")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    growth_mb, *messages = result.stdout.strip().splitlines()
    assert int(growth_mb) < 200, result.stdout
    assert len(messages) == 2
    for message in messages:
        assert "bomb.tif" in message and "MAX_IMAGE_PIXELS" in message


def test_a_pipe_named_png_is_not_a_file(tmp_path):
    fifo = tmp_path / "images" / "a.png"
    os.makedirs(fifo.parent)
    os.mkfifo(fifo)
    save(tmp_path / "masks" / "a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(InvalidFileError, match=r"a\.png' is not a regular file"):
        SegmentationDataset.from_directory(tmp_path, verbose=False)
