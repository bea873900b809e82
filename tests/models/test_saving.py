"""`.keras` files load in a fresh process that imports only keras_unet_seg."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from _unet_test_blocks import SqueezeExciteBlock

from keras_unet_seg import AttentionDecoderStage, UNet

# A user's block is found once its module is imported, which runs the
# registration; Keras refuses to import non-Keras modules named in a file, and so
# do we. One process loads every model: a Python start and imports each is slow.
_LOADER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import keras_unet_seg  # registers the package's classes
    import _unet_test_blocks  # registers the user's block
    images = np.load(sys.argv[1])
    for path in sys.argv[2:]:
        model = keras.models.load_model(path, safe_mode=True)
        np.save(path + ".npy", model.predict(images, verbose=0))
    """
)

VARIANTS = {
    "default": {},
    "attention_residual": {"decoder_stage": AttentionDecoderStage, "residual": True},
    "user_block": {"conv_block": SqueezeExciteBlock},
}


@pytest.mark.one_backend
def test_load_in_a_fresh_process_gives_identical_outputs(tmp_path):
    images = np.random.default_rng(0).random((2, 20, 28, 3)).astype("float32")
    expected = {}
    for name, kwargs in VARIANTS.items():
        model = UNet(base_filters=4, depth=2, **kwargs)
        model.build(images.shape)
        # Weights and statistics away from their initial values: only loading restores them.
        rng = np.random.default_rng(1)
        model.set_weights(
            [w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in model.get_weights()]
        )
        expected[name] = model.predict(images, verbose=0)
        model.save(tmp_path / f"{name}.keras")
    np.save(tmp_path / "images.npy", images)
    script = tmp_path / "load.py"
    script.write_text(_LOADER)
    env = {
        **os.environ,
        "KERAS_BACKEND": keras.backend.backend(),
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    paths = [str(tmp_path / f"{name}.keras") for name in VARIANTS]
    subprocess.run(
        [sys.executable, str(script), str(tmp_path / "images.npy"), *paths],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    for name, path in zip(VARIANTS, paths, strict=True):
        np.testing.assert_array_equal(np.load(path + ".npy"), expected[name], err_msg=name)
