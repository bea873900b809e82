"""3D UNet speed and peak memory, float32 against mixed_bfloat16, training and inference.

A 3D `UNet` (`--filters` base filters, depth 4 by default, batch normalization) on
cubes of `--size` voxels a side, one channel, one class: a training step
(`train_on_batch`, Adam, binary cross-entropy) and an inference step
(`predict_on_batch`, a batch of patches as sliding-window inference gives them).
Each of the four configurations (train/inference x precision) runs in a process of
its own, so that its peak memory is its own: the resident set high-water mark of
the process (`resource.getrusage(RUSAGE_SELF).ru_maxrss`: the framework, the model,
its optimizer state and the batch together, on the host; on a GPU the device's
memory is not in it), and that peak above the process's resident set once the
framework is imported (`/proc/self/statm`), which the precisions compare. Each
worker warms up with two steps (trace, compile, allocate), then times `--steps`
steps; the table shows the median step, voxels a second, and bfloat16's ratios to
float32.

    python benchmarks/bench_volumes.py                          # 96^3, 32 filters
    python benchmarks/bench_volumes.py --size 48 --filters 16   # a small CPU run
    python benchmarks/bench_volumes.py --json out.json

On a CPU without native bfloat16 (no AVX512_BF16 or AMX), mixed_bfloat16 is
emulated and slower than float32; its memory saving (activations in half the
bytes) shows anyway. Run on a quiet machine: the script prints the load average.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PRECISIONS = ("float32", "mixed_bfloat16")
MODES = ("train", "infer")


def _peak_rss_mib():
    import resource

    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _current_rss_mib():
    with open("/proc/self/statm") as file:  # Linux
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(spec):
    """Times one configuration; prints one JSON line."""
    import keras
    import numpy as np

    from keras_unet_seg import UNet

    baseline = _current_rss_mib()  # the framework imported, before the model

    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy(spec["precision"])
    size, batch = spec["size"], spec["batch_size"]
    model = UNet(base_filters=spec["filters"], depth=spec["depth"])
    model.build((None, size, size, size, 1))
    rng = np.random.default_rng(0)
    volumes = rng.random((batch, size, size, size, 1), dtype="float32")
    masks = (volumes > 0.5).astype("float32")
    if spec["mode"] == "train":
        model.compile(optimizer="adam", loss="binary_crossentropy")
        step = lambda: model.train_on_batch(volumes, masks)  # noqa: E731
    else:
        step = lambda: model.predict_on_batch(volumes)  # noqa: E731
    start = time.perf_counter()
    step()
    step()
    warmup = time.perf_counter() - start
    times = []
    for _ in range(spec["steps"]):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    result = {
        "step_s": statistics.median(times),
        "warmup_s": warmup,
        "peak_mib": _peak_rss_mib(),
        "baseline_mib": baseline,
        "params": model.count_params(),
        "backend": keras.backend.backend(),
    }
    print(json.dumps(result), flush=True)


def _run(spec):
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(args, results):
    voxels = args.batch_size * args.size**3
    lines = [
        "| step | precision | median step (s) | voxels/s | speed vs float32 "
        "| peak RSS (MiB) | above imports (MiB) | vs float32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        base = results[(mode, "float32")]
        for precision in PRECISIONS:
            r = results[(mode, precision)]
            lines.append(
                f"| {'training' if mode == 'train' else 'inference'} | {precision} "
                f"| {r['step_s']:.3f} | {voxels / r['step_s']:,.0f} "
                f"| {base['step_s'] / r['step_s']:.2f}x | {r['peak_mib']:,.0f} "
                f"| {_above(r):,.0f} | {_above(r) / _above(base):.2f}x |"
            )
    return "\n".join(lines)


def _above(result):
    return result["peak_mib"] - result["baseline_mib"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96, help="patch side (voxels)")
    parser.add_argument("--filters", type=int, default=32, help="base filters")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed steps a configuration")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    print(f"load average before: {os.getloadavg()}, CPUs: {os.cpu_count()}", flush=True)
    results = {}
    for mode in MODES:
        for precision in PRECISIONS:
            spec = dict(vars(args), mode=mode, precision=precision)
            del spec["json"], spec["worker"]
            results[(mode, precision)] = _run(spec)
            print(f"{mode} {precision}: {results[(mode, precision)]}", flush=True)
    first = results[("train", "float32")]
    print(
        f"\n3D UNet {args.size}^3 x {args.batch_size}, {args.filters} base filters, depth "
        f"{args.depth} ({first['params']:,} parameters), backend {first['backend']}, "
        f"median of {args.steps} steps\n"
    )
    print(_table(args, results))
    print(f"\nload average after: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({f"{m} {p}": r for (m, p), r in results.items()}, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
