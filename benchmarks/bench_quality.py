"""Validation Dice of the `train` command's defaults against a plain U-Net and Otsu.

On real annotated images, as a user with a handful of them would run things:

- `command`: `keras-unet-seg train --data DIR --out RUN --seed S` with nothing else
  (plus `--extra` arguments, to try other defaults), then `keras-unet-seg evaluate`
  of `RUN/best.keras`: the pooled Dice of the validation images, with evaluate's
  default flip test-time augmentation and with `--no-tta`;
- `plain`: the functional U-Net of about 20 lines that a Keras user writes (16
  filters, depth 3, ReLU, transposed convolutions, sigmoid), Adam 1e-3 on binary
  cross-entropy, random flips and 90-degree rotations, the same images read the
  same way (`read_image`, intensity "auto"), trained for the optimizer steps and
  batch size that the command's run took (read back from its log), last epoch;
  scored on each whole image, as it is and with the same flip test-time
  augmentation (`predict_tiled(..., tta=True)`);
- `otsu`: each validation image thresholded at Otsu's level of its own histogram.

Datasets (`tests/data/real/`, nothing downloaded):

- `nuclei`: StarDist's 2-D example, a 512x512 16-bit fluorescence image of nuclei
  (from the 2018 Data Science Bowl, BBBC038, CC0) and its hand-drawn label image
  (0 and object ids 1..183, as StarDist writes them), cut into 16 tiles of
  128x128: the 8 of one colour of a checkerboard train, the other 8 validate.
  The masks stay label images, so the command's defaults must read them.
- `coins`: scikit-image's coins photograph
  (8-bit), its mask derived as in `tests/data/test_real_images.py` (a top-hat,
  then Otsu's level: not an annotation, and a reference that favours Otsu), 8
  tiles of 64x64 from the left for training, 8 from the right for validation.

    python benchmarks/bench_quality.py                        # 3 seeds, both
    python benchmarks/bench_quality.py --seeds 0 1 2 3 4 --datasets nuclei
    python benchmarks/bench_quality.py --extra="--no-augment" --methods command

Every dataset runs for a seed before the next seed. Prints a Markdown table: mean and
standard deviation over the seeds, the seeds' values, and the command's time (training
and evaluation with the defaults), beside the time of `keras-unet-seg demo` with its
defaults, run once first in the same process tree (`--no-demo` leaves it out): the
budget the command's defaults are held to; and the load average before and after, and
after each seed (the machine may be shared).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

REAL = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "real")
TESTS = os.path.join(os.path.dirname(__file__), "..", "tests", "data")


def _write_pair(root, subset, name, image, mask):
    for folder, array in (("images", image), ("masks", mask)):
        os.makedirs(os.path.join(root, subset, folder), exist_ok=True)
        extension = ".tif" if folder == "images" and array.dtype == np.uint16 else ".png"
        Image.fromarray(array).save(os.path.join(root, subset, folder, name + extension))


def write_nuclei(root):
    """16 tiles of 128x128: a checkerboard's 8 train, its other 8 validate."""
    image = np.asarray(Image.open(os.path.join(REAL, "nuclei.tif")))
    labels = np.asarray(Image.open(os.path.join(REAL, "nuclei_labels.tif")))
    for row in range(4):
        for col in range(4):
            box = np.s_[row * 128 : (row + 1) * 128, col * 128 : (col + 1) * 128]
            subset = "train" if (row + col) % 2 == 0 else "val"
            _write_pair(root, subset, f"r{row}c{col}", image[box], labels[box])
    return root


def write_coins(root):
    """8 tiles of 64x64 from the left half for training, 8 from the right for validation."""
    sys.path.insert(0, TESTS)
    from test_real_images import coins_and_mask

    image, mask = coins_and_mask()
    for index in range(8):
        top = 64 * (index // 4) + 32
        for subset, left in (("train", 64 * (index % 4)), ("val", 128 + 64 * (index % 4))):
            box = np.s_[top : top + 64, left : left + 64]
            _write_pair(root, subset, f"t{index}", image[box], mask[box])
    return root


DATASETS = {"nuclei": write_nuclei, "coins": write_coins}


def _read(root, subset):
    """The images (as the library reads them) and binary masks of a subset."""
    from keras_unet_seg.data import read_image

    names = sorted(os.listdir(os.path.join(root, subset, "images")))
    images, masks, raw = [], [], []
    for name in names:
        path = os.path.join(root, subset, "images", name)
        images.append(read_image(path, "grayscale"))
        raw.append(np.asarray(Image.open(path)))
        stem = os.path.splitext(name)[0]
        masks.append(np.asarray(Image.open(os.path.join(root, subset, "masks", stem + ".png"))) > 0)
    return np.stack(images), np.stack(masks), raw


def _dice(truth, prediction):
    truth, prediction = np.asarray(truth, bool), np.asarray(prediction, bool)
    return 2 * np.sum(truth & prediction) / max(np.sum(truth) + np.sum(prediction), 1)


def otsu_level(values):
    """Otsu's threshold of an integer image (the level maximising between-class variance)."""
    values = np.asarray(values).ravel()
    levels, counts = np.unique(values, return_counts=True)
    weight = np.cumsum(counts).astype(np.float64)
    moment = np.cumsum(counts * levels.astype(np.float64))
    total, mean = weight[-1], moment[-1] / weight[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean * weight - moment) ** 2 / (weight * (total - weight))
    return levels[np.nanargmax(between[:-1])]


def run_otsu(root, seed):
    _, masks, raw = _read(root, "val")
    predictions = [image > otsu_level(image) for image in raw]
    return {"dice": _dice(np.stack(masks), np.stack(predictions))}


def _command(*argv):
    script = os.path.join(os.path.dirname(sys.executable), "keras-unet-seg")
    result = subprocess.run([script, *argv], capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"keras-unet-seg {' '.join(argv)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def run_demo():
    """Seconds of `keras-unet-seg demo` with its defaults."""
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        _command("demo", "--out", os.path.join(work, "demo"))
        return time.perf_counter() - start


def run_command(root, seed, extra=(), work=None):
    run = os.path.join(work, f"run_{seed}")
    scores = os.path.join(work, f"scores_{seed}.json")
    start = time.perf_counter()
    _command("train", "--data", root, "--out", run, "--seed", str(seed), *extra)
    evaluate = ("evaluate", "--model", os.path.join(run, "best.keras"), "--data", root)
    _command(*evaluate, "--json", scores)
    seconds = time.perf_counter() - start
    _command(*evaluate, "--no-tta", "--json", scores + ".no_tta")
    with open(scores + ".no_tta") as f:
        dice_no_tta = json.load(f)["overall"]["dice"]
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(run, "log.csv")) as f:
        epochs = sum(1 for _ in f) - 1
    with open(scores) as f:
        dice = json.load(f)["overall"]["dice"]
    steps_per_epoch = config.get("steps_per_epoch") or -(-8 // config["batch_size"])
    return {
        "dice": dice,
        "dice_no_tta": dice_no_tta,
        "seconds": seconds,
        "steps": epochs * steps_per_epoch,
        "batch_size": config["batch_size"],
    }


def plain_unet(channels=1, filters=16, depth=3):
    """The U-Net a Keras user writes in a few lines."""
    import keras
    from keras import layers

    def block(x, n):
        x = layers.Conv2D(n, 3, padding="same", activation="relu")(x)
        return layers.Conv2D(n, 3, padding="same", activation="relu")(x)

    inputs = keras.Input((None, None, channels))
    x, skips = inputs, []
    for level in range(depth):
        x = block(x, filters * 2**level)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
    x = block(x, filters * 2**depth)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(filters * 2**level, 2, strides=2)(x)
        x = block(layers.Concatenate()([x, skips[level]]), filters * 2**level)
    return keras.Model(inputs, layers.Conv2D(1, 1, activation="sigmoid")(x))


def run_plain(root, seed, steps, batch_size):
    import keras
    import tensorflow as tf

    from keras_unet_seg.inference import predict_tiled

    keras.utils.set_random_seed(seed)
    images, masks, _ = _read(root, "train")
    val_images, val_masks, _ = _read(root, "val")

    def augment(image, mask):
        pair = tf.concat([image, tf.cast(mask, tf.float32)], -1)
        pair = tf.image.rot90(pair, tf.random.uniform((), 0, 4, tf.int32, seed=seed))
        pair = tf.image.random_flip_left_right(tf.image.random_flip_up_down(pair))
        return pair[..., :-1], pair[..., -1:]

    data = (
        tf.data.Dataset.from_tensor_slices((images, masks[..., None].astype(np.float32)))
        .shuffle(len(images), seed=seed)
        .repeat()
        .map(augment)
        .batch(batch_size)
    )
    model = plain_unet(images.shape[-1])
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    dice = {}
    for key, tta in (("dice", False), ("dice_tta", True)):
        tile = val_images.shape[1:3]  # each image whole, as `model.predict` would
        probabilities = predict_tiled(model, val_images, tile, tta=tta, verbose=0)[..., 0]
        dice[key] = _dice(val_masks, probabilities >= 0.5)
    return dice


# The table's rows: (method, label, result key).
ROWS = (
    ("otsu", "otsu", "dice"),
    ("plain", "plain", "dice"),
    ("plain", "plain + flip TTA", "dice_tta"),
    ("command", "command defaults, --no-tta", "dice_no_tta"),
    ("command", "command defaults (flip TTA)", "dice"),
)


def _row(name, method, results, key="dice"):
    dice = [r[key] for r in results]
    spread = statistics.stdev(dice) if len(dice) > 1 else 0.0
    seconds = [r["seconds"] for r in results if "seconds" in r and key == "dice"]
    timing = f"{statistics.mean(seconds):.0f} s" if seconds else ""
    values = " / ".join(f"{d:.3f}" for d in dice)
    return (
        f"| {name} | {method} | {statistics.mean(dice):.3f} ± {spread:.3f} | {values} | {timing} |"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["command", "plain", "otsu"],
        choices=("command", "plain", "otsu"),
    )
    parser.add_argument("--extra", default="", help="more `train` arguments, one string")
    parser.add_argument("--json", default=None, help="also write every result here")
    parser.add_argument("--no-demo", dest="demo", action="store_false", help="skip the demo")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    rows, everything = [], {}
    if args.demo:
        everything["demo_seconds"] = run_demo()
        print(f"keras-unet-seg demo: {everything['demo_seconds']:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as work:
        roots, results = {}, {}
        for name in args.datasets:
            roots[name] = DATASETS[name](os.path.join(work, name, "data"))
            results[name] = everything[name] = {method: [] for method in args.methods}
        for seed in args.seeds:  # every dataset for a seed, then the next seed
            for name, root in roots.items():
                done = results[name]
                if "command" in args.methods:
                    folder = os.path.join(work, name)
                    done["command"].append(run_command(root, seed, args.extra.split(), folder))
                    budget = done["command"][-1]
                else:
                    budget = {"steps": 250, "batch_size": 4}
                if "plain" in args.methods:
                    done["plain"].append(
                        run_plain(root, seed, budget["steps"], budget["batch_size"])
                    )
                if "otsu" in args.methods:
                    done["otsu"].append(run_otsu(root, seed))
                print(name, seed, {m: r[-1] for m, r in done.items()}, os.getloadavg(), flush=True)
    for name in args.datasets:
        rows += [
            _row(name, label, results[name][method], key)
            for method, label, key in ROWS
            if method in results[name]
        ]
    print(f"load average after: {os.getloadavg()}")
    print("\n| dataset | method | Dice (mean ± sd) | seeds | time |\n|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(everything, f, indent=1)


if __name__ == "__main__":
    main()
