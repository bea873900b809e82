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

_LOADER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import keras_unet_seg  # registers the package's classes
    {extra_import}
    model = keras.models.load_model(sys.argv[1], safe_mode=True)
    images = np.load(sys.argv[2])
    np.save(sys.argv[3], model.predict(images, verbose=0))
    """
)


@pytest.mark.one_backend
@pytest.mark.parametrize(
    ("kwargs", "extra_import"),
    [
        ({}, ""),
        ({"decoder_stage": AttentionDecoderStage, "residual": True}, ""),
        # A user's block is found once its module is imported, which runs the
        # registration; Keras refuses to import non-Keras modules named in a
        # file, and so do we.
        ({"conv_block": SqueezeExciteBlock}, "import _unet_test_blocks"),
    ],
)
def test_load_in_a_fresh_process_gives_identical_outputs(tmp_path, kwargs, extra_import):
    model = UNet(base_filters=4, depth=2, **kwargs)
    images = np.random.default_rng(0).random((2, 20, 28, 3)).astype("float32")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(images, (images[..., :1] > 0.5).astype("float32"), epochs=1, verbose=0)
    expected = model.predict(images, verbose=0)

    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "images.npy", images)
    script = tmp_path / "load.py"
    script.write_text(_LOADER.format(extra_import=extra_import))
    env = {
        **os.environ,
        "KERAS_BACKEND": keras.backend.backend(),
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "m.keras"),
            str(tmp_path / "images.npy"),
            str(tmp_path / "out.npy"),
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
