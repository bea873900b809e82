"""Inference speed: folded vs unfolded, float32 vs bfloat16, Keras vs ONNX Runtime.

    KERAS_BACKEND=tensorflow python benchmarks/bench_inference.py
    KERAS_BACKEND=tensorflow python benchmarks/bench_inference.py --tiling-calls

Run by hand, never in CI. The default run times one `UNet` (64 base filters,
depth 4, random weights and batch statistics) in five ways, side by side:
Keras in float32 and `mixed_bfloat16`, each with batch normalization and
folded (`keras_unet_seg.export.fold_batch_normalization`), and the folded
float32 model exported to ONNX and run by ONNX Runtime on the CPU. For each it
reports images per second on batches of 256x256 images
(`model.predict_on_batch`, as `predict_tiled` calls it; the best of
`--repeats` rounds, each of which runs every variant once) and the speed-up
over its baseline (the unfolded Keras model of the same precision; float32
for ONNX Runtime), the seconds `predict_tiled`
takes on a 2048x2048 image (256x256 tiles, overlap 0.25, batches of
`--batch-size`), the largest difference of the probabilities from float32
with batch normalization, and the mask pixels (threshold 0.5, on the batch and
the tiled image together) that differ from it and from the baseline.

`--tiling-calls` instead compares the two ways `predict_tiled` can call a
Keras model (`predict_on_batch` and a plain `model(x, training=False)`) at
several tile batch sizes, and reports the peak resident memory.
"""

import argparse
import os
import resource
import tempfile
import time

import keras
import numpy as np

from keras_unet_seg import UNet
from keras_unet_seg.export import export_model, fold_batch_normalization, load_exported
from keras_unet_seg.inference import predict_tiled
from keras_unet_seg.performance import with_precision


def _timed(function, repeats):
    function()  # warm-up: tracing / compilation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def _model(base_filters, depth):
    keras.utils.set_random_seed(0)
    model = UNet(num_classes=1, base_filters=base_filters, depth=depth)
    model.build((None, None, None, 3))
    rng = np.random.default_rng(0)  # batch statistics away from their initial values
    for variable in model.weights:
        name = variable.path.rsplit("/", 1)[-1]
        if name in ("moving_mean", "beta"):
            variable.assign(rng.normal(0.0, 0.2, variable.shape))
        elif name in ("moving_variance", "gamma"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape))
    return model


def compare_variants(args):
    model = _model(args.base_filters, args.depth)
    bf16 = with_precision(model, "mixed_bfloat16")
    onnx_path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    export_model(model, onnx_path, "onnx", verbose=False)
    folded = fold_batch_normalization(model)
    folded_bf16 = fold_batch_normalization(bf16)
    # name: (function, the variant it is compared with for speed-up and masks)
    variants = {
        "Keras float32": (model.predict_on_batch, None),
        "Keras float32, folded": (folded.predict_on_batch, "Keras float32"),
        "Keras mixed_bfloat16": (bf16.predict_on_batch, None),
        "Keras mixed_bfloat16, folded": (folded_bf16.predict_on_batch, "Keras mixed_bfloat16"),
        "ONNX Runtime float32, folded": (load_exported(onnx_path, "onnx"), "Keras float32"),
    }
    rng = np.random.default_rng(1)
    batch = rng.random((args.batch_size, args.tile, args.tile, 3), dtype="float32")
    image = rng.random((args.size, args.size, 3), dtype="float32") if args.size else None
    print(
        f"backend={keras.backend.backend()} UNet(base_filters={args.base_filters}, "
        f"depth={args.depth}) batch={args.batch_size}x{args.tile}x{args.tile} "
        f"tiled image={args.size}x{args.size} cpus={os.cpu_count()} "
        f"load={os.getloadavg()[0]:.1f}"
    )
    rows = [
        (
            "variant",
            f"{args.tile}x{args.tile} img/s",
            "speed-up",
            f"{args.size}x{args.size} tiled s" if args.size else "tiled s",
            "max abs diff from float32",
            "mask px differing from float32",
            "mask px differing from its baseline",
        )
    ]
    # Interleaved rounds, so that drift on the machine hits every variant alike.
    for run, _ in variants.values():
        run(batch)  # warm-up: tracing / compilation
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, (run, _) in variants.items():
            start = time.perf_counter()
            run(batch)
            times[name].append(time.perf_counter() - start)
    results = {}
    for name, (run, baseline) in variants.items():
        seconds = min(times[name])
        tiled_seconds = float("nan")
        outputs = (np.asarray(run(batch), dtype=np.float32),)
        if args.size:
            start = time.perf_counter()
            tiled = predict_tiled(run, image, args.tile, 0.25, batch_size=args.batch_size)
            tiled_seconds = time.perf_counter() - start
            outputs += (tiled,)
        results[name] = (args.batch_size / seconds, outputs)
        reference = results["Keras float32"][1]
        base_speed, base_outputs = results[baseline] if baseline else (None, None)
        rows.append(
            (
                name,
                f"{args.batch_size / seconds:.2f}",
                f"{args.batch_size / seconds / base_speed:.2f}x" if baseline else "",
                f"{tiled_seconds:.1f}" if args.size else "-",
                f"{max(np.abs(a - b).max() for a, b in zip(outputs, reference, strict=True)):.1e}",
                str(_mask_differences(outputs, reference)),
                str(_mask_differences(outputs, base_outputs)) if baseline else "",
            )
        )
        print(f"  {name}: done", flush=True)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def _mask_differences(outputs, reference):
    return sum(
        int(np.count_nonzero((a >= 0.5) != (b >= 0.5)))
        for a, b in zip(outputs, reference, strict=True)
    )


def compare_tiling_calls(args):
    keras.utils.set_random_seed(0)
    model = UNet(num_classes=1, base_filters=8, depth=3)
    model.build((None, None, None, 3))
    image = np.random.default_rng(0).random((args.size, args.size, 3), dtype="float32")
    print(
        f"backend={keras.backend.backend()} image={image.shape} tile={args.tile} "
        "UNet(base_filters=8, depth=3)"
    )

    def call(x):
        return model(x, training=False)

    for batch_size in (1, 4, 8):
        for name, runner in (("predict_on_batch", model), ("model(x)", call)):
            seconds = _timed(
                lambda runner=runner, batch_size=batch_size: predict_tiled(
                    runner, image, args.tile, 0.25, batch_size=batch_size
                ),
                args.repeats,
            )
            print(f"batch_size={batch_size:2d} {name:17s} {seconds:7.2f} s")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of the process: {peak_mib:.0f} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, default=2048, help="side of the tiled image (0: no tiled image)"
    )
    parser.add_argument("--tile", type=int, default=256, help="side of the images and tiles")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--base-filters", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiling-calls", action="store_true", help="see the module docstring")
    args = parser.parse_args()
    if args.tiling_calls:
        compare_tiling_calls(args)
    else:
        compare_variants(args)


if __name__ == "__main__":
    main()
