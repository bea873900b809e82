"""`normalize_image` and `intensity_spec`: each mode against hand-computed values."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from keras_unet_seg.data import (
    SegmentationDataset,
    intensity_spec,
    normalize_image,
    normalize_volume,
)

# 0..100 in steps of 1: its p-th percentile is p.
RAMP = np.arange(101, dtype=np.uint16).reshape(1, 101)


def test_auto_divides_8_bit_by_255_and_scales_other_dtypes_by_percentiles():
    eight = np.array([[0, 51, 255]], np.uint8)
    np.testing.assert_allclose(normalize_image(eight), [[0.0, 0.2, 1.0]])
    # 1st percentile 1 -> 0, 99.8th percentile 99.8 -> 1.
    expected = (RAMP - 1.0) / (99.8 - 1.0)
    for dtype in (np.uint16, np.int32, np.float32, np.float64):
        np.testing.assert_allclose(normalize_image(RAMP.astype(dtype)), expected, atol=1e-6)
    assert normalize_image(np.array([[True, False]])).tolist() == [[1.0, 0.0]]


def test_scale_divides_by_the_dtype_range():
    np.testing.assert_allclose(
        normalize_image(np.array([[0, 65535, 13107]], np.uint16), "scale"), [[0.0, 1.0, 0.2]]
    )
    # Pillow's 32-bit mode "I" holds 16-bit values; floats are kept.
    np.testing.assert_allclose(
        normalize_image(np.array([[6553, 65535]], np.int32), "scale"), [[0.1, 1.0]], atol=1e-5
    )
    np.testing.assert_allclose(normalize_image(np.array([[0.25, 3.0]]), "scale"), [[0.25, 3.0]])
    with pytest.raises(ValueError, match=r"values outside \[0, 65535\] \(min -1, max 5\)"):
        normalize_image(np.array([[-1, 5]], np.int32), "scale")


def test_scale_warns_when_an_image_uses_a_small_part_of_its_range():
    with pytest.warns(UserWarning, match=r"less than 1/64 of the range.*Use intensity 'auto'"):
        normalize_image(np.array([[100, 1100]], np.uint16), "scale")


def test_percentile_with_its_own_bounds_per_channel_or_joint():
    image = np.stack([RAMP[0], 2 * RAMP[0]], axis=-1)[None]  # (1, 101, 2)
    joint = normalize_image(image, "percentile", low=10, high=90)
    low, high = np.percentile(image, [10, 90])
    np.testing.assert_allclose(joint, (image - low) / (high - low), atol=1e-6)
    apart = normalize_image(image, "percentile", low=10, high=90, per_channel=True)
    ramp = RAMP.astype(np.float64)
    np.testing.assert_allclose(apart[..., 0], (ramp - 10) / 80, atol=1e-6)
    np.testing.assert_allclose(apart[..., 1], (2 * ramp - 20) / 160, atol=1e-6)


def test_percentile_falls_back_to_minmax_on_a_sparse_image():
    sparse = np.zeros((10, 100), np.uint16)
    sparse[0, 0] = 500  # the 99.8th percentile is 0
    out = normalize_image(sparse)
    assert out.max() == 1.0 and out.min() == 0.0 and out[0, 0] == 1.0


def test_minmax_and_standardize():
    image = np.array([[2.0, 4.0], [6.0, 10.0]])
    np.testing.assert_allclose(normalize_image(image, "minmax"), [[0, 0.25], [0.5, 1.0]])
    standardized = normalize_image(image, "standardize")
    np.testing.assert_allclose(standardized, (image - 5.5) / (np.std(image) + 1e-6), rtol=1e-6)
    # No 1/sqrt(N) floor (tf.image.per_image_standardization's): a faint image is
    # standardised too.
    faint = np.array([[0, 1], [2, 3]], np.uint16)
    np.testing.assert_allclose(normalize_image(faint, "standardize").std(), 1.0, rtol=1e-5)


def test_none_keeps_the_stored_values_and_flat_images_become_zeros():
    image = np.array([[100, 1100]], np.uint16)
    assert normalize_image(image, None).tolist() == [[100.0, 1100.0]]
    assert normalize_image(image, None).dtype == np.float32
    flat = np.full((4, 4, 3), 700, np.uint16)
    for mode in ("auto", "percentile", "minmax", "standardize"):
        np.testing.assert_array_equal(normalize_image(flat, mode), 0.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinite_values_are_refused(bad):
    image = np.ones((4, 4), np.float32)
    image[1, 2] = bad
    with pytest.raises(ValueError, match=r"holds 1 NaN or infinite values of 16"):
        normalize_image(image)


@pytest.mark.parametrize(
    ("intensity", "message"),
    [
        ("robust", "Expected one of ('auto', 'scale', 'percentile', 'minmax', 'standardize'"),
        ({"low": 2}, "or a dict with a 'mode' key"),
        ({"mode": "percentile", "gamma": 2}, "or a dict with a 'mode' key"),
        ({"mode": "percentile", "low": 99, "high": 2}, "percentiles with 0 <= low < high <= 100"),
        ({"mode": "auto", "per_channel": "yes"}, "per_channel to be a bool"),
        ({"mode": "auto", "epsilon": 0}, "a positive epsilon"),
        ({"mode": "window", "center": 40}, "a number 'center' and a positive 'width'"),
        ({"mode": "window", "center": 40, "width": 0}, "a number 'center' and a positive"),
        ({"mode": "auto", "center": 40}, "['center'] with mode 'window' only"),
    ],
)
def test_intensity_spec_errors(intensity, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        intensity_spec(intensity)


def test_intensity_spec_is_complete_and_idempotent():
    spec = intensity_spec({"mode": "percentile", "low": 2, "high": 99.5})
    assert spec == {
        "mode": "percentile",
        "low": 2.0,
        "high": 99.5,
        "per_channel": False,
        "epsilon": 1e-6,
    }
    assert intensity_spec(spec) == spec
    assert intensity_spec(None)["mode"] is None


def test_a_ct_window_maps_its_hounsfield_range_to_0_1_clipped():
    ct = np.array([[-1000, -160, 40], [140, 240, 3000]], np.int16)
    spec = intensity_spec({"mode": "window", "center": 40, "width": 400})
    assert spec["center"] == 40.0 and spec["width"] == 400.0
    assert normalize_image(ct, **spec).tolist() == [[0.0, 0.0, 0.5], [0.75, 1.0, 1.0]]


def test_a_volume_is_normalised_by_its_whole_statistics():
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 4000, (6, 5, 4, 2)).astype(np.uint16)
    volume[0] = 0  # a dark slice: per-slice statistics would differ
    out = normalize_volume(volume)
    low, high = np.percentile(volume, [1, 99.8])
    np.testing.assert_allclose(out, (volume - low) / (high - low), rtol=1e-5, atol=1e-6)
    per_channel = normalize_volume(volume, {"mode": "minmax", "per_channel": True})
    assert per_channel[..., 1].max() == 1.0 and per_channel[..., 0].min() == 0.0
    with pytest.raises(ValueError, match="volume"):
        normalize_volume(volume[0])


images = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.float32]),
    shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=12).map(
        lambda s: (*s[:2], min(s[2], 4))
    ),
    elements={"min_value": 0, "max_value": 200},
)


@settings(max_examples=40, deadline=None)
@given(image=images, mode=st.sampled_from(["auto", "percentile", "minmax"]))
def test_normalised_images_are_finite_ordered_and_in_range(image, mode):
    out = normalize_image(image, mode)
    assert out.shape == image.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    if mode == "minmax":
        assert out.min() >= 0.0 and out.max() <= 1.0
    # A monotone map: the order of the pixels is kept.
    flat_in, flat_out = image.ravel().astype(np.float64), out.ravel()
    order = np.argsort(flat_in, kind="stable")
    assert np.all(np.diff(flat_out[order]) >= -1e-6)


@settings(max_examples=25, deadline=None)
@given(
    image=images,
    scale=st.floats(0.5, 50),
    offset=st.floats(-100, 100),
    mode=st.sampled_from(["percentile", "minmax", "standardize"]),
)
def test_relative_modes_ignore_the_units(image, scale, offset, mode):
    """An image and the same image in other units normalise alike: a 12-bit camera
    image and its 8-bit copy mean the same to the model."""
    values = image.astype(np.float64)
    np.testing.assert_allclose(
        normalize_image(values * scale + offset, mode), normalize_image(values, mode), atol=2e-4
    )


# --- from_arrays: the same rules -------------------------------------------------------------


def test_from_arrays_normalises_each_image_like_a_file():
    images = np.stack([RAMP, 3 * RAMP + 100]).astype(np.uint16)[..., None]
    masks = np.zeros(images.shape[:3], np.uint8)
    dataset = SegmentationDataset.from_arrays(images, masks, batch_size=None, shuffle=False)
    first, second = (image.numpy() for image, _ in dataset)
    np.testing.assert_allclose(first, normalize_image(images[0]), atol=1e-6)
    np.testing.assert_allclose(second, first, atol=1e-5)  # same picture, other units
    # Floats in 0-255 are scaled by their percentiles, not taken as they are.
    floats = SegmentationDataset.from_arrays(
        images.astype(np.float32) * 2.0, masks, batch_size=None, shuffle=False
    )
    assert float(max(image.numpy().max() for image, _ in floats)) < 1.1


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_from_arrays_refuses_nan_and_infinite_images(bad):
    images = np.zeros((3, 8, 8), np.float32)
    images[2, 1, 1] = bad
    with pytest.raises(ValueError, match=r"Image 'images\[2\]': The image holds 1 NaN"):
        SegmentationDataset.from_arrays(images, np.zeros((3, 8, 8), np.uint8))


def test_from_arrays_refusals_name_the_argument():
    masks = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(ValueError, match=r"`images`\. Expected a real numeric array"):
        SegmentationDataset.from_arrays(np.zeros((2, 8, 8), np.complex64), masks)
    negative = np.full((2, 8, 8), -5, np.int32)
    with pytest.raises(ValueError, match=r"images\[0\]'.*outside \[0, 65535\]"):
        SegmentationDataset.from_arrays(negative, masks, intensity="scale")
    # Under "auto" negative integers are scaled by their percentiles like any image.
    assert SegmentationDataset.from_arrays(negative, masks, batch_size=None) is not None
