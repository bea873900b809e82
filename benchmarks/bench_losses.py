"""Train-step cost of the segmentation losses and metrics against plain binary cross-entropy.

The same small `UNet` (same initial weights) is compiled three ways and trained on
the same batch:

- `BCE`: `loss="binary_crossentropy"` and no metrics, the baseline;
- `BCEDice`: `loss=BCEDiceLoss()` and no metrics (the loss's share);
- `BCEDice+Dice+IoU`: `loss=BCEDiceLoss()`,
  `metrics=[DiceCoefficient(), IoUScore()]`, the configuration the overhead
  target (< 5%) is about.

Steps are timed in interleaved rounds (every configuration once per round, in a
rotating order), so drift on the machine hits all alike; the table reports the
median over rounds of the mean step time, and the median over rounds of each
configuration's ratio to the baseline's time in the same round (a paired
comparison, steadier than the ratio of the medians on a busy machine).

A second table times the same three configurations on a model that is only a
1x1 convolution: its step is almost all loss and metrics, so the difference to
its `BCE` row is their absolute cost, which the last line divides by the UNet's
`BCE` step (a figure less exposed to timing noise than the UNet ratio itself).

    python benchmarks/bench_losses.py [--size 128] [--batch-size 8] [--rounds 30]
"""

import argparse
import statistics
import time

import keras
import numpy as np

from keras_unet_seg.losses import BCEDiceLoss
from keras_unet_seg.metrics import DiceCoefficient, IoUScore
from keras_unet_seg.models.unet import UNet

CONFIGS = {
    "BCE": lambda: {"loss": "binary_crossentropy"},
    "BCEDice": lambda: {"loss": BCEDiceLoss()},
    "BCEDice+Dice+IoU": lambda: {
        "loss": BCEDiceLoss(),
        "metrics": [DiceCoefficient(), IoUScore()],
    },
}


def time_steps(model, images, masks, steps):
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, masks)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--base-filters", type=int, default=8)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    shape = (args.size, args.size, 3)
    rng = np.random.default_rng(0)
    images = rng.random((args.batch_size, *shape)).astype("float32")
    masks = (images[..., :1] > 0.7).astype("float32")

    def unet():
        return UNet(num_classes=1, base_filters=args.base_filters, depth=args.depth)

    def head():
        inputs = keras.Input(shape)
        outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32")(inputs)
        return keras.Model(inputs, outputs)

    unet_times, params = measure(unet, images, masks, args)
    head_times, _ = measure(head, images, masks, args)

    print(
        f"backend={keras.backend.backend()} UNet(base_filters={args.base_filters}, "
        f"depth={args.depth}) params={params:,} input={args.batch_size}x{args.size}x"
        f"{args.size}x3 rounds={args.rounds}x{args.steps} steps (median of round means)"
    )
    print(
        f"{'configuration':<18} {'UNet ms/step':>13} {'img/s':>7} {'vs BCE':>7}   "
        f"{'1x1-conv ms/step':>16} {'extra ms':>9}"
    )
    base = statistics.median(unet_times["BCE"])
    head_base = statistics.median(head_times["BCE"])
    for name in CONFIGS:
        step = statistics.median(unet_times[name])
        head_step = statistics.median(head_times[name])
        print(
            f"{name:<18} {1000 * step:>13.2f} {args.batch_size / step:>7.1f} "
            f"{paired_ratio(unet_times, name):>7.3f}   {1000 * head_step:>16.2f} "
            f"{1000 * (head_step - head_base):>9.2f}"
        )
    name = "BCEDice+Dice+IoU"
    overhead = paired_ratio(unet_times, name) - 1
    extra = statistics.median(head_times[name]) - head_base
    print(
        f"loss + metrics overhead: {100 * overhead:+.1f}% measured on the UNet step, "
        f"{100 * extra / base:+.1f}% from the 1x1-conv step difference (target < 5%)"
    )


def paired_ratio(times, name):
    """Median over rounds of `name`'s step time over the baseline's in the same round."""
    return statistics.median(t / b for t, b in zip(times[name], times["BCE"], strict=True))


def measure(build, images, masks, args):
    """Interleaved per-step times of each configuration on the model `build()` makes."""
    models = {}
    weights = None
    for name, make in CONFIGS.items():
        keras.utils.set_random_seed(0)
        model = build()
        model.build((None, *images.shape[1:]))
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        model.compile(optimizer="adam", **make())
        for _ in range(3):  # trace and warm up
            model.train_on_batch(images, masks)
        models[name] = model
    times = {name: [] for name in models}
    names = list(models)
    for round_index in range(args.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(time_steps(models[name], images, masks, args.steps))
    return times, models["BCE"].count_params()


if __name__ == "__main__":
    main()
