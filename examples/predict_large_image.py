"""Tiled inference on an image much larger than the training images.

A model trained on 128x128 images is applied to a 1024x768 image with
`predict_tiled`: overlapping 256x256 tiles, batched, blended with Gaussian weights
so that no seam shows, and cropped back to the image's own size. The large image is
a mosaic of synthetic pictures at the training scale, so its true mask is known and
the script prints the Dice of the tiled prediction. It writes the image, the
predicted mask and an overlay (predicted outlines in red, true outlines in green).

    python examples/predict_large_image.py                      # trains a model first
    python examples/predict_large_image.py --model demo_out/best.keras
    python examples/predict_large_image.py --fast               # seconds

`keras-unet-seg predict --model m.keras big.png --out predictions` does the same
from the command line, for your own images.
"""

import argparse
import os
import tempfile
import time

import keras
import numpy as np
from PIL import Image

from keras_unet_seg import (
    BCEDiceLoss,
    DiceCoefficient,
    SegmentationDataset,
    UNet,
    make_synthetic_dataset,
    overlay_mask,
    predict_tiled,
)


def train_small_model(data_dir, size, epochs, base_filters):
    train_ds = SegmentationDataset.from_directory(
        data_dir, subset="train", image_size=(size, size), batch_size=8, augment=True, seed=0
    )
    model = UNet(num_classes=1, base_filters=base_filters, depth=3)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=BCEDiceLoss())
    model.fit(train_ds, epochs=epochs, verbose=2, shuffle=False)
    return model


def mosaic(data_dir, subset, rows, cols):
    """A large image (and its mask) made of `rows x cols` synthetic pictures."""
    pairs = SegmentationDataset.from_directory(
        data_dir, subset=subset, image_size=None, batch_size=None, shuffle=False
    )
    images, masks = zip(*pairs.take(rows * cols).as_numpy_iterator(), strict=True)

    def assemble(parts):
        return np.concatenate(
            [np.concatenate(parts[r * cols : (r + 1) * cols], axis=1) for r in range(rows)],
            axis=0,
        )

    return assemble(images), assemble(masks)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained .keras model (default: train one)")
    parser.add_argument("--out", default=None, help="folder to write to (default: temporary)")
    parser.add_argument("--fast", action="store_true", help="tiny run, to check it works")
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="predict_large_")
    keras.utils.set_random_seed(0)
    # Pictures of the training size; the large image is rows x cols of them.
    size, rows, cols, tile = (32, 3, 4, 64) if args.fast else (128, 6, 8, 256)

    data_dir = make_synthetic_dataset(
        os.path.join(out, "data"),
        num_train=8 if args.fast else 96,
        num_val=rows * cols,
        image_size=(size, size),
        seed=1,
        overwrite=True,
    )
    if args.model:
        model = keras.saving.load_model(args.model)
    else:
        epochs, base_filters = (1, 4) if args.fast else (12, 8)
        model = train_small_model(data_dir, size, epochs, base_filters)

    image, mask = mosaic(data_dir, "val", rows, cols)
    height, width = image.shape[:2]
    print(f"Large image: {height}x{width}, tiles of {tile}x{tile} with 25% overlap.")

    start = time.perf_counter()
    probabilities = predict_tiled(model, image, tile_size=tile, overlap=0.25, batch_size=4)
    print(f"predict_tiled: {time.perf_counter() - start:.1f} s, output {probabilities.shape}")

    dice = DiceCoefficient()
    dice.update_state(mask[None], probabilities[None])
    print(f"Dice of the tiled prediction: {float(dice.result()):.3f}")

    outlined = overlay_mask(image, mask, color=(0, 255, 0), alpha=1.0, mode="contour")
    overlay = overlay_mask(outlined, probabilities, color=(255, 0, 0), alpha=1.0, mode="contour")
    written = {
        "image": os.path.join(out, "large_image.png"),
        "mask": os.path.join(out, "large_mask.png"),
        "overlay": os.path.join(out, "large_overlay.png"),
    }
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(written["image"])
    predicted = np.where(probabilities[..., 0] >= 0.5, 255, 0).astype(np.uint8)
    Image.fromarray(predicted).save(written["mask"])
    Image.fromarray(overlay).save(written["overlay"])
    for label, path in written.items():
        print(f"  {label:<8} {path}")


if __name__ == "__main__":
    main()
