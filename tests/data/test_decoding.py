"""Decoding files as cameras and microscopes write them (`data/_decoding.py`): formats,
16-bit depth, EXIF orientation, bad and huge files, things that are not files."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from _data_files import (
    SIZE,
    all_pairs,
    from_dir,
    id_image,
    id_mask,
    raises_naming,
    save,
    save_with_orientation,
    upright_scene,
    write_id_pairs,
    zero_png,
)
from PIL import Image, ImageOps

from keras_unet_seg.data import (
    InvalidFileError,
    SegmentationDataset,
    read_header,
    read_image,
)

tifffile = pytest.importorskip("tifffile")


def test_16_bit_png_and_tiff_are_read_at_full_depth(tmp_path):
    gradient = (np.arange(SIZE * SIZE).reshape(SIZE, SIZE) * 60).astype(np.uint16)
    save(tmp_path / "images" / "png16.png", gradient)
    save(tmp_path / "images" / "tif16.tif", gradient)
    for name in ("png16", "tif16"):
        save(tmp_path / "masks" / f"{name}.png", id_mask(2))
    assert Image.open(tmp_path / "images" / "tif16.tif").mode.startswith("I;16")
    scaled, _ = all_pairs(
        from_dir(tmp_path, color_mode="grayscale", shuffle=False, intensity="scale")
    )
    low, high = np.percentile(gradient, [1, 99.8])
    auto, _ = all_pairs(from_dir(tmp_path, color_mode="grayscale", shuffle=False))
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
        from_dir(tmp_path, shuffle=False)
    (tmp_path / "images" / "d.tif").unlink()
    (tmp_path / "masks" / "d.png").unlink()
    images, _ = all_pairs(from_dir(tmp_path, shuffle=False, intensity="scale"))
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
    images, masks = next(iter(from_dir(tmp_path, mask_threshold=threshold)))
    np.testing.assert_allclose(images.numpy()[0], image / 255.0, atol=6 / 255)
    np.testing.assert_array_equal(masks.numpy()[0, ..., 0], id_mask(4) > 0)


def test_zero_byte_file(tmp_path):
    write_id_pairs(tmp_path, 2)
    empty = tmp_path / "masks" / "s001.png"
    empty.write_bytes(b"")
    raises_naming(empty, r"is empty \(0 bytes\)", tmp_path)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_file(tmp_path, ext):
    write_id_pairs(tmp_path, 2)
    rng = np.random.default_rng(0)
    path = save(tmp_path / "images" / f"s001{ext}", rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8))
    os.remove(tmp_path / "images" / "s001.png") if ext != ".png" else None
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    raises_naming(path, r"cannot be decoded \(truncated or corrupt\?\)", tmp_path)


def test_not_an_image(tmp_path):
    write_id_pairs(tmp_path, 2)
    path = tmp_path / "images" / "s001.png"
    path.write_bytes(b"this is text, not a PNG")
    raises_naming(path, r"is not a readable image", tmp_path)


def test_bmp_named_jpg(tmp_path):
    write_id_pairs(tmp_path, 2)
    os.remove(tmp_path / "images" / "s001.png")
    path = tmp_path / "images" / "s001.jpg"
    Image.fromarray(id_image(1)).save(path, format="BMP")
    raises_naming(path, r"has the extension '\.jpg' but contains BMP data", tmp_path)


def test_read_header_refuses_an_unsupported_extension(tmp_path):
    path = tmp_path / "scan.webp"
    Image.fromarray(id_image(1)).save(path, format="WEBP")
    with pytest.raises(InvalidFileError, match=r"extension '\.webp', which is not one of"):
        read_header(str(path))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_does(tmp_path, orientation):
    stored = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    path = save_with_orientation(tmp_path / "a.png", stored, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    np.testing.assert_array_equal(read_image(path, intensity=None), expected)


@pytest.mark.parametrize(("size", "orientation"), [((40, 40), 6), ((40, 56), 6), ((40, 56), 3)])
def test_exif_rotated_photos_train_against_upright_masks(tmp_path, size, orientation):
    """A phone photo stored sideways with an orientation tag, its mask drawn upright."""
    image, mask = upright_scene(*size)
    # What the camera stores: the pixels that its orientation tag turns upright.
    inverse = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90}[orientation]
    stored = np.asarray(Image.fromarray(image).transpose(inverse))
    save_with_orientation(tmp_path / "images" / "a.jpg", stored, orientation, quality=95)
    save(tmp_path / "masks" / "a.png", mask)
    dataset = SegmentationDataset.from_directory(
        tmp_path, image_size=None, batch_size=None, shuffle=False, verbose=False
    )
    read, target = next(iter(dataset))
    bright = read.numpy()[..., 0] > 0.5
    foreground = target.numpy()[..., 0] > 0
    assert bright.shape == size
    assert np.sum(bright & foreground) / np.sum(bright | foreground) > 0.95


def test_pixel_limit_is_pillows_and_configurable(tmp_path, monkeypatch):
    path = save(tmp_path / "a.png", np.zeros((32, 32), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InvalidFileError) as error:
        read_image(path)
    assert str(error.value) == (
        f"File '{path}' would decode to 32x32 pixels x 1 channels x 1 byte = 1,024 bytes, "
        "more than the limit of 1,000 pixels and 3,000 bytes (PIL.Image.MAX_IMAGE_PIXELS "
        "and 3 bytes a pixel of it), so it is not decoded: it could be a decompression "
        "bomb. If you trust it, raise PIL.Image.MAX_IMAGE_PIXELS (None removes the limit)."
    )
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert read_image(path).shape == (32, 32, 3)


@pytest.mark.parametrize(
    ("name", "shape", "sample_bytes"),
    [("rgba16.png", (40, 40, 4), 2), ("channels.tif", (8, 8, 300), 1), ("gray.png", (40, 40), 1)],
)
def test_byte_limit_counts_every_channel_and_byte(tmp_path, monkeypatch, name, shape, sample_bytes):
    """Files under the pixel limit (2000) that decode to more than 3 bytes a pixel of it
    (6000) are refused from the header; 8-bit gray under both limits is read."""
    path = str(tmp_path / name)
    if name.endswith(".png"):
        zero_png(path, *shape[:2], shape[2] if len(shape) == 3 else 1, 8 * sample_bytes)
    else:
        tifffile.imwrite(
            path, np.zeros(shape, np.uint8), photometric="minisblack", planarconfig="contig"
        )
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)
    channels = shape[2] if len(shape) == 3 else 1
    header = read_header(path) if channels == 1 else None
    if header is not None:
        assert (header.channels, header.bytes_per_sample) == (1, 1)
        assert read_image(path, "grayscale").shape == (40, 40, 1)
        return
    nbytes = shape[0] * shape[1] * channels * sample_bytes
    expected = (
        f"File '{path}' would decode to {shape[0]}x{shape[1]} pixels x {channels} channels "
        f"x {sample_bytes} byte{'s' if sample_bytes > 1 else ''} = {nbytes:,} bytes, more "
        "than the limit of 2,000 pixels and 6,000 bytes"
    )
    for read in (read_header, lambda p: read_image(p, "native")):
        with pytest.raises(InvalidFileError) as error:
            read(path)
        assert str(error.value).startswith(expected)
        assert error.value.path == path


def _read_in_a_fresh_process(cases, setup=""):
    """`(growth of the peak RSS in MB, error messages)` of `read_image` and `from_directory`
    on each `(root, image path)` of `cases`, in a fresh process after `setup` (one line),
    under the numpy backend: TensorFlow's import would dwarf the memory measured."""
    script = textwrap.dedent(
        f"""
        import resource
        from PIL import Image
        from keras_unet_seg.data import SegmentationDataset, read_image
        {setup}
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        messages = []
        for root, path in {cases!r}:
            for call in (
                lambda: read_image(path, "native"),
                lambda: SegmentationDataset.from_directory(root, verbose=False),
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
        [sys.executable, "-c", script],
        env={**os.environ, "KERAS_BACKEND": "numpy"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    growth_mb, *messages = result.stdout.strip().splitlines()
    return int(growth_mb), messages


def test_byte_limit_is_checked_before_any_pixel_is_decoded(tmp_path):
    """A 16-bit RGBA PNG and a 300-channel TIFF under the pixel limit but over the byte
    limit (lowered to 1,000,000 pixels, 3 MB) are refused by `read_image` and
    `from_directory` in one fresh process without growing it by their decoded size
    (6.5 MB and 27 MB; 26 and 108 MB as float32)."""
    roots = []
    for index, name in enumerate(("rgba16.png", "channels.tif")):
        root = tmp_path / f"data{index}"
        path = root / "images" / name
        os.makedirs(path.parent)
        if name.endswith(".png"):
            zero_png(path, 900, 900, 4, 16)
        else:
            zeros = np.zeros((300, 300, 300), np.uint8)
            tifffile.imwrite(
                path, zeros, photometric="minisblack", planarconfig="contig", compression="zlib"
            )
        save(root / "masks" / (path.stem + ".png"), np.zeros((8, 8), np.uint8))
        roots.append((str(root), str(path)))
    growth_mb, messages = _read_in_a_fresh_process(roots, "Image.MAX_IMAGE_PIXELS = 1_000_000")
    assert growth_mb < 5 and len(messages) == 4, messages
    decoded = ["900x900 pixels x 4 channels x 2 bytes", "300x300 pixels x 300 channels x 1 byte"]
    for (_, path), what, pair in zip(roots, decoded, (messages[:2], messages[2:]), strict=True):
        for message in pair:
            assert f"File '{path}' would decode to {what}" in message


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


def test_decompression_bomb_tiffs_are_refused_in_bounded_memory(tmp_path):
    """A bomb Pillow reads and one only tifffile reads, both refused by `read_image` and
    `from_directory` in one fresh process (the numpy backend: nothing here needs
    TensorFlow, whose import would dwarf the memory measured)."""
    roots = []
    bombs = [((20000, 20000), np.uint8), ((12000, 12000, 2), np.uint16)]  # Pillow; tifffile
    for index, (shape, dtype) in enumerate(bombs):
        root = tmp_path / f"data{index}"
        os.makedirs(root / "images")
        _write_huge_tiff(root / "images" / "bomb.tif", shape, dtype)
        save(root / "masks" / "bomb.png", np.zeros((8, 8), np.uint8))
        assert os.path.getsize(root / "images" / "bomb.tif") < 2_000_000
        roots.append((str(root), str(root / "images" / "bomb.tif")))
    growth_mb, messages = _read_in_a_fresh_process(roots)
    assert growth_mb < 200 and len(messages) == 4, messages
    for (_, path), message in zip([r for r in roots for _ in range(2)], messages, strict=True):
        assert path in message
        assert "MAX_IMAGE_PIXELS" in message


def test_a_pipe_named_png_is_not_a_file(tmp_path):
    fifo = tmp_path / "images" / "a.png"
    os.makedirs(fifo.parent)
    os.mkfifo(fifo)
    save(tmp_path / "masks" / "a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(InvalidFileError, match=r"a\.png' is not a regular file"):
        SegmentationDataset.from_directory(tmp_path, verbose=False)
