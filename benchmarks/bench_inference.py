"""Time and memory of `predict_tiled` on a large image. Run by hand, never in CI.

    KERAS_BACKEND=tensorflow python benchmarks/bench_inference.py --size 2048 --tile 256

Compares the two ways of running the model on a batch of tiles:
`model.predict_on_batch` (what `predict_tiled` uses for Keras models) and a
plain `model(x, training=False)` call (what it uses for other callables), and
reports the peak resident memory of the process.
"""

import argparse
import resource
import time

import keras
import numpy as np

from keras_unet_seg import UNet
from keras_unet_seg.inference import predict_tiled


def _timed(function, repeats):
    function()  # warm-up: tracing / compilation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--base-filters", type=int, default=8)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--tta", action="store_true")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    model = UNet(num_classes=1, base_filters=args.base_filters, depth=args.depth)
    model.build((None, None, None, 3))
    image = np.random.default_rng(0).random((args.size, args.size, 3), dtype="float32")
    print(
        f"backend={keras.backend.backend()} image={image.shape} tile={args.tile} "
        f"overlap={args.overlap} UNet(base_filters={args.base_filters}, depth={args.depth}) "
        f"tta={args.tta}"
    )

    def call(x):
        return model(x, training=False)

    for batch_size in args.batch_sizes:
        for name, runner in (("predict_on_batch", model), ("model(x)", call)):
            seconds = _timed(
                lambda runner=runner, batch_size=batch_size: predict_tiled(
                    runner, image, args.tile, args.overlap, batch_size=batch_size, tta=args.tta
                ),
                args.repeats,
            )
            print(f"batch_size={batch_size:2d} {name:17s} {seconds:7.2f} s")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of the process: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
