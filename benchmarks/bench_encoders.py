"""Every named encoder in a `UNet`: parameters, forward GFLOPs, train and inference img/s.

For each name of `keras_unet_seg.encoders.available()` (or those given), builds
`UNet(encoder=name)` (random weights, the default decoder) and reports its
parameters (the encoder's among them) and the forward GFLOPs of one image at
`--size` (`estimate_flops`). With `--timed`, the listed names are also timed on
this machine: compiled inference (`predict_on_batch`) and training
(`train_on_batch`, Adam, binary cross-entropy) of batches of `--batch-size`
images, medians of `--repeats` steps after one warm-up step each.

With `--check FOLDER`, each model is also run at `--size` and at 100x75 (the
output must match the input size), saved to FOLDER, and at the end one fresh
process loads every saved model with `safe_mode=True` and compares its outputs
with the originals (the full-breadth version of the tests).

    python benchmarks/bench_encoders.py [--names resnet50 ...] [--timed resnet50 ...|all]
        [--size 256] [--batch-size 4] [--repeats 5] [--check FOLDER] [--json out.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np

from keras_unet_seg import UNet, encoders
from keras_unet_seg.performance import estimate_flops

_LOADER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import keras_unet_seg
    failures = []
    for path in sys.argv[1:]:
        model = keras.models.load_model(path, safe_mode=True)
        actual = keras.ops.convert_to_numpy(model(np.load(path + ".in.npy")))
        if not np.array_equal(actual, np.load(path + ".out.npy")):
            failures.append(path)
        print("loaded", path, flush=True)
    print("mismatches:", failures)
    sys.exit(1 if failures else 0)
    """
)


def _median_seconds(step, repeats):
    step()  # warm-up: tracing and compilation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name, size, batch_size, repeats, timed, check_dir):
    model = UNet(encoder=name)
    model.build((None, size, size, 3))
    row = {
        "name": name,
        "params": model.count_params(),
        "encoder_params": model.encoder.count_params(),
        "gflops": estimate_flops(model, (1, size, size, 3)) / 1e9,
    }
    rng = np.random.default_rng(0)
    if check_dir is not None:
        for height, width in ((size, size), (100, 75)):
            out = model(rng.random((1, height, width, 3)).astype("float32"))
            if tuple(out.shape) != (1, height, width, 1):
                raise AssertionError(f"{name}: output {tuple(out.shape)} at {height}x{width}")
        path = os.path.join(check_dir, f"{name}.keras")
        images = rng.random((1, 100, 75, 3)).astype("float32")
        model.save(path)
        np.save(path + ".in.npy", images)
        np.save(path + ".out.npy", keras.ops.convert_to_numpy(model(images)))
        row["checked"] = path
    if timed:
        images = rng.random((batch_size, size, size, 3)).astype("float32")
        masks = (images[..., :1] > 0.5).astype("float32")
        infer = _median_seconds(lambda: model.predict_on_batch(images), repeats)
        model.compile(optimizer="adam", loss="binary_crossentropy")
        train = _median_seconds(lambda: model.train_on_batch(images, masks), repeats)
        row["infer_img_s"] = batch_size / infer
        row["train_img_s"] = batch_size / train
    keras.backend.clear_session()
    return row


def _format(row):
    timed = f"{row['train_img_s']:8.2f} {row['infer_img_s']:8.2f}" if "train_img_s" in row else ""
    return (
        f"{row['name']:<18} {row['params'] / 1e6:8.1f} {row['encoder_params'] / 1e6:8.1f} "
        f"{row['gflops']:8.1f} {timed}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", nargs="*", default=None, help="encoders (default: all)")
    parser.add_argument("--timed", nargs="*", default=[], help="encoders to time, or 'all'")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check", default=None, metavar="FOLDER")
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args()
    names = args.names or list(encoders.available())
    timed = set(names if args.timed == ["all"] else args.timed)
    if args.check:
        os.makedirs(args.check, exist_ok=True)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, {args.size}x{args.size}")
    print(
        f"{'encoder':<18} {'params M':>8} {'enc. M':>8} {'GFLOPs':>8} {'train/s':>8} {'infer/s':>8}"
    )
    rows = []
    for name in names:
        row = measure(name, args.size, args.batch_size, args.repeats, name in timed, args.check)
        rows.append(row)
        print(_format(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.check:
        paths = [row["checked"] for row in rows]
        script = os.path.join(args.check, "load.py")
        with open(script, "w") as f:
            f.write(_LOADER)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, script, *paths], check=False)
        print(
            f"fresh-process load of {len(paths)} models: exit {proc.returncode}, "
            f"{time.perf_counter() - start:.0f} s"
        )
        sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
