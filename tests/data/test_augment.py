"""JointAugmentation: image and mask stay aligned, seeded, photometry on the image only."""

import re

import numpy as np
import pytest
import tensorflow as tf
from _data_files import save

from keras_unet_seg.data import JointAugmentation, SegmentationDataset

GEOMETRY_ONLY = {"brightness": 0.0, "contrast": 0.0, "gamma": 0.0, "noise": 0.0}
PHOTOMETRY_ONLY = {"flip": None, "rotate90": False, "rotation": 0.0, "zoom": 0.0}


def _smooth_images(count=8, size=64, seed=0):
    """Images of a few smooth blobs: thresholding them gives masks with long, clean edges."""
    coarse = np.random.default_rng(seed).random((count, 6, 6, 3)).astype("float32")
    return np.clip(tf.image.resize(coarse, (size, size), method="bicubic").numpy(), 0, 1)


def _mask_of(images):
    return (images[..., :1] > 0.5).astype("float32")


def _agreement(images, masks):
    return float(np.mean((np.asarray(images)[..., :1] > 0.5) == (np.asarray(masks) > 0.5)))


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_mask_drawn_from_the_image_still_matches_after_augmentation(interpolation):
    images = _smooth_images()
    augment = JointAugmentation(
        rotation=0.1, zoom=0.3, interpolation=interpolation, seed=1, **GEOMETRY_ONLY
    )
    changed = 0
    for _ in range(4):
        out_images, out_masks = augment(images, _mask_of(images))
        changed += not np.array_equal(out_masks.numpy(), _mask_of(images))
        recomputed = out_images.numpy()[..., :1] > 0.5
        disagree = recomputed != (out_masks.numpy() > 0.5)
        if interpolation == "nearest":
            # Nearest moves every image pixel exactly as it moves the mask.
            assert not disagree.any()
        else:
            # Bilinear blends the image across edges, so a pixel next to an edge may
            # cross the threshold: disagreements lie within 2 pixels of a mask edge
            # (bar a few where zooming out resamples away a sliver of the mask).
            assert disagree.mean() < 0.05
            off_edge = disagree & ~_edges(out_masks.numpy() > 0.5)
            assert off_edge.mean() < 0.001
    assert changed == 4


def _edges(masks):
    """Pixels with a differently labelled pixel at most 2 pixels away."""
    as_float = tf.constant(masks, tf.float32)
    high = tf.nn.max_pool2d(as_float, 5, 1, "SAME")
    low = -tf.nn.max_pool2d(-as_float, 5, 1, "SAME")
    return (high != low).numpy()


def test_alignment_holds_in_a_dataset_from_directory(tmp_path):
    images = (_smooth_images(count=6) * 255).astype(np.uint8)
    for index, image in enumerate(images):
        save(tmp_path / "images" / f"{index}.png", image)
        save(tmp_path / "masks" / f"{index}.png", (image[..., 0] > 127).astype(np.uint8))
    dataset = SegmentationDataset.from_directory(
        tmp_path,
        image_size=(64, 64),
        batch_size=3,
        seed=0,
        augment={"interpolation": "nearest", "rotation": 0.1, "zoom": 0.3, **GEOMETRY_ONLY},
    )
    for _ in range(2):
        for batch_images, batch_masks in dataset:
            assert _agreement(batch_images, batch_masks) == 1.0


def test_same_seed_same_results_different_seed_different():
    images = _smooth_images()
    masks = _mask_of(images)

    def run(seed):
        augment = JointAugmentation(seed=seed)
        return [augment(images, masks) for _ in range(3)]

    first, second, other = run(7), run(7), run(8)
    for (i1, m1), (i2, m2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(i1.numpy(), i2.numpy())
        np.testing.assert_array_equal(m1.numpy(), m2.numpy())
    assert not np.array_equal(first[0][0].numpy(), other[0][0].numpy())
    assert not np.array_equal(first[0][0].numpy(), first[1][0].numpy())  # calls differ


def test_flips_and_transposes_give_all_eight_symmetries():
    image = np.arange(16, dtype="float32").reshape(1, 4, 4, 1) / 16
    images = np.repeat(image, 64, axis=0)
    augment = JointAugmentation(rotation=0.0, zoom=0.0, seed=0, **GEOMETRY_ONLY)
    out, _ = augment(images, images)
    seen = {tuple(sample.ravel().tolist()) for sample in out.numpy()}
    expected = {
        tuple(np.rot90(variant, k).ravel().tolist())
        for variant in (image[0, ..., 0], image[0, ..., 0].T)
        for k in range(4)
    }
    assert seen == expected


def test_non_square_images_keep_their_shape():
    images = np.random.default_rng(0).random((4, 16, 24, 3)).astype("float32")
    out_images, out_masks = JointAugmentation(seed=0)(images, _mask_of(images))
    assert out_images.shape == (4, 16, 24, 3) and out_masks.shape == (4, 16, 24, 1)


def test_photometry_changes_the_image_only_and_stays_in_range():
    images = _smooth_images()
    masks = _mask_of(images)
    augment = JointAugmentation(
        brightness=0.3, contrast=0.3, gamma=0.5, noise=0.05, seed=0, **PHOTOMETRY_ONLY
    )
    out_images, out_masks = augment(images, masks)
    np.testing.assert_array_equal(out_masks.numpy(), masks)
    assert not np.allclose(out_images.numpy(), images, atol=1e-3)
    assert 0.0 <= float(tf.reduce_min(out_images)) and float(tf.reduce_max(out_images)) <= 1.0
    shifted = JointAugmentation(brightness=0.3, value_range=(0, 255), seed=0, **PHOTOMETRY_ONLY)
    out255, _ = shifted(images * 255, masks)
    assert float(tf.reduce_max(out255)) > 1.0


def test_integer_class_masks_keep_dtype_and_values():
    images = _smooth_images(count=4)
    masks = (images[..., :1] * 4).astype("int32")  # class ids 0..3
    _, out_masks = JointAugmentation(rotation=0.1, zoom=0.2, seed=0)(images, masks)
    assert out_masks.dtype == tf.int32
    assert set(np.unique(out_masks.numpy())) <= set(np.unique(masks))


def test_call_forms():
    images = _smooth_images(count=2)
    masks = _mask_of(images)
    augment = JointAugmentation(seed=0)
    single_image, single_mask = augment(images[0], masks[0])
    assert single_image.shape == (64, 64, 3) and single_mask.shape == (64, 64, 1)
    data = augment({"images": images, "segmentation_masks": masks, "other": 1})
    assert set(data) == {"images", "segmentation_masks", "other"}
    only_images, none = augment(images)
    assert only_images.shape == images.shape and none is None
    same_images, same_masks = augment(images, masks, training=False)
    assert same_images is images and same_masks is masks


def test_config_round_trip():
    augment = JointAugmentation(flip="horizontal", rotation=0.2, seed=3)
    config = augment.get_config()
    assert JointAugmentation.from_config(config).get_config() == config
    assert "flip='horizontal'" in repr(augment)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"flip": "both"},
            (
                "Invalid value for argument `flip`. Expected one of None, 'horizontal', "
                "'vertical', 'horizontal_and_vertical'. Received: flip='both'"
            ),
        ),
        (
            {"rotate90": 1},
            (
                "Invalid value for argument `rotate90`. Expected a boolean (True or False). "
                "Received: rotate90=1"
            ),
        ),
        (
            {"rotation": 0.7},
            (
                "Invalid value for argument `rotation`. Expected a number in [0, 0.5]. Received: "
                "rotation=0.7"
            ),
        ),
        (
            {"zoom": 1.0},
            "Invalid value for argument `zoom`. Expected a number in [0, 1). Received: zoom=1.0",
        ),
        (
            {"gamma": -0.1},
            "Invalid value for argument `gamma`. Expected a number in [0, 1). Received: gamma=-0.1",
        ),
        (
            {"noise": -1},
            "Invalid value for argument `noise`. Expected a finite number >= 0. Received: noise=-1",
        ),
        (
            {"value_range": (1, 0)},
            (
                "Invalid value for argument `value_range`. Expected None or `(low, high)` "
                "with low < high. Received: value_range=(1, 0)"
            ),
        ),
        (
            {"fill_mode": "zeros"},
            (
                "Invalid value for argument `fill_mode`. Expected one of 'reflect', 'wrap', "
                "'constant', 'nearest'. Received: fill_mode='zeros'"
            ),
        ),
        (
            {"interpolation": "bicubic"},
            (
                "Invalid value for argument `interpolation`. Expected one of 'nearest', "
                "'bilinear'. Received: interpolation='bicubic'"
            ),
        ),
        (
            {"seed": "1"},
            "Invalid value for argument `seed`. Expected None or an int seed. Received: seed='1'",
        ),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        JointAugmentation(**kwargs)


def test_rank_error():
    with pytest.raises(ValueError, match=r"Expected images of rank 3 .* or 4"):
        JointAugmentation(seed=0)(
            np.zeros((2, 2, 8, 8, 3), "float32"), np.zeros((2, 2, 8, 8, 1), "float32")
        )
