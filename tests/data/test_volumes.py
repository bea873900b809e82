"""Reading and writing volumes: NIfTI and TIFF stacks keep their spacing and header."""

import os
import sys

import nibabel
import numpy as np
import pytest
import tifffile

from keras_unet_seg._errors import DataError, InvalidArgumentError
from keras_unet_seg.data import InvalidFileError, read_volume, volume_stem, write_volume

# An oblique, permuted affine: voxel axes (i, j, k) are world (z, y, x) scaled.
AFFINE = np.array(
    [[0.0, 0.0, -2.5, 10.0], [0.0, 0.8, 0.1, -3.0], [1.2, 0.0, 0.0, 5.0], [0, 0, 0, 1]]
)


def _nifti(path, data, qform_code=1, sform_code=2):
    image = nibabel.Nifti1Image(data, AFFINE)
    image.header.set_qform(AFFINE if qform_code else None, qform_code)
    image.header.set_sform(AFFINE if sform_code else None, sform_code)
    image.header.set_xyzt_units("mm", "sec")
    nibabel.save(image, path)
    return path


@pytest.mark.parametrize(("qform_code", "sform_code"), [(1, 2), (0, 1), (2, 0), (1, 0)])
def test_nifti_round_trip_keeps_spacing_orientation_and_header(tmp_path, qform_code, sform_code):
    # nibabel's (x, y, z) = (37, 50, 23): the array is (depth, height, width) = (23, 50, 37).
    data = np.random.default_rng(0).normal(size=(37, 50, 23)).astype(np.float32)
    path = _nifti(str(tmp_path / "ct.nii.gz"), data, qform_code, sform_code)
    volume = read_volume(path)
    zooms = nibabel.load(path).header.get_zooms()
    assert volume.array.shape == (23, 50, 37, 1)
    assert volume.spacing == tuple(float(str(z)) for z in zooms[::-1])
    assert volume.array[4, 7, 30, 0] == data[30, 7, 4]  # voxel [d, h, w] is nibabel's [w, h, d]

    mask = (volume.array[..., 0] > 0.5).astype(np.uint8)
    out = write_volume(str(tmp_path / "mask.nii.gz"), mask, like=volume)
    written, original = nibabel.load(out), nibabel.load(path)
    assert np.array_equal(written.affine, original.affine)
    assert written.header.get_zooms() == original.header.get_zooms()
    for form in ("get_qform", "get_sform"):  # nibabel keeps a sheared affine in the sform
        (matrix, code), (expected, expected_code) = (
            getattr(header, form)(coded=True) for header in (written.header, original.header)
        )
        assert code == expected_code and (code == 0 or np.array_equal(matrix, expected))
    header = original.header
    changed = [key for key in header if not np.array_equal(header[key], written.header[key])]
    assert sorted(changed) == ["bitpix", "datatype", "scl_inter", "scl_slope"]
    assert written.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(written.dataobj), data > 0.5)  # the same voxels
    again = read_volume(out)
    assert again.spacing == volume.spacing
    assert np.array_equal(again.array[..., 0], mask)


def test_nifti_channels_and_plain_nii(tmp_path):
    data = np.arange(16 * 16 * 16 * 2, dtype=np.int16).reshape(16, 16, 16, 2)
    volume = read_volume(_nifti(str(tmp_path / "two.nii"), data))
    assert volume.array.shape == (16, 16, 16, 2)
    assert np.array_equal(volume.array[..., 1], data[..., 1].transpose(2, 1, 0))
    out = write_volume(str(tmp_path / "mask.nii"), np.ones((16, 16, 16, 1), bool), like=volume)
    assert nibabel.load(out).shape == (16, 16, 16)


def _stack(path, array, **kwargs):
    tifffile.imwrite(path, array, photometric="minisblack", **kwargs)
    return str(path)


def test_tiff_stack_round_trip_keeps_spacing(tmp_path):
    stack = (np.arange(5 * 7 * 9) % 100).astype(np.uint16).reshape(5, 7, 9)
    path = _stack(
        tmp_path / "cells.tif",
        stack,
        imagej=True,
        resolution=(2.0, 4.0),  # pixels per micron: x 0.5 um, y 0.25 um
        metadata={"spacing": 3.0, "unit": "um", "axes": "ZYX"},
    )
    volume = read_volume(path)
    assert volume.array.shape == (5, 7, 9, 1) and volume.array.dtype == np.uint16
    assert volume.spacing == (3.0, 0.25, 0.5)
    assert np.array_equal(volume.array[..., 0], stack)
    out = write_volume(str(tmp_path / "mask.tif"), stack > 50, like=volume)
    written = read_volume(out)
    assert written.spacing == volume.spacing and written.header == volume.header
    assert written.array.dtype == np.uint8
    assert np.array_equal(written.array[..., 0], stack > 50)


def test_tiff_without_metadata_has_unit_spacing_and_channels_last(tmp_path):
    planes = np.random.default_rng(0).integers(0, 255, (4, 2, 6, 8), dtype=np.uint8)
    hyperstack = _stack(tmp_path / "zcyx.tif", planes, imagej=True, metadata={"axes": "ZCYX"})
    volume = read_volume(hyperstack)
    assert volume.array.shape == (4, 6, 8, 2)
    assert np.array_equal(volume.array, planes.transpose(0, 2, 3, 1))
    plain = read_volume(_stack(tmp_path / "pages.tiff", planes[:, 0]))
    assert plain.array.shape == (4, 6, 8, 1) and plain.spacing == (1.0, 1.0, 1.0)


def test_a_tiff_volume_written_as_nifti_carries_its_spacing(tmp_path):
    metadata = {"spacing": 4.0, "axes": "ZYX"}
    mask = np.zeros((3, 4, 5), np.uint8)
    path = _stack(tmp_path / "s.tif", mask, imagej=True, resolution=(2.0, 2.0), metadata=metadata)
    out = write_volume(str(tmp_path / "m.nii.gz"), mask, like=read_volume(path))
    assert read_volume(out).spacing == (4.0, 0.5, 0.5)


@pytest.mark.parametrize("name", ["broken.nii.gz", "broken.nii", "broken.tif"])
def test_bad_files_raise_invalid_file_error_naming_the_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"not a volume at all" * 20)
    with pytest.raises(InvalidFileError, match=name) as caught:
        read_volume(path)
    assert caught.value.path == str(path)
    with pytest.raises(InvalidFileError, match=r"missing\.nii\.gz"):
        read_volume(tmp_path / "missing.nii.gz")
    with pytest.raises(InvalidArgumentError, match="path"):
        read_volume(tmp_path / "image.png")


def test_write_refuses_existing_files_and_bad_masks(tmp_path):
    volume = read_volume(_stack(tmp_path / "s.tif", np.zeros((3, 4, 5), np.uint8)))
    target = tmp_path / "mask.tif"
    target.write_bytes(b"a user's file")
    with pytest.raises(DataError, match="overwrite=True"):
        write_volume(target, np.zeros((3, 4, 5), np.uint8), like=volume)
    assert target.read_bytes() == b"a user's file"
    write_volume(target, np.zeros((3, 4, 5), np.uint8), like=volume, overwrite=True)
    assert read_volume(target).array.shape == (3, 4, 5, 1)
    with pytest.raises(InvalidArgumentError, match=r"Received: mask\.shape=\(3, 4, 6\)$"):
        write_volume(tmp_path / "b.tif", np.zeros((3, 4, 6), np.uint8), like=volume)
    with pytest.raises(InvalidArgumentError, match=r"Received: float64 array of values"):
        write_volume(tmp_path / "c.tif", np.full((3, 4, 5), 0.5), like=volume)
    ramp = np.arange(60, dtype=np.uint16).reshape(3, 4, 5) * 5
    with pytest.raises(InvalidArgumentError, match=r"uint16 array of values in \[0, 295\]"):
        write_volume(tmp_path / "d.tif", ramp, like=volume)
    assert sorted(os.listdir(tmp_path)) == ["mask.tif", "s.tif"]  # no temporary left


def test_missing_nibabel_names_the_extra(tmp_path, monkeypatch):
    path = _nifti(str(tmp_path / "a.nii.gz"), np.zeros((4, 4, 4), np.float32))
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(ImportError, match=r'pip install "keras-unet-seg\[volumes\]"'):
        read_volume(path)


def test_volume_stem_drops_both_suffixes_of_nii_gz():
    assert volume_stem("/data/case_001.nii.gz") == "case_001"
    assert volume_stem("case.v2.tif") == "case.v2"
