"""Writes the `.keras` files that `test_compatibility.py` loads.

Run once, at a release, with that release installed; the files are committed so
that every later version is tested against them:

    python tests/models/saved/make_saved_models.py

The files in this folder were written at commit cfcbd9a (before the restructuring
of issue 15), with Keras 3.15.1 on TensorFlow 2.21.
"""

from pathlib import Path

import numpy as np

from keras_unet_seg import (
    AttentionDecoderStage,
    BCEDiceLoss,
    DiceCoefficient,
    DiceLoss,
    FocalTverskyLoss,
    IoUScore,
    JaccardLoss,
    Precision,
    Recall,
    TverskyLoss,
    UNet,
    UNetPlusPlus,
)

FOLDER = Path(__file__).parent


def _models():
    yield (
        "unet",
        UNet(base_filters=4, depth=2),
        BCEDiceLoss(),
        [DiceCoefficient(), IoUScore(), Precision(), Recall()],
    )
    yield (
        "unet_attention_residual_group",
        UNet(
            num_classes=3,
            base_filters=4,
            depth=2,
            residual=True,
            normalization="group",
            decoder_stage=AttentionDecoderStage,
        ),
        DiceLoss(ignore_class=0) + 0.5 * TverskyLoss(alpha=0.3, beta=0.7),
        [DiceCoefficient(num_classes=3), IoUScore(num_classes=3, average="micro", per_image=True)],
    )
    yield (
        "unet_plus_plus",
        UNetPlusPlus(base_filters=4, depth=2),
        FocalTverskyLoss(gamma=0.75) + JaccardLoss(),
        [DiceCoefficient()],
    )


def main():
    rng = np.random.default_rng(0)
    images = rng.random((2, 24, 32, 3)).astype("float32")
    for name, model, loss, metrics in _models():
        classes = model.num_classes
        if classes == 1:
            masks = (images[..., :1] > 0.5).astype("float32")
        else:
            masks = np.floor(images[..., :1] * classes).clip(0, classes - 1).astype("int32")
        model.compile(optimizer="adam", loss=loss, metrics=metrics)
        model.fit(images, masks, epochs=1, verbose=0)
        values = model.evaluate(images, masks, verbose=0, return_dict=True)
        model.save(FOLDER / f"{name}.keras")
        np.savez(
            FOLDER / f"{name}.npz",
            images=images,
            masks=masks,
            outputs=model.predict(images, verbose=0),
            **{f"evaluate_{key}": value for key, value in values.items()},
        )
        print(name, values)


if __name__ == "__main__":
    main()
