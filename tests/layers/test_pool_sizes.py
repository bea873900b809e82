"""`plan_pool_sizes`: nnU-Net's rule for which axes each level pools."""

import pytest

from keras_unet_seg.layers import plan_pool_sizes


def test_thick_slices_are_pooled_in_plane_until_the_spacing_is_near_isotropic():
    # 5 mm slices, 0.8 mm pixels: in plane only until the pixels reach 3.2 mm.
    plan = plan_pool_sizes((20, 160, 160), depth=5, spacing=(5.0, 0.8, 0.8))
    assert plan == [(1, 2, 2), (1, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2)]


def test_an_axis_is_not_pooled_below_twice_min_size():
    assert plan_pool_sizes((5, 64, 64), depth=3) == [(1, 2, 2)] * 3


def test_isotropic_patches_pool_every_axis():
    assert plan_pool_sizes((32, 32, 32), depth=2) == [(2, 2, 2), (2, 2, 2)]


def test_a_depth_that_no_axis_can_reach_is_refused():
    with pytest.raises(ValueError, match=r"at most 2 levels for a patch of \(16, 16\)"):
        plan_pool_sizes((16, 16), depth=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patch_size": (8,), "depth": 1}, r"Received: patch_size=\(8,\)"),
        ({"patch_size": (8, 8, 8), "depth": 1, "spacing": (1, 1)}, r"spacing=\(1, 1\)"),
        ({"patch_size": (8, 8), "depth": 0}, "Received: depth=0"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_pool_sizes(**kwargs)
