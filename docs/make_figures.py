"""Makes the documentation's figures with the library itself.

    python docs/make_figures.py            # writes docs/figures/*

Run it again after a change that alters what the figures show, and commit the
figures with it. It takes about a minute on a laptop CPU (the training of a
small U-Net for the curves and the overlays); the docs build does not run it.

Figures:

- `unet_architecture.svg`: the U-Net of the paper's configuration
  (`UNet(base_filters=64, depth=4)`), each level's feature-map shape taken
  from the model's own stages on a 256x256 RGB input.
- `training_curves.png`: `plot_history` of a small U-Net trained on
  `make_synthetic_dataset` data with `BCEDiceLoss`, `DiceCoefficient` and
  `IoUScore`.
- `predictions.png`: `plot_predictions` of that model on validation images.
- `tiled_overlay.png`: `predict_tiled` of that model (trained on 64x64
  images) on a 192x320 image, drawn with `overlay_mask` in contour mode.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from PIL import Image

from keras_unet_seg import (
    BCEDiceLoss,
    DiceCoefficient,
    IoUScore,
    SegmentationDataset,
    UNet,
    make_synthetic_dataset,
    overlay_mask,
    plot_history,
    plot_predictions,
    predict_tiled,
)

FIGURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")
SEED = 0


def architecture(path, input_size=256, channels=3):
    """Draws the U-Net's levels with the shapes its stages compute."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, Rectangle

    model = UNet(num_classes=1, base_filters=64, depth=4)
    shape = (None, input_size, input_size, channels)
    encoder_shapes = []
    for encoder in model.encoders:
        shape, skip = encoder.compute_output_shape(shape)
        encoder_shapes.append(skip)
    bottleneck = model.bottleneck.compute_output_shape(shape)
    decoder_shapes = []
    shape = bottleneck
    for decoder, skip in zip(model.decoders, reversed(encoder_shapes), strict=True):
        shape = decoder.compute_output_shape([shape, skip])
        decoder_shapes.append(shape)
    model.build((None, input_size, input_size, channels))
    params = model.count_params()

    depth = model.depth
    figure = Figure(figsize=(10.3, 6.3))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10.3)
    ax.set_ylim(-0.6, 6.5)
    ax.set_axis_off()
    box_w, box_h = 1.55, 0.62
    enc_color, dec_color, mid_color = "#4c72b0", "#dd8452", "#8172b3"
    gray = "#555555"

    def box(x, y, color, title, subtitle):
        ax.add_patch(
            Rectangle((x - box_w / 2, y - box_h / 2), box_w, box_h, color=color, alpha=0.9, lw=0)
        )
        ax.text(x, y + 0.1, title, ha="center", va="center", color="white", fontsize=9.5)
        ax.text(x, y - 0.14, subtitle, ha="center", va="center", color="white", fontsize=8)

    def arrow(start, end, color="#333333", ls="-"):
        ax.add_patch(
            FancyArrowPatch(
                start, end, arrowstyle="-|>", mutation_scale=12, color=color, lw=1.2, ls=ls
            )
        )

    def size(s):
        return f"{s[1]}x{s[2]}x{s[3]}"

    ys = [5.0 - level * 1.05 for level in range(depth + 1)]
    xs_enc = [1.2 + level * 0.55 for level in range(depth)] + [5.0]
    xs_dec = [8.8 - level * 0.55 for level in range(depth)] + [5.0]
    top = ys[0] + box_h / 2
    ax.text(xs_enc[0], 5.95, f"input {input_size}x{input_size}x{channels}", fontsize=9, ha="center")
    arrow((xs_enc[0], 5.8), (xs_enc[0], top))
    ax.text(
        xs_dec[0],
        5.9,
        f"output {input_size}x{input_size}x1\n(1x1 conv head, sigmoid)",
        fontsize=9,
        ha="center",
    )
    arrow((xs_dec[0], top), (xs_dec[0], 5.8))
    for level in range(depth):
        box(xs_enc[level], ys[level], enc_color, f"encoder_{level}", size(encoder_shapes[level]))
        down_start = (xs_enc[level] - 0.3, ys[level] - box_h / 2)
        down_end = (xs_enc[level + 1] - 0.5, ys[level + 1] + box_h / 2)
        arrow(down_start, down_end)
        ax.text(
            down_start[0] - 0.12,
            down_start[1] - 0.3,
            "max pool",
            fontsize=7.5,
            color=gray,
            ha="right",
        )
        box(
            xs_dec[level],
            ys[level],
            dec_color,
            f"decoder_{level}",
            size(decoder_shapes[depth - 1 - level]),
        )
        up_start = (xs_dec[level + 1] + 0.5, ys[level + 1] + box_h / 2)
        up_end = (xs_dec[level] + 0.3, ys[level] - box_h / 2)
        arrow(up_start, up_end)
        ax.text(
            up_end[0] + 0.12,
            up_end[1] - 0.3,
            "transposed conv",
            fontsize=7.5,
            color=gray,
            ha="left",
        )
        arrow(
            (xs_enc[level] + box_w / 2, ys[level]),
            (xs_dec[level] - box_w / 2, ys[level]),
            color="#888888",
            ls="--",
        )
        ax.text(5, ys[level] + 0.08, "skip, concatenated", fontsize=7.5, ha="center", color=gray)
    box(5, ys[depth], mid_color, "bottleneck", size(bottleneck))
    ax.text(
        0.25,
        -0.35,
        "Each box is a ConvBlock (2 x conv 3x3 -> batch norm -> ReLU); shapes are "
        f"height x width x channels.\nUNet(base_filters=64, depth=4): {params:,} parameters. "
        "Any input size works: padded to a multiple of 2**depth, cropped back.",
        fontsize=8,
        ha="left",
        color="#333333",
    )
    figure.savefig(path)
    return params


def train(workdir, epochs):
    """Trains the small U-Net of the getting-started page; returns model, history, data."""
    root = make_synthetic_dataset(
        os.path.join(workdir, "data"), num_train=64, num_val=16, image_size=(64, 64), seed=SEED
    )
    train_ds = SegmentationDataset.from_directory(
        root, "train", image_size=(64, 64), batch_size=8, augment=True, seed=SEED
    )
    val_ds = SegmentationDataset.from_directory(
        root, "val", image_size=(64, 64), batch_size=8, shuffle=False
    )
    model = UNet(num_classes=1, base_filters=8, depth=3)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=BCEDiceLoss(),
        metrics=[DiceCoefficient(name="dice"), IoUScore(name="iou")],
    )
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0)
    return model, history, val_ds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=FIGURES, help="folder to write to (docs/figures)")
    parser.add_argument("--epochs", type=int, default=12, help="training epochs (12)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(SEED)
    start = time.perf_counter()

    params = architecture(os.path.join(args.out, "unet_architecture.svg"))
    print(f"unet_architecture.svg: {params:,} parameters")

    with tempfile.TemporaryDirectory() as workdir:
        model, history, val_ds = train(workdir, args.epochs)
        plot_history(history, filepath=os.path.join(args.out, "training_curves.png"))
        last = {k: round(v[-1], 3) for k, v in history.history.items()}
        print(f"training_curves.png: last epoch {last}")

        images, masks = next(iter(val_ds))
        images, masks = np.asarray(images)[:4], np.asarray(masks)[:4]
        probs = model.predict(images, verbose=0)
        figure = plot_predictions(images, masks, probs)
        figure.savefig(os.path.join(args.out, "predictions.png"), dpi=80)
        print("predictions.png")

        big = make_synthetic_dataset(
            os.path.join(workdir, "big"),
            num_train=1,
            num_val=0,
            image_size=(192, 320),
            seed=SEED + 1,
            max_shapes=8,
        )
        image = np.asarray(Image.open(os.path.join(big, "train", "images", "00000.png")))
        probs = predict_tiled(model, image, tile_size=64, preprocess=lambda x: x / 255.0)
        overlay = overlay_mask(image, probs, mode="contour", alpha=1.0, thickness=2)
        Image.fromarray(overlay).save(os.path.join(args.out, "tiled_overlay.png"))
        print(f"tiled_overlay.png: {image.shape} image, tiles of 64x64")
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
