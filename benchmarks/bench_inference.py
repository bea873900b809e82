"""Inference speed: folded vs unfolded, float32 vs bfloat16 vs int8, Keras vs runtimes.

    KERAS_BACKEND=tensorflow python benchmarks/bench_inference.py
    KERAS_BACKEND=tensorflow python benchmarks/bench_inference.py --train-steps 0
    KERAS_BACKEND=tensorflow python benchmarks/bench_inference.py --tiling-calls

Run by hand, never in CI. The default run trains one `UNet` (64 base filters,
depth 4) briefly with `keras-unet-seg train` on synthetic 256x256 shapes
(`--train-steps` optimizer steps of batch 4; 0: random weights and batch
statistics) and times it in eight ways, side by side: Keras in float32 and
`mixed_bfloat16`, each with batch normalization and folded
(`keras_unet_seg.export.fold_batch_normalization`), the folded float32 model
exported to ONNX and run by ONNX Runtime on the CPU, the same export quantized
to int8 (`export_model(..., quantize={...})`: calibrated on the training
images, its validation Dice against float32 printed) and run by ONNX Runtime,
and the int8 LiteRT export (full-integer quantization) run by the LiteRT
interpreter (`--no-litert` leaves it out). For each it
reports images per second on batches of 256x256 images
(`model.predict_on_batch`, as `predict_tiled` calls it; the best of
`--repeats` rounds, each of which runs every variant once) and the speed-up
over its baseline (the unfolded Keras model of the same precision; float32
for the runtimes) and over the folded `mixed_bfloat16` model, the seconds `predict_tiled`
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
import subprocess
import sys
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


def _trained(args, work):
    """`(model, data folder)`: a UNet trained by `keras-unet-seg train` for
    `--train-steps` steps on synthetic images of the tile's size."""
    from keras_unet_seg.data import make_synthetic_dataset

    data = make_synthetic_dataset(
        os.path.join(work, "data"), num_train=16, num_val=8, image_size=(args.tile,) * 2, seed=0
    )
    if not args.train_steps:
        return _model(args.base_filters, args.depth), data
    run = os.path.join(work, "run")
    script = os.path.join(os.path.dirname(sys.executable), "keras-unet-seg")
    argv = [script, "train", "--data", data, "--out", run, "--base-filters"]
    argv += [str(args.base_filters), "--depth", str(args.depth), "--image-size", str(args.tile)]
    argv += ["--epochs", "1", "--steps-per-epoch", str(args.train_steps), "--batch-size", "4"]
    subprocess.run(argv, check=True, capture_output=True)
    return keras.saving.load_model(os.path.join(run, "best.keras")), data


def _int8(model, data, path, format):
    """The int8 export of `model` (calibrated on `data`'s training images), loaded."""
    written = export_model(
        model, path, format, quantize={"calibration": data, "max_dice_drop": 1.0}, verbose=False
    )
    quality = written["quantization"]["quality"]
    print(
        f"  {format} int8: validation Dice {quality['dice_int8']:.4f} (float32 "
        f"{quality['dice_float32']:.4f}), {quality['mask_pixels_differing_fraction']:.3%} of "
        "the mask pixels differ",
        flush=True,
    )
    return load_exported(path, format)


def compare_variants(args):
    work = tempfile.mkdtemp()
    model, data = _trained(args, work)
    bf16 = with_precision(model, "mixed_bfloat16")
    onnx_path = os.path.join(work, "model.onnx")
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
        "ONNX Runtime int8, folded": (
            _int8(model, data, os.path.join(work, "int8.onnx"), "onnx"),
            "Keras float32",
        ),
    }
    if args.litert:
        int8_litert = _int8(model, data, os.path.join(work, "int8.tflite"), "litert")
        variants["LiteRT int8, folded"] = (int8_litert, "Keras float32")
    rng = np.random.default_rng(1)
    batch = rng.random((args.batch_size, args.tile, args.tile, 3), dtype="float32")
    image = rng.random((args.size, args.size, 3), dtype="float32") if args.size else None
    print(
        f"backend={keras.backend.backend()} UNet(base_filters={args.base_filters}, "
        f"depth={args.depth}) batch={args.batch_size}x{args.tile}x{args.tile} "
        f"tiled image={args.size}x{args.size} cpus={os.cpu_count()} "
        f"load={os.getloadavg()[0]:.1f} trained steps={args.train_steps}"
    )
    rows = [
        (
            "variant",
            f"{args.tile}x{args.tile} img/s",
            "speed-up",
            "vs folded bf16",
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
        bf16_speed = results.get("Keras mixed_bfloat16, folded", (None,))[0]
        rows.append(
            (
                name,
                f"{args.batch_size / seconds:.2f}",
                f"{args.batch_size / seconds / base_speed:.2f}x" if baseline else "",
                f"{args.batch_size / seconds / bf16_speed:.2f}x" if bf16_speed else "",
                f"{tiled_seconds:.1f}" if args.size else "-",
                f"{max(np.abs(a - b).max() for a, b in zip(outputs, reference, strict=True)):.1e}",
                str(_mask_differences(outputs, reference)),
                str(_mask_differences(outputs, base_outputs)) if baseline else "",
            )
        )
        print(f"  {name}: done", flush=True)
    print(f"load average after: {os.getloadavg()}")
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
    parser.add_argument(
        "--train-steps", type=int, default=20, help="training steps (0: random weights)"
    )
    parser.add_argument(
        "--no-litert", dest="litert", action="store_false", help="leave out LiteRT int8"
    )
    parser.add_argument("--tiling-calls", action="store_true", help="see the module docstring")
    args = parser.parse_args()
    if args.tiling_calls:
        compare_tiling_calls(args)
    else:
        compare_variants(args)


if __name__ == "__main__":
    main()
