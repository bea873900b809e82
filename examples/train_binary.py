"""Binary segmentation with keras-unet-seg, end to end, in one readable script.

synthetic data on disk -> SegmentationDataset -> UNet -> BCEDiceLoss + metrics ->
fit -> save -> load -> predict_tiled on the full-size validation images -> overlays.

Run it as is (about two minutes on two CPU cores):

    python examples/train_binary.py --out train_binary_out

or in seconds with `--fast` (tiny images, one epoch: checks that it runs, nothing
more). Writes into `--out`: the dataset, `model.keras`, `curves.png` and
`overlays/*.png` (predicted outlines in red over the validation images).
"""

import argparse
import os

import keras
import numpy as np

from keras_unet_seg import (
    BCEDiceLoss,
    DiceCoefficient,
    IoUScore,
    Precision,
    Recall,
    SegmentationDataset,
    UNet,
    make_synthetic_dataset,
    plot_history,
    predict_tiled,
    save_overlays,
)

FULL = {"image_size": 128, "num_train": 96, "num_val": 16, "base_filters": 8, "epochs": 12}
FAST = {"image_size": 32, "num_train": 8, "num_val": 2, "base_filters": 4, "epochs": 1}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="train_binary_out", help="folder to write to")
    parser.add_argument("--fast", action="store_true", help="tiny run, to check it works")
    args = parser.parse_args()
    settings = FAST if args.fast else FULL
    size = settings["image_size"]
    keras.utils.set_random_seed(0)

    # 1. Data: folders of PNG images and 0/255 masks, train/ and val/.
    data_dir = make_synthetic_dataset(
        os.path.join(args.out, "data"),
        num_train=settings["num_train"],
        num_val=settings["num_val"],
        image_size=(size, size),
        seed=0,
        overwrite=True,
    )

    # 2. tf.data pipelines: images scaled to [0, 1], masks 0/1, the training set
    #    shuffled and augmented (flips, rotations, zoom, brightness, ...).
    train_ds = SegmentationDataset.from_directory(
        data_dir, subset="train", image_size=(size, size), batch_size=8, augment=True, seed=0
    )
    val_ds = SegmentationDataset.from_directory(
        data_dir, subset="val", image_size=(size, size), batch_size=8, shuffle=False
    )

    # 3. The model: one sigmoid channel for binary masks.
    model = UNet(num_classes=1, base_filters=settings["base_filters"], depth=3)

    # 4. Loss and streaming metrics (exact over the epoch, foreground only).
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=3e-3),
        loss=BCEDiceLoss(),
        metrics=[DiceCoefficient(), IoUScore(), Precision(), Recall()],
    )

    # 5. Training (the dataset shuffles itself, with its seed: no shuffle in fit).
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=settings["epochs"], verbose=2, shuffle=False
    )
    plot_history(history, filepath=os.path.join(args.out, "curves.png"))

    # 6. Save, and load back as another program would.
    model_path = os.path.join(args.out, "model.keras")
    model.save(model_path)
    model = keras.saving.load_model(model_path)

    # 7. Full-size prediction: the validation images at their own size (no resizing,
    #    no batching), predicted tile by tile with Gaussian blending of the overlaps.
    full_size = SegmentationDataset.from_directory(
        data_dir, subset="val", image_size=None, batch_size=None, shuffle=False
    )
    images, masks, probabilities = [], [], []
    for image, mask in full_size.as_numpy_iterator():
        images.append(image)
        masks.append(mask)
        probabilities.append(predict_tiled(model, image, tile_size=size // 2, overlap=0.25))

    dice = DiceCoefficient()
    for mask, probs in zip(masks, probabilities, strict=True):
        dice.update_state(mask[None], probs[None])
    print(f"Validation Dice of the tiled predictions: {float(dice.result()):.3f}")

    # 8. Overlays: the predicted outline drawn over each image.
    names = [os.path.splitext(os.path.basename(p))[0] for p in full_size.image_paths]
    paths = save_overlays(
        images,
        probabilities,
        os.path.join(args.out, "overlays"),
        names=names,
        mode="contour",
        alpha=1.0,
    )
    print(f"Model: {model_path}")
    print(f"Overlays: {len(paths)} PNGs in {os.path.dirname(paths[0])}")
    print(f"Mean foreground probability: {np.mean([p.mean() for p in probabilities]):.3f}")


if __name__ == "__main__":
    main()
