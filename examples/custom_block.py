"""A custom U-Net block: subclass ConvBlock, register it, inject it into UNet.

The block adds squeeze-and-excitation (Hu et al., 2018) after the convolutions of
`ConvBlock`: each channel is rescaled by a weight learnt from the global average of
all channels. The script checks the block with `keras_unet_seg.testing.check_layer`
(the checks every layer of the library passes), builds `UNet(conv_block=...)` with it,
trains briefly on synthetic data, saves the model, loads it back and checks that the
loaded model gives the same outputs.

    python examples/custom_block.py            # about a minute on two CPU cores
    python examples/custom_block.py --fast     # seconds
"""

import argparse
import os
import tempfile

import keras
import numpy as np

from keras_unet_seg import (
    BCEDiceLoss,
    ConvBlock,
    DiceCoefficient,
    SegmentationDataset,
    UNet,
    make_synthetic_dataset,
)
from keras_unet_seg.testing import check_layer


# Registration is what lets `keras.saving.load_model` find the class again, and lets
# UNet store it in its config by name. Use your own package name.
@keras.saving.register_keras_serializable(package="my_blocks")
class SqueezeExciteBlock(ConvBlock):
    """`ConvBlock`, then squeeze-and-excitation of its output channels.

    Args:
        filters: int, output channels.
        ratio: int, reduction ratio of the squeeze layer. Defaults to `4`.
        **kwargs: the arguments of `ConvBlock` (num_convs, normalization, ...).
    """

    def __init__(self, filters, ratio=4, **kwargs):
        super().__init__(filters, **kwargs)
        if not isinstance(ratio, int) or ratio < 1:
            raise ValueError(
                f"Invalid value for argument `ratio`. Expected a positive integer. "
                f"Received: ratio={ratio!r}"
            )
        self.ratio = ratio
        # Sub-layers are created in the constructor (never in `call`), with the
        # block's dtype policy so that mixed precision works.
        self.squeeze = keras.layers.Dense(
            max(1, filters // ratio), activation="relu", name="squeeze", dtype=self.dtype_policy
        )
        self.excite = keras.layers.Dense(
            filters, activation="sigmoid", name="excite", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        super().build(input_shape)  # the convolutions of ConvBlock
        self.squeeze.build((input_shape[0], self.filters))
        self.excite.build((input_shape[0], self.squeeze.units))

    def call(self, inputs, training=None):
        x = super().call(inputs, training=training)
        weights = self.excite(self.squeeze(keras.ops.mean(x, axis=(1, 2))))
        return x * weights[:, None, None, :]

    def get_config(self):
        # Every constructor argument, so that the block is rebuilt identically.
        return {**super().get_config(), "ratio": self.ratio}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny run, to check it works")
    parser.add_argument("--out", default=None, help="folder to write to (default: temporary)")
    args = parser.parse_args()
    size, epochs, num_train = (32, 1, 8) if args.fast else (64, 8, 64)
    out = args.out or tempfile.mkdtemp(prefix="custom_block_")
    keras.utils.set_random_seed(0)

    # 1. Test the block the way the library tests its own layers: config round trip,
    #    shapes, a training step, mixed precision and saving.
    check_layer(
        SqueezeExciteBlock,
        {"filters": 8, "ratio": 2},
        (2, 16, 16, 3),
        (2, 16, 16, 8),
        run_mixed_precision=not args.fast,
    )
    print("check_layer: SqueezeExciteBlock passes every check.")

    # 2. Inject it: UNet builds every block with it; block_kwargs reach its constructor.
    model = UNet(
        num_classes=1,
        base_filters=4 if args.fast else 8,
        depth=2 if args.fast else 3,
        conv_block=SqueezeExciteBlock,
        block_kwargs={"ratio": 2},
    )

    # 3. Train briefly on synthetic data.
    data_dir = make_synthetic_dataset(
        os.path.join(out, "data"), num_train=num_train, num_val=4, image_size=(size, size),
        overwrite=True,
    )  # fmt: skip
    train_ds = SegmentationDataset.from_directory(
        data_dir, subset="train", image_size=(size, size), batch_size=8, seed=0
    )
    val_ds = SegmentationDataset.from_directory(
        data_dir, subset="val", image_size=(size, size), batch_size=4, shuffle=False
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=BCEDiceLoss(), metrics=[DiceCoefficient()]
    )
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=2, shuffle=False)

    # 4. Save and load: the config names the block "my_blocks>SqueezeExciteBlock".
    path = os.path.join(out, "se_unet.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    print("Block stored in the config as", repr(model.get_config()["conv_block"]))
    if not isinstance(loaded.encoders[0].block, SqueezeExciteBlock):
        raise RuntimeError("the loaded model does not use SqueezeExciteBlock")

    # 5. Same outputs from the loaded model.
    images, _ = next(iter(val_ds))
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    actual = keras.ops.convert_to_numpy(loaded(images, training=False))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    print(f"Saved and reloaded '{path}': identical outputs (max |diff| "
          f"{np.max(np.abs(actual - expected)):.1e}).")  # fmt: skip


if __name__ == "__main__":
    main()
