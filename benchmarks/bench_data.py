"""Throughput of the input pipeline against the training step it feeds.

Writes `--num` synthetic 256x256 PNG pairs to a temporary folder, then prints images
per second for:

- checking the files (`from_directory` up front, `verify=True` and `verify=False`);
- decoding (Pillow, in `tf.numpy_function`) + resizing, one uncached epoch;
- the same plus `augment=True` (the `JointAugmentation` defaults);
- a cached dataset: first epoch, then later epochs (the cache speed-up);
- for reference, a pure TensorFlow `tf.io.decode_png` pipeline on the same files;
- training a `UNet(base_filters=32)` on batches already in memory;

and the ratio of the augmented pipeline's rate to the training rate. The pipeline is not
the bottleneck when the ratio is >= 5. Run by hand, never in CI:

    python benchmarks/bench_data.py --num 256 --size 256 --batch 16
"""

import argparse
import os
import tempfile
import time

import numpy as np


def _epoch_rate(dataset, epochs=1):
    """Images per second over `epochs` full passes (after building the iterator)."""
    count = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for images, _ in dataset:
            count += int(images.shape[0])
    return count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=256, help="number of image/mask pairs")
    parser.add_argument("--size", type=int, default=256, help="height and width")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=10)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from keras_unet_seg.data import SegmentationDataset, make_synthetic_dataset
    from keras_unet_seg.models.unet import UNet

    size = (args.size, args.size)
    print(f"keras {keras.__version__} ({keras.backend.backend()}), tensorflow {tf.__version__}")
    print(f"{os.cpu_count()} CPU cores; {args.num} PNG pairs of {size}, batch {args.batch}")
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        make_synthetic_dataset(root, num_train=args.num, num_val=0, image_size=size, seed=0)
        rate = args.num / (time.perf_counter() - start)
        print(f"write synthetic dataset:         {rate:8.1f} pairs/s")

        common = {"image_size": size, "batch_size": args.batch, "seed": 0}
        for verify in (True, False):
            start = time.perf_counter()
            SegmentationDataset.from_directory(root, "train", verify=verify, **common)
            rate = args.num / (time.perf_counter() - start)
            print(f"check files (verify={verify!s:5}):     {rate:8.1f} pairs/s")

        plain = SegmentationDataset.from_directory(root, "train", verify=False, **common)
        _epoch_rate(plain)  # warm up: traces the map functions
        decode = _epoch_rate(plain)
        print(f"decode + resize:                 {decode:8.1f} images/s")

        augmented = SegmentationDataset.from_directory(
            root, "train", verify=False, augment=True, **common
        )
        _epoch_rate(augmented)
        augment = _epoch_rate(augmented)
        print(f"decode + resize + augment:       {augment:8.1f} images/s")

        cached = SegmentationDataset.from_directory(
            root, "train", verify=False, cache=True, **common
        )
        first = _epoch_rate(cached)
        later = _epoch_rate(cached, epochs=3)
        print(
            f"cache=True, first epoch:         {first:8.1f} images/s\n"
            f"cache=True, later epochs:        {later:8.1f} images/s  ({later / first:.1f}x)"
        )

        image_paths = sorted(plain.image_paths)
        mask_paths = sorted(plain.mask_paths)

        def tf_load(image_path, mask_path):
            image = tf.io.decode_png(tf.io.read_file(image_path), channels=3)
            mask = tf.io.decode_png(tf.io.read_file(mask_path), channels=1)
            image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, size)
            mask = tf.image.resize(tf.cast(mask > 0, tf.float32), size, method="nearest")
            return image, mask

        reference = (
            tf.data.Dataset.from_tensor_slices((image_paths, mask_paths))
            .map(tf_load, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(args.batch)
            .prefetch(tf.data.AUTOTUNE)
        )
        _epoch_rate(reference)
        pure_tf = _epoch_rate(reference)
        print(f"reference, tf.io.decode_png:     {pure_tf:8.1f} images/s")

    model = UNet(num_classes=1, base_filters=32)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, *size, 3), dtype=np.float32)
    y = (rng.random((args.batch, *size, 1)) > 0.5).astype("float32")
    model.train_on_batch(x, y)  # build and trace
    start = time.perf_counter()
    for _ in range(args.train_steps):
        model.train_on_batch(x, y)
    train = args.train_steps * args.batch / (time.perf_counter() - start)
    print(f"UNet(base_filters=32) training:  {train:8.1f} images/s")
    ratio = augment / train
    verdict = "OK, not the bottleneck" if ratio >= 5 else "TOO SLOW: the pipeline limits training"
    print(f"pipeline / training ratio:       {ratio:8.1f}  ({verdict})")


if __name__ == "__main__":
    main()
