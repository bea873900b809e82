"""Writes the `.keras` files of `tests/models/test_compatibility.py`, with the code of a version.

Run from a checkout of that version, with this script's folder as output:

    git worktree add /tmp/old COMMIT
    cd /tmp/old && PYTHONPATH=$PWD python /path/to/tests/data/compat/make_compat_files.py LABEL

Each variant is a small U-Net (base_filters 4, depth 2) whose weights are
moved away from their initial values and whose batch-normalization statistics
are those of the input (so that the prediction is not saturated), saved
as `unet_LABEL_VARIANT.keras` with its prediction of `input.npy` beside it as
`unet_LABEL_VARIANT.npy`. The script uses only what the first version has.
"""

import sys
from pathlib import Path

import keras
import numpy as np

from keras_unet_seg import AttentionDecoderStage, UNet

FOLDER = Path(__file__).parent
VARIANTS = {
    "plain": {},
    "residual_attention": {"residual": True, "decoder_stage": AttentionDecoderStage},
}


def main(label):
    path = FOLDER / "input.npy"
    if not path.exists():
        np.save(path, np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32"))
    images = np.load(path)
    for name, kwargs in VARIANTS.items():
        keras.utils.set_random_seed(0)
        model = UNet(base_filters=4, depth=2, **kwargs)
        model.build(images.shape)
        rng = np.random.default_rng(1)
        model.set_weights(
            [w * rng.uniform(0.8, 1.2, w.shape).astype(w.dtype) for w in model.get_weights()]
        )
        for _ in range(30):  # the batch normalization statistics of these images
            model(images, training=True)
        stem = f"unet_{label}_{name}"
        model.save(FOLDER / f"{stem}.keras")
        np.save(FOLDER / f"{stem}.npy", model.predict(images, verbose=0))
        print(stem, model.count_params())


if __name__ == "__main__":
    main(sys.argv[1])
