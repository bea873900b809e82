"""Train-step and inference throughput of `UNet` against a plain functional U-Net.

Both models have the same architecture and parameter count: conv-BN-ReLU x2
per level, max pooling, transposed-convolution upsampling, concatenated
skips, a 1x1 sigmoid head; they start from the same weights (a CPU step's
time depends on the values: measured here, different initial weights alone
made one model's inference 7% slower). Their steps are timed alternately in
one run (interleaved rounds, medians), so drift on the machine hits both
alike, and the ratio tells what the subclassed, composable design costs; the
ratio is also given for the rounds each model began, so an order effect shows.
Under TensorFlow it counts the operations of each model's traced training step.

    python benchmarks/bench_model.py [--size 128] [--base-filters 16] [--depth 4]
"""

import argparse
import statistics
import time

import keras
import numpy as np

from keras_unet_seg import UNet

PHASES = ("train", "infer")


def functional_unet(input_shape, base_filters, depth):
    """The same U-Net written the plain way, one functional graph."""

    def block(x, filters):
        for _ in range(2):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal"
            )(x)
            x = keras.layers.BatchNormalization(momentum=0.9)(x)
            x = keras.layers.Activation("relu")(x)
        return x

    inputs = keras.Input(input_shape)
    x, skips = inputs, []
    for level in range(depth):
        x = block(x, base_filters * 2**level)
        skips.append(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = block(x, base_filters * 2**depth)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = keras.layers.Conv2DTranspose(filters, 2, strides=2, kernel_initializer="he_normal")(x)
        x = block(keras.layers.Concatenate()([x, skips[level]]), filters)
    x = keras.layers.Conv2D(1, 1)(x)
    outputs = keras.layers.Activation("sigmoid", dtype="float32")(x)
    return keras.Model(inputs, outputs)


def same_weights(source, target):
    """Copies `source`'s weights into `target`, matched by kind in creation order.

    A CPU step's time depends on the values it computes with (denormal floats
    are slow), so the two models start from the same weights and, trained on
    the same batches, keep computing the same values.
    """
    by_kind = {}
    for weight in source.weights:
        by_kind.setdefault(weight.path.rsplit("/", 1)[-1], []).append(weight)
    for weight in target.weights:
        twin = by_kind[weight.path.rsplit("/", 1)[-1]].pop(0)
        if tuple(twin.shape) != tuple(weight.shape):
            raise SystemExit(f"architectures differ: {twin.path} {weight.path}")
        weight.assign(twin)


def traced_operations(model, images, masks):
    """Operations in the TensorFlow graph of one training step (forward, loss, gradients)."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    loss_fn = keras.losses.BinaryCrossentropy()

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return loss, tape.gradient(loss, model.trainable_variables)

    return len(step.get_concrete_function(images, masks).graph.get_operations())


def time_steps(step, steps):
    """The mean time of `steps` calls of `step`, after one untimed call (the first
    step after the other model's)."""
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    shape = (args.size, args.size, 3)
    rng = np.random.default_rng(0)
    images = rng.random((args.batch_size, *shape)).astype("float32")
    masks = (images[..., :1] > 0.5).astype("float32")

    keras.utils.set_random_seed(0)
    models = {
        "UNet (subclassed)": UNet(base_filters=args.base_filters, depth=args.depth),
        "functional U-Net": functional_unet(shape, args.base_filters, args.depth),
    }
    models["UNet (subclassed)"].build((None, *shape))
    same_weights(models["UNet (subclassed)"], models["functional U-Net"])
    outputs = [keras.ops.convert_to_numpy(m(images[:2])) for m in models.values()]
    if not np.allclose(*outputs, atol=1e-5):
        raise SystemExit("the two models compute different outputs from the same weights")
    for model in models.values():
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.train_on_batch(images, masks)  # trace and warm up
        model.predict_on_batch(images)
    counts = {name: m.count_params() for name, m in models.items()}
    if len(set(counts.values())) != 1:
        raise SystemExit(f"architectures differ: {counts}")
    operations = {name: traced_operations(m, images, masks) for name, m in models.items()}

    times = time_rounds(models, images, masks, args.rounds, args.steps)
    print(
        f"backend={keras.backend.backend()} size={args.size} base_filters={args.base_filters} "
        f"depth={args.depth} batch={args.batch_size} params={counts['functional U-Net']:,} "
        f"rounds={args.rounds}x{args.steps} steps (medians)"
    )
    report(times, operations, args.batch_size)


def time_rounds(models, images, masks, rounds, steps):
    """Returns `times[phase][first][name]`: `name`'s step times in the rounds `first` began."""
    names = list(models)
    times = {phase: {first: {n: [] for n in names} for first in names} for phase in PHASES}
    # Training rounds, then inference rounds; in each, the two models take turns in
    # a rotating order, so that neither always runs right after the other.
    for phase, step in (
        ("train", lambda m: m.train_on_batch(images, masks)),
        ("infer", lambda m: m.predict_on_batch(images)),
    ):
        for round_index in range(rounds):
            order = names[round_index % 2 :] + names[: round_index % 2]
            for name in order:
                times[phase][order[0]][name].append(
                    time_steps(lambda m=models[name], step=step: step(m), steps)
                )
    return times


def report(times, operations, batch_size):
    names = list(operations)

    def median(phase, name, firsts):
        return statistics.median([t for first in firsts for t in times[phase][first][name]])

    print(f"{'model':<20} {'train ops':>10} {'train img/s':>12} {'infer img/s':>12}")
    for name in names:
        ops = "n/a" if operations[name] is None else operations[name]
        train, infer = (batch_size / median(phase, name, names) for phase in PHASES)
        print(f"{name:<20} {ops:>10} {train:>12.1f} {infer:>12.1f}")
    # Throughput ratios (>1: UNet faster), over all rounds and over the rounds each began.
    ours, plain = names
    for firsts in [names, *([first] for first in names)]:
        label = "UNet / functional"
        if len(firsts) == 1:
            label += f", {firsts[0].split()[0]} first"
        ratios = [median(phase, plain, firsts) / median(phase, ours, firsts) for phase in PHASES]
        print(f"{label:<31} {ratios[0]:>12.3f} {ratios[1]:>12.3f}")


if __name__ == "__main__":
    main()
