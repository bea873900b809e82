"""`keras_unet_seg.evaluation`: hand-computed cases and a brute-force reference."""

import math
import re

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from keras_unet_seg._errors import InvalidArgumentError
from keras_unet_seg.evaluation import (
    boundary_distances,
    confusion_matrix,
    segmentation_scores,
    summarize,
)


def _square(shape=(40, 40), top=10, left=5, side=20):
    mask = np.zeros(shape, np.int64)
    mask[top : top + side, left : left + side] = 1
    return mask


def test_shifted_square_by_hand():
    """A 20x20 square against itself moved 3 pixels right.

    Its boundary has 76 pixels. From the truth's boundary to the prediction's: the
    18 left-column pixels are 3 away; the right column's are min(y, 19 - y, 3) away
    (1, 2, 3 x 14, 2, 1); the top and bottom rows' first three pixels 3, 2, 1, the
    rest 0. Sum 114 each way, so ASSD = 228 / 152 = 1.5; 34 of the 76 distances are 3,
    so the 95th percentile is 3; 38 are within 1, so NSD at 1 is 0.5.
    """
    truth = _square()
    scores = segmentation_scores(truth, np.roll(truth, 3, axis=1))[1]
    assert (scores["tp"], scores["fp"], scores["fn"]) == (340, 60, 60)
    assert scores["dice"] == pytest.approx(680 / 800)
    assert scores["iou"] == pytest.approx(340 / 460)
    assert scores["hd95"] == pytest.approx(3.0)
    assert scores["assd"] == pytest.approx(1.5)
    assert scores["nsd"] == pytest.approx(0.5)
    to_pred, to_true = boundary_distances(truth, np.roll(truth, 3, axis=1))
    assert len(to_pred) == len(to_true) == 76 and to_pred.sum() == pytest.approx(114)


def test_anisotropic_spacing_scales_the_distances():
    truth = _square()
    moved = np.roll(truth, 3, axis=1)
    wide = segmentation_scores(truth, moved, spacing=(1.0, 2.0))[1]  # pixels 2 wide
    assert wide["hd95"] == pytest.approx(6.0)
    tall = segmentation_scores(truth, moved, spacing=(2.0, 1.0))[1]  # shift across rows
    assert tall["hd95"] == pytest.approx(3.0)


def test_disc_against_a_ring():
    """A disc of radius 12 and a ring of radii 6 to 12: the same outer edge, and an
    inner edge (its pixels about 7 from the centre) about 5 from the disc's."""
    y, x = np.mgrid[:41, :41]
    radius = np.hypot(y - 20, x - 20)
    disc = (radius <= 12).astype(int)
    ring = ((radius <= 12) & (radius > 6)).astype(int)
    scores = segmentation_scores(disc, ring)[1]
    area_ratio = ring.sum() / disc.sum()
    assert scores["dice"] == pytest.approx(2 * area_ratio / (1 + area_ratio), abs=1e-6)
    assert scores["precision"] == pytest.approx(1.0)
    assert scores["hd95"] == pytest.approx(5.0, abs=1.0)
    to_ring, to_disc = boundary_distances(disc, ring)
    assert np.all(to_ring == 0)  # every edge pixel of the disc is on the ring's edge
    inner = to_disc > 0
    assert inner.sum() > 0 and np.allclose(to_disc[inner], 5.0, atol=1.0)


def test_empty_masks_follow_the_stated_convention():
    empty, square = np.zeros((16, 16), int), _square((16, 16), 4, 4, 6)
    both = segmentation_scores(empty, empty)[1]
    assert both["dice"] == 1.0 and both["hd95"] == 0.0 and both["assd"] == 0.0
    assert both["nsd"] == 1.0
    for truth, pred in ((empty, square), (square, empty)):
        one = segmentation_scores(truth, pred)[1]
        assert one["dice"] < 1e-6 and one["nsd"] == 0.0
        assert math.isinf(one["hd95"]) and math.isinf(one["assd"])


def _reference(truth, pred, spacing, tolerance):
    """Brute force: every pair of boundary pixels, scipy's cdist."""
    edges = [m & ~ndimage.binary_erosion(m, border_value=0) for m in (truth, pred)]
    points = [np.argwhere(e) * np.asarray(spacing) for e in edges]
    distances = cdist(points[0], points[1])
    to_pred, to_true = distances.min(axis=1), distances.min(axis=0)
    both = np.concatenate([to_pred, to_true])
    return {
        "hd95": max(np.percentile(to_pred, 95), np.percentile(to_true, 95)),
        "assd": both.mean(),
        "nsd": np.mean(both <= tolerance),
    }


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 1.7), (3.0, 1.0)])
@pytest.mark.parametrize("seed", range(4))
def test_boundary_scores_match_a_brute_force_reference(seed, spacing):
    rng = np.random.default_rng(seed)
    truth = ndimage.binary_opening(rng.random((30, 26)) > 0.55)
    pred = ndimage.binary_opening(rng.random((30, 26)) > 0.5)
    assert truth.any() and pred.any()
    scores = segmentation_scores(truth.astype(int), pred.astype(int), spacing=spacing)[1]
    expected = _reference(truth, pred, spacing, tolerance=1.0)
    for name in ("hd95", "assd", "nsd"):
        assert scores[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name


def test_multiclass_scores_and_confusion_matrix():
    truth = np.array([[0, 1, 1], [2, 2, 2], [0, 0, 255]])
    pred = np.array([[0, 1, 2], [2, 2, 1], [0, 1, 0]])
    matrix = confusion_matrix(truth, pred, 3, ignore_class=255)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 1, 2]]
    scores = segmentation_scores(truth, pred, 3, ignore_class=255, boundary=False)
    assert sorted(scores) == [1, 2]
    assert scores[2]["dice"] == pytest.approx((4 + 1e-5) / (6 + 1e-5))
    assert "hd95" not in scores[1]
    with_background = segmentation_scores(truth, pred, 3, ignore_class=255, include_background=True)
    assert with_background[0]["tp"] == 2


def test_summary_pools_counts_and_averages_finite_distances():
    truth = _square((40, 40))
    empty = np.zeros_like(truth)
    per_image = [
        segmentation_scores(truth, np.roll(truth, 3, axis=1)),
        segmentation_scores(truth, truth),
        segmentation_scores(truth, empty),
    ]
    summary = summarize(per_image)[1]
    assert summary["images"] == 3 and summary["infinite"] == 1
    assert (summary["tp"], summary["fp"], summary["fn"]) == (740, 60, 460)
    assert summary["hd95"] == pytest.approx((3.0 + 0.0) / 2)


def test_bad_arguments_name_themselves():
    expected = (
        "Invalid value for arguments `y_true` and `y_pred`. Expected masks of the same "
        "shape. Received: y_true.shape=(4, 4), y_pred.shape=(4, 5)"
    )
    with pytest.raises(InvalidArgumentError, match=re.escape(expected)):
        segmentation_scores(np.zeros((4, 4), int), np.zeros((4, 5), int))
    with pytest.raises(ValueError, match=r"Invalid value for argument `y_pred`\. Expected a 2-D"):
        segmentation_scores(np.zeros((4, 4), int), np.zeros((4, 4), float))
    with pytest.raises(ValueError, match=r"Expected class ids in \[0, 1\]"):
        confusion_matrix(np.zeros((2, 2), int), np.full((2, 2), 3), 2)
    with pytest.raises(ValueError, match=r"Invalid value for argument `spacing`"):
        segmentation_scores(np.zeros((4, 4), int), np.zeros((4, 4), int), spacing=(1, -1))


# --------------------------------------------------------------------------- #
# Volumes
# --------------------------------------------------------------------------- #


def _cube(shape=(24, 20, 20), corner=(4, 5, 5), side=10):
    mask = np.zeros(shape, np.int64)
    mask[tuple(slice(c, c + side) for c in corner)] = 1
    return mask


@pytest.mark.parametrize(
    ("spacing", "hd95"),
    [(None, 3.0), ((2.0, 1.0, 1.0), 6.0), ((1.0, 1.0, 2.0), 3.0), (0.5, 1.5)],
)
def test_hd95_of_a_cube_moved_3_voxels_deeper(spacing, hd95):
    """A 10-voxel cube against itself 3 voxels deeper (along depth).

    Every boundary voxel is at most 3 voxels along depth from the other boundary (in
    its own column), and the 100 voxels of the truth's first face (a fifth of its 488
    boundary voxels; the prediction's last face the other way) are exactly 3 away:
    the other cube lies 3 voxels deeper, none of its voxels nearer. So HD95 is 3
    voxels along depth: 3 at spacing 1, 6 at spacing 2 along depth, still 3 at
    spacing 2 along width (the shift is not along it), 1.5 at spacing 0.5 everywhere.
    """
    truth = _cube()
    scores = segmentation_scores(truth, np.roll(truth, 3, axis=0), spacing=spacing)[1]
    assert scores["hd95"] == pytest.approx(hd95)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (700, 300, 300)
    to_pred, to_true = boundary_distances(truth, np.roll(truth, 3, axis=0), spacing)
    assert len(to_pred) == len(to_true) == 10**3 - 8**3


def test_assd_and_nsd_of_a_small_cube_by_hand():
    """A 4-voxel cube against itself 1 voxel deeper, voxels 2 deep (spacing (2, 1, 1)).

    Each boundary has 64 - 8 = 56 voxels. From the truth's to the prediction's: the 16
    of the first face (shallowest) are one voxel, 2, from the other's first face; the
    4 inside the last face are 1 from the other's sides (and 2 from its last face); the
    other 36 (the sides) lie on the other's sides, 0. The same the other way. So ASSD =
    2 (16 x 2 + 4 x 1) / 112 = 9/14, NSD at 1 is 80/112 = 5/7 and at 2 it is 1, and
    HD95 is 2 (16 of 56 distances are 2).
    """
    truth = _cube((10, 8, 8), (2, 2, 2), 4)
    moved = np.roll(truth, 1, axis=0)
    spacing = (2.0, 1.0, 1.0)
    scores = segmentation_scores(truth, moved, spacing=spacing)[1]
    assert scores["assd"] == pytest.approx(9 / 14)
    assert scores["nsd"] == pytest.approx(5 / 7)
    assert scores["hd95"] == pytest.approx(2.0)
    assert segmentation_scores(truth, moved, spacing=spacing, tolerance=2.0)[1]["nsd"] == 1.0
    assert scores["dice"] == pytest.approx(2 * 48 / 128)


@pytest.mark.parametrize("seed", range(2))
def test_volume_scores_match_a_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    truth = ndimage.binary_opening(rng.random((9, 12, 11)) > 0.5)
    pred = ndimage.binary_opening(rng.random((9, 12, 11)) > 0.45)
    assert truth.any() and pred.any()
    spacing = (2.5, 0.7, 1.0)
    scores = segmentation_scores(truth[..., None], pred[..., None], spacing=spacing)[1]
    expected = _reference(truth, pred, spacing, tolerance=1.0)
    for name in ("hd95", "assd", "nsd"):
        assert scores[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name
    assert (scores["tp"], scores["fn"]) == ((truth & pred).sum(), (truth & ~pred).sum())


def test_multiclass_volume_matches_per_class_counts():
    rng = np.random.default_rng(3)
    truth, pred = rng.integers(0, 3, (2, 5, 6, 4))
    matrix = confusion_matrix(truth, pred, 3)
    expected = [[np.sum((truth == t) & (pred == p)) for p in range(3)] for t in range(3)]
    assert matrix.tolist() == expected
    scores = segmentation_scores(truth, pred, 3, boundary=False)
    for class_id in (1, 2):
        tp = np.sum((truth == class_id) & (pred == class_id))
        sizes = np.sum(truth == class_id) + np.sum(pred == class_id)
        assert scores[class_id]["dice"] == pytest.approx(2 * tp / sizes)


@pytest.mark.parametrize(
    ("shape", "spacing", "expected"),
    [
        (
            (6, 5, 4),
            (1.0, 2.0),
            "Expected a positive number or 3 positive numbers, one "
            "per axis (depth, height, width). Received: spacing=(1.0, 2.0)",
        ),
        (
            (5, 4),
            (1.0, 1.0, 2.0),
            "Expected a positive number or 2 positive numbers, one "
            "per axis (height, width). Received: spacing=(1.0, 1.0, 2.0)",
        ),
        ((6, 5, 4), (1.0, 0.0, 1.0), "Expected a positive number or 3 positive numbers"),
    ],
)
def test_spacing_needs_one_number_per_axis_of_the_masks(shape, spacing, expected):
    mask = np.zeros(shape, int)
    message = "Invalid value for argument `spacing`. " + expected
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        segmentation_scores(mask, mask, spacing=spacing, boundary=False)
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        boundary_distances(mask, mask, spacing)


def test_masks_of_another_rank_or_shape_are_refused():
    with pytest.raises(InvalidArgumentError, match=r"argument `y_true`\. Expected a 2-D or 3-D"):
        segmentation_scores(np.zeros((2, 3, 4, 5), int), np.zeros((2, 3, 4, 5), int))
    expected = "arguments `true_mask` and `pred_mask`. Expected masks of the same shape"
    with pytest.raises(InvalidArgumentError, match=expected):
        boundary_distances(np.zeros((4, 5, 6), bool), np.zeros((4, 6, 5), bool))


# --------------------------------------------------------------------------- #
# evaluate_directory
# --------------------------------------------------------------------------- #


def _square_model():
    """A 1x1 convolution whose foreground is the image's red channel: probabilities of
    about 1 where it is 255 and about 0 elsewhere, so the prediction is known."""
    import keras

    inputs = keras.Input((None, None, 3))
    layer = keras.layers.Conv2D(1, 1, activation="sigmoid")
    outputs = layer(inputs)
    layer.set_weights(
        [np.array([20.0, 0.0, 0.0], "float32").reshape(1, 1, 3, 1), np.array([-10.0], "float32")]
    )
    return keras.Model(inputs, outputs)


def _write_pair(root, name, truth, predicted):
    from PIL import Image

    for kind, array in (
        ("images", np.stack([predicted * 255] + [np.zeros_like(predicted)] * 2, -1)),
        ("masks", truth * 255),
    ):
        (root / kind).mkdir(parents=True, exist_ok=True)
        Image.fromarray(array.astype(np.uint8)).save(root / kind / f"{name}.png")


@pytest.fixture
def scored_folder(tmp_path):
    """`val/`: a square predicted one pixel to the right (12 of 16 pixels), and an empty
    image predicted empty."""
    truth = np.zeros((8, 8), np.int64)
    truth[2:6, 2:6] = 1
    _write_pair(tmp_path / "val", "a", truth, np.roll(truth, 1, axis=1))
    _write_pair(tmp_path / "val", "b", np.zeros((8, 8), np.int64), np.zeros((8, 8), np.int64))
    return tmp_path


def test_evaluate_directory_scores_each_image_and_the_pooled_counts(scored_folder):
    from keras_unet_seg.evaluation import evaluate_directory

    report = evaluate_directory(_square_model(), str(scored_folder), tile_size=8, verbose=0)
    assert (report["subset"], report["num_images"], report["threshold"]) == ("val", 2, 0.5)
    first, second = report["per_image"]
    assert first["image"].endswith("a.png") and first["mask"].endswith("a.png")
    expected = {"dice": 24 / 32, "iou": 12 / 20, "precision": 12 / 16, "recall": 12 / 16}
    for name, value in expected.items():
        assert first[name] == pytest.approx(value, abs=1e-4)
        assert second[name] == pytest.approx(1.0)  # empty truth, empty prediction
        assert report["overall"][name] == pytest.approx(value, abs=1e-4)  # pooled
    assert (first["classes"][1]["tp"], first["classes"][1]["fp"]) == (12, 4)
    assert first["classes"][1]["hd95"] == pytest.approx(1.0)
    assert report["classes"][1]["tp"] == 12 and report["classes"][1]["images"] == 2
    assert report["confusion"].tolist() == [[108, 4], [4, 12]]
    assert "predictions" not in report


def test_evaluate_directory_returns_the_arrays_and_reads_flat_folders(scored_folder):
    from keras_unet_seg.evaluation import evaluate_directory

    flat = str(scored_folder / "val")
    report = evaluate_directory(
        _square_model(), flat, return_predictions=True, verbose=0, tile_size=8
    )
    assert report["subset"] is None and report["num_images"] == 2
    prediction = report["predictions"][0]
    assert prediction["image"].shape == (8, 8, 3) and prediction["mask"].shape == (8, 8, 1)
    assert prediction["probabilities"].shape == (8, 8, 1)
    np.testing.assert_array_equal(prediction["y_pred"], np.roll(prediction["y_true"], 1, axis=1))
    split = evaluate_directory(_square_model(), flat, validation_split=0.5, seed=0, verbose=0)
    assert split["subset"] == "validation" and split["num_images"] == 1


def test_evaluate_directory_keeps_thumbnails_only_when_asked(scored_folder):
    """A report needs thumbnails: the arrays kept are subsampled, not full size."""
    from keras_unet_seg.evaluation import evaluate_directory

    flat = str(scored_folder / "val")
    full = evaluate_directory(
        _square_model(), flat, return_predictions=True, verbose=0, tile_size=8
    )
    small = evaluate_directory(
        _square_model(), flat, return_predictions=True, thumbnail_size=3, verbose=0, tile_size=8
    )
    assert small["per_image"] == full["per_image"]
    for kept, whole in zip(small["predictions"], full["predictions"], strict=True):
        for name, array in kept.items():
            assert array.shape[:2] == (3, 3)  # every third pixel of 8
            np.testing.assert_array_equal(array, whole[name][::3, ::3])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"threshold": 2}, "Invalid value for argument `threshold`. Expected a float in [0, 1]"),
        ({"tolerance": 0}, "Invalid value for argument `tolerance`. Expected a finite number > 0"),
        ({"scale": (1, 0)}, "Invalid value for argument `scale`. Expected None, a positive"),
        ({"image_size": "big"}, "Invalid value for argument `image_size`. Expected None or a"),
        ({"subset": "missing"}, "Expected the name of a subset of"),
    ],
)
def test_evaluate_directory_refuses_bad_arguments(scored_folder, arguments, message):
    from keras_unet_seg.evaluation import evaluate_directory

    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate_directory(_square_model(), str(scored_folder), verbose=0, **arguments)
