"""Time to the first training step of `fit`, with the optimizer built before `fit` or not.

Keras' TensorFlow trainer (without a distribution strategy) makes the optimizer's
variables while it traces the training step, which makes TensorFlow trace the step
a second time; `train_run` (and the `train` command) build the optimizer first.
Each configuration runs in a fresh process of its own (tracing caches nothing
between processes), the two alternating for `--rounds` rounds; the medians and
their ratio are printed.

    python benchmarks/bench_first_step.py                  # the default UNet, 128x128
    python benchmarks/bench_first_step.py --base-filters 8 --depth 2 --rounds 5
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _worker(options):
    import numpy as np

    from keras_unet_seg import DiceLoss, UNet

    rng = np.random.default_rng(0)
    size, batch = options["size"], options["batch_size"]
    x = rng.random((batch, size, size, 3), dtype="float32")
    y = (rng.random((batch, size, size, 1)) > 0.5).astype("float32")
    model = UNet(base_filters=options["base_filters"], depth=options["depth"])
    model.build((None, None, None, 3))
    model.compile(optimizer="adam", loss=DiceLoss())
    started = time.perf_counter()
    if options["build_optimizer"]:
        model.optimizer.build(model.trainable_variables)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    print(json.dumps({"seconds": time.perf_counter() - started}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--base-filters", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(json.loads(args.worker))
    print(f"load average before: {os.getloadavg()}")
    times = {False: [], True: []}
    for _ in range(args.rounds):
        for built in times:
            options = {**vars(args), "build_optimizer": built, "worker": None}
            result = subprocess.run(
                [sys.executable, __file__, "--worker", json.dumps(options)],
                capture_output=True,
                text=True,
                check=True,
            )
            times[built].append(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])
    median = {built: statistics.median(values) for built, values in times.items()}
    print(
        f"UNet(base_filters={args.base_filters}, depth={args.depth}), {args.size}x"
        f"{args.size}, batch {args.batch_size}, {args.rounds} rounds, time to the end of "
        f"the first step: optimizer built in fit {median[False]:.2f} s, before fit "
        f"{median[True]:.2f} s (ratio {median[False] / median[True]:.2f})"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
