"""A real photograph, at 8 bits and as a low-range 16-bit camera image, with defaults.

`real/coins.png` is scikit-image's `coins` (Greek coins from Pompeii, Brooklyn Museum
collection, no known copyright restrictions), shipped here so that nothing is
downloaded. Its mask is derived in the test: the coins stand out of the unevenly lit
background after a white top-hat (the image smoothed by a 5x5 box, minus its grey
opening by a 65x65 square), thresholded at Otsu's level. The 16-bit version holds
the same picture in 100-1100 of 65535, as a 12-bit camera writes it: divided by 65535
(the library's reading before intensity normalization) its values lie in
0.0015-0.017.

Crops of 64x64, each a whole image normalised on its own (by its percentiles, for
the 16-bit version): training crops from the left 256 columns, validation crops from
the right 128, so no validation pixel is trained on.

Each bit depth is trained once, for the module, by `keras-unet-seg train`, which reads
the folders with `from_directory`'s defaults (augmentation on, intensity "auto"). Six
epochs take both above 0.95 validation Dice (0.962 each on the reference machine),
where the 16-bit tiles divided by 65535, as read before intensity normalization
(`--intensity scale`), stay at Dice 0.0 for the first seven epochs.
"""

import csv
import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet_seg.cli import main
from keras_unet_seg.data import SegmentationDataset

COINS = os.path.join(os.path.dirname(__file__), "real", "coins.png")
CROP = 64
# Validation Dice reached by the 8-bit and 16-bit versions may differ by this much.
TOLERANCE = 0.02
EPOCHS = 6


def _box_blur(image, radius=2):
    padded = np.pad(image.astype(np.float64), radius, mode="edge")
    size = 2 * radius + 1
    total = sum(
        padded[dy : dy + image.shape[0], dx : dx + image.shape[1]]
        for dy in range(size)
        for dx in range(size)
    )
    return total / size**2


def _filter(image, radius, reduce):
    """A separable square min or max filter (`reduce` is `np.min` or `np.max`)."""
    window = 2 * radius + 1
    for axis in (0, 1):
        padding = [(radius, radius) if a == axis else (0, 0) for a in (0, 1)]
        padded = np.pad(image, padding, mode="edge")
        image = reduce(np.lib.stride_tricks.sliding_window_view(padded, window, axis), -1)
    return image


def _otsu(values):
    histogram = np.histogram(values, 256, (0, 256))[0].astype(np.float64)
    weight = np.cumsum(histogram)
    moment = np.cumsum(histogram * np.arange(256))
    between = (moment[-1] * weight / weight[-1] - moment) ** 2 / (
        weight * (weight[-1] - weight) + 1e-9
    )
    return int(np.argmax(between))


def coins_and_mask():
    image = np.asarray(Image.open(COINS))
    smooth = _box_blur(image)
    top_hat = smooth - _filter(_filter(smooth, 32, np.min), 32, np.max)
    return image, (top_hat > _otsu(top_hat)).astype(np.uint8) * 255


def _crops(height, x_range, steps):
    for top in range(0, height - CROP + 1, steps[0]):
        for left in range(x_range[0], x_range[1] - CROP + 1, steps[1]):
            yield top, left


def write_coins_dataset(root, bits):
    """`root/{train,val}/{images,masks}` tiles of coins, as 8-bit PNG or 16-bit TIFF."""
    image, mask = coins_and_mask()
    if bits == 16:
        image = (100 + np.round(image.astype(np.float64) * 1000 / 255)).astype(np.uint16)
    extension = ".png" if bits == 8 else ".tif"
    height, width = image.shape
    splits = {"train": ((0, 256), (32, 32)), "val": ((256, width), (CROP, 32))}
    for subset, (x_range, steps) in splits.items():
        for folder in ("images", "masks"):
            os.makedirs(os.path.join(root, subset, folder), exist_ok=True)
        for top, left in _crops(height, x_range, steps):
            name = f"y{top:03d}_x{left:03d}"
            box = np.s_[top : top + CROP, left : left + CROP]
            Image.fromarray(image[box]).save(os.path.join(root, subset, "images", name + extension))
            Image.fromarray(mask[box]).save(os.path.join(root, subset, "masks", name + ".png"))
    return str(root)


@pytest.fixture(scope="module")
def coins_data(tmp_path_factory):
    return {
        bits: write_coins_dataset(tmp_path_factory.mktemp(f"coins{bits}"), bits) for bits in (8, 16)
    }


def test_the_16_bit_tiles_are_low_range(coins_data):
    path = os.path.join(coins_data[16], "train", "images", "y000_x000.tif")
    assert len(os.listdir(os.path.join(coins_data[16], "train", "images"))) == 56
    assert len(os.listdir(os.path.join(coins_data[16], "val", "images"))) == 12
    array = np.asarray(Image.open(path))
    assert array.dtype == np.uint16 and 100 <= array.min() and array.max() <= 1100


def _logged_dice(run):
    with open(os.path.join(run, "log.csv"), newline="") as f:
        return [float(row["val_dice_coefficient"]) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def runs(coins_data, tmp_path_factory):
    """One run folder a bit depth, trained by the command with its defaults."""
    runs = {}
    for bits, root in coins_data.items():
        runs[bits] = str(tmp_path_factory.mktemp(f"run{bits}"))
        options = ["--base-filters", "8", "--depth", "3", "--image-size", "64"]
        options += ["--color-mode", "grayscale", "--epochs", str(EPOCHS), "--steps-per-epoch", "0"]
        options += ["--learning-rate", "0.003"]
        assert main(["train", "--data", root, "--out", runs[bits], *options]) == 0
    return runs


@pytest.mark.slow
def test_8_and_16_bit_reach_the_same_dice_through_from_directory(coins_data, runs):
    """The best models score as logged on `from_directory`'s validation datasets."""
    dice = {}
    for bits, root in coins_data.items():
        val = SegmentationDataset.from_directory(
            root,
            "val",
            image_size=(CROP, CROP),
            batch_size=8,
            color_mode="grayscale",
            shuffle=False,
            verbose=False,
        )
        model = keras.saving.load_model(os.path.join(runs[bits], "best.keras"))
        dice[bits] = model.evaluate(val, return_dict=True, verbose=0)["dice_coefficient"]
        logged = max(_logged_dice(runs[bits]))
        assert dice[bits] == pytest.approx(logged, abs=1e-3), (bits, dice[bits], logged)
    assert dice[8] > 0.9, dice
    assert abs(dice[8] - dice[16]) <= TOLERANCE, dice


def _pooled_dice(truth_dir, predicted_dir):
    """Dice of every predicted mask PNG against the truth, from pooled pixel counts."""
    overlap = total = 0
    for name in sorted(os.listdir(truth_dir)):
        truth = np.asarray(Image.open(os.path.join(truth_dir, name))) > 0
        predicted = np.asarray(Image.open(os.path.join(predicted_dir, name))) > 0
        overlap += np.sum(truth & predicted)
        total += truth.sum() + predicted.sum()
    return 2 * overlap / total


@pytest.mark.slow
def test_8_and_16_bit_reach_the_same_dice_through_the_command(coins_data, runs, tmp_path, capsys):
    logged, evaluated, predicted = {}, {}, {}
    for bits, root in coins_data.items():
        run = runs[bits]
        logged[bits] = max(_logged_dice(run))
        report = str(tmp_path / f"scores{bits}.json")
        model = os.path.join(run, "best.keras")
        # One pass, as training's validation scores (flip test-time augmentation is not).
        argv = ["--model", model, "--no-tta"]
        assert main(["evaluate", *argv, "--data", root, "--json", report]) == 0
        with open(report, encoding="utf-8") as f:
            evaluated[bits] = json.load(f)["overall"]["dice"]
        predictions = str(tmp_path / f"predicted{bits}")
        val = os.path.join(root, "val")
        images = os.path.join(val, "images")
        assert main(["predict", images, *argv, "--out", predictions]) == 0
        predicted[bits] = _pooled_dice(
            os.path.join(val, "masks"), os.path.join(predictions, "masks")
        )
    output = capsys.readouterr().out
    assert "intensity 'auto' (1-99.8) (from the run's config.json)" in output
    assert logged[8] > 0.9, logged
    assert abs(logged[8] - logged[16]) <= TOLERANCE, logged
    for bits in (8, 16):  # evaluate and predict reproduce the Dice of the best epoch
        assert evaluated[bits] == pytest.approx(logged[bits], abs=1e-3), (evaluated, logged)
        assert predicted[bits] == pytest.approx(logged[bits], abs=1e-3), (predicted, logged)
