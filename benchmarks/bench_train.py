"""UNet training and inference speed and memory at float32 and mixed_bfloat16, with and without XLA.

Every configuration (size x precision x XLA x train/inference) runs in a
worker process of its own, so that each one's peak memory (the resident set
high-water mark, `ru_maxrss`) is its own; the workers take turns, one timed
round each, for `--rounds` rounds, and the table shows medians, so drift on
the machine hits every configuration alike. A float32 and a bfloat16 matmul
(n x n, `--matmul-size`) are timed in the same rounds: the practical ceiling
that the achieved GFLOP/s of the U-Net are compared with. FLOPs are counted
analytically from the convolutions' shapes (`keras_unet_seg.performance.
estimate_flops`; x3 for a training step). `predict_tiled` on a 2048x2048
image runs in the inference workers, tiles of the model's size, overlap 0.25.

    python benchmarks/bench_train.py                      # 256x256/64 and 128x128/32
    python benchmarks/bench_train.py --quick              # a tiny smoke run
    python benchmarks/bench_train.py --sizes 256x64 --rounds 5 --json out.json

Options choose the backend (`--backend jax`), the sizes (`HxF`: image side x
base filters), batch size, rounds, TensorFlow's thread pools and what to skip.
Run it on a quiet machine (the script prints the load average before and
after).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PRECISIONS = ("float32", "mixed_bfloat16")


# --------------------------------------------------------------------------- worker


def _rss_mib():
    import resource

    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _current_rss_mib():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def _configure_threads(spec):
    if spec["backend"] == "tensorflow" and (spec.get("intra_op") or spec.get("inter_op")):
        import tensorflow as tf

        if spec.get("intra_op"):
            tf.config.threading.set_intra_op_parallelism_threads(spec["intra_op"])
        if spec.get("inter_op"):
            tf.config.threading.set_inter_op_parallelism_threads(spec["inter_op"])


def _matmul_runner(spec):
    """Returns a callable timing one n x n matmul of the spec's dtype, synchronously."""
    import numpy as np

    n, dtype = spec["matmul_size"], spec["dtype"]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype="float32")
    b = rng.standard_normal((n, n), dtype="float32")
    backend = spec["backend"]
    if backend == "tensorflow":
        import tensorflow as tf

        a, b = tf.cast(a, dtype), tf.cast(b, dtype)
        fn = tf.function(tf.linalg.matmul, jit_compile=False)
        return lambda: fn(a, b).numpy()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        a, b = jnp.asarray(a, dtype), jnp.asarray(b, dtype)
        fn = jax.jit(jnp.matmul)
        return lambda: fn(a, b).block_until_ready()
    import torch

    a = torch.from_numpy(a).to(getattr(torch, dtype))
    b = torch.from_numpy(b).to(getattr(torch, dtype))
    return lambda: torch.matmul(a, b)


def _model_runner(spec):
    import keras
    import numpy as np

    from keras_unet_seg import UNet
    from keras_unet_seg.inference import predict_tiled

    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy(spec["precision"])
    size, batch = spec["size"], spec["batch_size"]
    normalization = None if spec["normalization"] == "none" else spec["normalization"]
    model = UNet(base_filters=spec["filters"], normalization=normalization)
    model.build((None, size, size, 3))
    keras.config.set_dtype_policy("float32")
    rng = np.random.default_rng(0)
    images = rng.random((batch, size, size, 3), dtype="float32")
    masks = (images[..., :1] > 0.5).astype("float32")
    if spec["mode"] == "train":
        model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=spec["jit"])
        step = lambda: model.train_on_batch(images, masks)  # noqa: E731
    else:
        model.jit_compile = spec["jit"]
        step = lambda: model.predict_on_batch(images)  # noqa: E731
    step()  # trace, compile, allocate
    step()
    runners = {"step": step}
    if spec["mode"] == "infer" and spec.get("tiled"):
        big = rng.random((2048, 2048, 3), dtype="float32")

        def tiled():
            predict_tiled(model, big, tile_size=size, overlap=0.25, batch_size=batch, verbose=0)

        # Its batches have the step's shape, compiled above: no warm-up pass.
        runners["tiled"] = tiled
    return runners


def worker_main(spec):
    """Serves timing requests on stdin/stdout, one JSON object a line."""
    _configure_threads(spec)
    baseline = _current_rss_mib()
    if spec["mode"] == "matmul":
        runners = {"step": _matmul_runner(spec)}
        runners["step"]()
    else:
        runners = _model_runner(spec)  # warms its step up
    print(json.dumps({"ready": True, "baseline_mib": baseline}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        if request["op"] == "rss":
            print(json.dumps({"peak_mib": _rss_mib()}), flush=True)
            continue
        run, times = runners[request["op"]], []
        for _ in range(request["repeats"]):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        print(json.dumps({"seconds": times}), flush=True)


# --------------------------------------------------------------------------- coordinator


class Worker:
    def __init__(self, spec):
        self.spec = spec
        env = dict(os.environ, KERAS_BACKEND=spec["backend"], TF_CPP_MIN_LOG_LEVEL="2")
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--_worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if not spec.get("verbose") else None,
            text=True,
            env=env,
        )
        self.baseline_mib = None

    def _reply(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(
                f"worker {self.spec} died (rc={self.process.wait()}); rerun with --verbose"
            )
        return json.loads(line)

    def wait_ready(self):
        self.baseline_mib = self._reply()["baseline_mib"]

    def ask(self, op, repeats=1):
        self.process.stdin.write(json.dumps({"op": op, "repeats": repeats}) + "\n")
        self.process.stdin.flush()
        return self._reply()

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)


def _load():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _jit_options(text):
    return {"off": [False], "on": [True], "both": [False, True]}[text]


def _run_size(args, size, filters, flops_fwd, log):
    """Times every configuration of one model size, interleaved; returns rows."""
    common = {
        "backend": args.backend,
        "size": size,
        "filters": filters,
        "batch_size": args.batch_size,
        "normalization": args.normalization,
        "intra_op": args.intra_op,
        "inter_op": args.inter_op,
        "verbose": args.verbose,
    }
    configs = [(precision, jit) for precision in args.precisions for jit in _jit_options(args.jit)]
    modes = [m for m, skip in (("train", args.no_train), ("infer", args.no_infer)) if not skip]
    measured = {}
    # One phase a mode, so that only one mode's workers hold memory at a time.
    for mode in modes:
        measured.update(_time_mode(args, common, configs, mode, log))
    return [_row(args, size, filters, flops_fwd, config, measured) for config in configs]


def _time_mode(args, common, configs, mode, log):
    """Runs one mode's workers side by side; returns {key: (times, peak, baseline)}."""
    workers = {}
    for precision, jit in configs:
        spec = dict(common, precision=precision, jit=jit, mode=mode, tiled=not args.no_tiled)
        workers[precision, jit, mode] = Worker(spec)
    for key, worker in workers.items():
        start = time.perf_counter()
        worker.wait_ready()
        log(f"  ready {key} in {time.perf_counter() - start:.0f}s")
    times = {key: {"step": [], "tiled": []} for key in workers}
    steps = args.train_steps if mode == "train" else args.infer_steps
    for round_index in range(args.rounds):
        for key, worker in workers.items():
            times[key]["step"] += worker.ask("step", steps)["seconds"]
            if mode == "infer" and not args.no_tiled and round_index < args.tiled_rounds:
                times[key]["tiled"] += worker.ask("tiled")["seconds"]
        log(f"  {mode} round {round_index + 1}/{args.rounds} done (load {_load()})")
    measured = {}
    for key, worker in workers.items():
        measured[key] = (times[key], worker.ask("rss")["peak_mib"], worker.baseline_mib)
        worker.close()
    return measured


def _row(args, size, filters, flops_fwd, config, measured):
    precision, jit = config
    row = {"size": size, "filters": filters, "precision": precision, "jit": jit}
    for mode, factor in (("train", 3), ("infer", 1)):
        if (precision, jit, mode) not in measured:
            continue
        times, peak, baseline = measured[precision, jit, mode]
        step = statistics.median(times["step"])
        row[f"{mode}_img_s"] = args.batch_size / step
        row[f"{mode}_gflop_s"] = factor * flops_fwd * args.batch_size / step / 1e9
        row[f"{mode}_peak_mib"] = peak
        row[f"{mode}_baseline_mib"] = baseline
        row[f"{mode}_samples"] = len(times["step"])
        if mode == "infer" and times["tiled"]:
            row["tiled_s"] = statistics.median(times["tiled"])
    return row


def _time_matmuls(args, log):
    results = {}
    for dtype in ("float32", "bfloat16"):
        spec = {
            "backend": args.backend,
            "mode": "matmul",
            "dtype": dtype,
            "matmul_size": args.matmul_size,
            "intra_op": args.intra_op,
            "inter_op": args.inter_op,
        }
        worker = Worker(spec)
        worker.wait_ready()
        seconds = worker.ask("step", args.matmul_repeats)["seconds"]
        worker.close()
        results[dtype] = 2 * args.matmul_size**3 / statistics.median(seconds) / 1e9
        log(f"  matmul {dtype}: {results[dtype]:.0f} GFLOP/s")
    return results


def _auto_table(rows):
    """What `precision="auto"` and `resolve_jit_compile("auto")` pick here, and what it gains."""
    from keras_unet_seg.performance import resolve_jit_compile, resolve_precision

    lines = [
        "| model | auto picks for training | speedup over float32 | "
        "auto picks for inference | speedup over float32 |",
        "|---|---|---:|---|---:|",
    ]
    sizes = sorted({(row["size"], row["filters"]) for row in rows}, reverse=True)
    for size, filters in sizes:
        cells = [f"{size}x{size}, {filters} filters"]
        for mode, training in (("train", True), ("infer", False)):
            precision = resolve_precision("auto", base_filters=filters, training=training)
            jit = resolve_jit_compile("auto", training=training)
            pick = next(
                (
                    r
                    for r in rows
                    if (r["size"], r["filters"], r["precision"], r["jit"])
                    == (size, filters, precision, jit)
                ),
                None,
            )
            bases = [
                r
                for r in rows
                if (r["size"], r["filters"], r["precision"]) == (size, filters, "float32")
            ]
            base = min(bases, key=lambda r: r["jit"], default=None)
            cells.append(f"{precision}, XLA {'on' if jit else 'off'}")
            key = f"{mode}_img_s"
            if pick and base and key in pick and key in base:
                cells.append(f"{pick[key] / base[key]:.2f}x")
            else:
                cells.append("not measured")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _markdown(rows, matmul, args):
    lines = [
        f"Backend {args.backend}, batch {args.batch_size}, normalization {args.normalization}, "
        f"medians of {args.rounds} rounds "
        f"(train {args.train_steps} and inference {args.infer_steps} steps a round). "
        f"Matmul ceiling ({args.matmul_size}x{args.matmul_size}): "
        f"float32 {matmul['float32']:.0f} GFLOP/s, bfloat16 {matmul['bfloat16']:.0f} GFLOP/s.",
        "",
        "| model | precision | XLA | train img/s | train GFLOP/s (% of matmul) | train peak RSS "
        "| infer img/s | infer GFLOP/s (% of matmul) | infer peak RSS | tiled 2048² s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = {}
    for row in rows:  # float32 without XLA, or with it when that is all there is
        if row["precision"] == "float32":
            key = (row["size"], row["filters"])
            if key not in base or base[key]["jit"]:
                base[key] = row
    for row in rows:
        ref = base.get((row["size"], row["filters"]))
        ceiling = matmul["bfloat16" if "bfloat16" in row["precision"] else "float32"]
        cells = [f"{row['size']}x{row['size']}, {row['filters']} filters", row["precision"]]
        cells.append("on" if row["jit"] else "off")
        for mode in ("train", "infer"):
            if f"{mode}_img_s" not in row:
                cells += ["-", "-", "-"]
                continue
            rate = f"{row[f'{mode}_img_s']:.2f}"
            if ref is not None and ref is not row and f"{mode}_img_s" in ref:
                rate += f" ({row[f'{mode}_img_s'] / ref[f'{mode}_img_s']:.2f}x)"
            gflops = row[f"{mode}_gflop_s"]
            cells.append(rate)
            cells.append(f"{gflops:.0f} ({100 * gflops / ceiling:.0f}%)")
            cells.append(f"{row[f'{mode}_peak_mib'] / 1024:.2f} GiB")
        cells.append(f"{row['tiled_s']:.1f}" if "tiled_s" in row else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Speedups in brackets are against float32 without XLA at the same size (with XLA "
        "when only that was run). "
        "GFLOP/s count the convolutions (x3 for training), against the float32 matmul "
        "for float32 rows and the bfloat16 matmul for bfloat16 rows."
    )
    return "\n".join(lines)


def _accuracy(args, log):
    """Trains the same U-Net at float32 and at the `auto` precision; returns validation Dice."""
    import tempfile

    import keras
    import numpy as np

    from keras_unet_seg import UNet
    from keras_unet_seg.data import SegmentationDataset, make_synthetic_dataset
    from keras_unet_seg.losses import BCEDiceLoss
    from keras_unet_seg.metrics import DiceCoefficient
    from keras_unet_seg.performance import resolve_precision, set_precision

    filters, size = args.accuracy_filters, 64
    auto = resolve_precision("auto", base_filters=filters)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        root = make_synthetic_dataset(folder, num_train=64, num_val=32, image_size=(size, size))
        for precision in dict.fromkeys(("float32", auto)):
            keras.utils.set_random_seed(0)
            # New datasets for each run: the same shuffled order, epoch by epoch.
            train = SegmentationDataset.from_directory(
                root, "train", image_size=(size, size), batch_size=8, seed=0, verbose=False
            )
            val = SegmentationDataset.from_directory(
                root, "val", image_size=(size, size), batch_size=16, shuffle=False, verbose=False
            )
            set_precision(precision)
            model = UNet(base_filters=filters, depth=3)
            set_precision("float32")
            model.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss=BCEDiceLoss(),
                metrics=[DiceCoefficient(name="dice")],
            )
            start = time.perf_counter()
            history = model.fit(
                train, validation_data=val, epochs=args.accuracy_epochs, verbose=0
            ).history
            seconds = time.perf_counter() - start
            dice = history["val_dice"]
            results[precision] = {
                "val_dice": dice,
                "last3": float(np.mean(dice[-3:])),
                "seconds": seconds,
            }
            log(f"  {precision}: val Dice {dice[-1]:.4f} (last 3: {np.mean(dice[-3:]):.4f})")
    lines = [
        f"Accuracy: UNet(base_filters={filters}, depth=3), synthetic {size}x{size}, 64 training "
        f"and 32 validation images, Adam 1e-3, BCE+Dice, {args.accuracy_epochs} epochs; "
        f"`auto` picks {auto} here.",
        "",
        "| precision | validation Dice (last epoch) | mean of last 3 epochs | training time |",
        "|---|---:|---:|---:|",
    ]
    for precision, result in results.items():
        lines.append(
            f"| {precision} | {result['val_dice'][-1]:.4f} | {result['last3']:.4f} "
            f"| {result['seconds']:.0f} s |"
        )
    if len(results) == 2:
        gap = abs(results[auto]["last3"] - results["float32"]["last3"])
        lines += ["", f"Difference (mean of last 3 epochs): {gap:.4f} (target: below 0.01)."]
    return "\n".join(lines), results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument(
        "--sizes", default="256x64,128x32", help="comma-separated HxF: image side x base filters"
    )
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--jit", choices=("off", "on", "both"), default="both")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--normalization", default="batch", help="UNet normalization: batch, group, none, ..."
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=1, help="timed steps a round")
    parser.add_argument("--infer-steps", type=int, default=2, help="timed steps a round")
    parser.add_argument("--tiled-rounds", type=int, default=2)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--no-infer", action="store_true")
    parser.add_argument("--no-tiled", action="store_true")
    parser.add_argument("--matmul-size", type=int, default=4096)
    parser.add_argument("--matmul-repeats", type=int, default=5)
    parser.add_argument("--intra-op", type=int, default=0, help="TF intra-op threads (0: TF's)")
    parser.add_argument("--inter-op", type=int, default=0, help="TF inter-op threads (0: TF's)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, two rounds")
    parser.add_argument(
        "--accuracy",
        action="store_true",
        help="instead of timing, train at float32 and at the auto precision and compare Dice",
    )
    parser.add_argument("--accuracy-filters", type=int, default=16)
    parser.add_argument("--accuracy-epochs", type=int, default=10)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    args = parser.parse_args(argv)
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if args.quick:
        args.sizes, args.rounds, args.tiled_rounds = "64x8", 2, 1
        args.batch_size, args.matmul_size, args.matmul_repeats = 2, 512, 3
    args.size_list = []
    for item in args.sizes.split(","):
        size, filters = item.lower().split("x")
        args.size_list.append((int(size), int(filters)))
    return args


def main(argv=None):
    args = parse_args(argv)
    if args._worker:
        worker_main(json.loads(args._worker))
        return

    def log(message):
        print(message, file=sys.stderr, flush=True)

    os.environ["KERAS_BACKEND"] = args.backend
    if args.accuracy:
        log(f"load average before: {_load()}")
        table, results = _accuracy(args, log)
        print(table)
        print(
            f"\nLoad average after {_load()}. Command: python benchmarks/bench_train.py "
            + " ".join(sys.argv[1:] if argv is None else argv)
        )
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        return
    from keras_unet_seg import UNet
    from keras_unet_seg.performance import estimate_flops

    load_before = _load()
    log(f"load average before: {load_before}")
    started = time.perf_counter()
    matmul = _time_matmuls(args, log)
    rows = []
    for size, filters in args.size_list:
        flops = estimate_flops(UNet(base_filters=filters), (1, size, size, 3))
        log(f"{size}x{size}, {filters} filters: {flops / 1e9:.1f} GFLOP a forward pass")
        rows += _run_size(args, size, filters, flops, log)
    matmul_after = _time_matmuls(args, log)
    matmul = {k: max(matmul[k], matmul_after[k]) for k in matmul}
    print(_markdown(rows, matmul, args))
    print()
    print(_auto_table(rows))
    print()
    print(
        f"Load average before {load_before}, after {_load()}; "
        f"{time.perf_counter() - started:.0f} s in all. Command: python benchmarks/bench_train.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "matmul": matmul, "args": vars(args)}, f, indent=1)


if __name__ == "__main__":
    main()
