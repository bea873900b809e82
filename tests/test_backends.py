"""Runs the backend-agnostic tests again under the other Keras backends.

The main test run uses one backend (TensorFlow by default). Keras fixes its backend
at import, so each other backend gets a fresh `python -m pytest` process with
`KERAS_BACKEND` set. Tests that need TensorFlow skip themselves there.

To cover another file or folder, add it to a group of `BACKEND_TEST_FILES`; each
group is its own process, so that pytest-xdist runs them side by side. The reruns
leave out the tests marked `one_backend` (what no backend changes: structure,
parameter counts, a fresh process's imports) and `slow` (training to a score, which
the main run checks); JAX compiles every operation anew for each shape, so they
would take minutes there.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from _xla_flags import FAST_COMPILE

REPO = Path(__file__).resolve().parents[1]

# Test files, and modules whose docstring examples run (`--doctest-modules`).
BACKEND_TEST_FILES = {
    "blocks": [
        "tests/layers",
        "tests/models",
        "tests/test_testing.py",
        "keras_unet_seg/layers",
        "keras_unet_seg/models",
        "keras_unet_seg/testing",
    ],
    "encoders": ["tests/encoders/test_named_encoders.py", "keras_unet_seg/encoders"],
    "losses": [
        "tests/losses",
        "tests/test_metrics.py",
        "tests/test_lookup.py",
        "tests/test_overlap.py",
        "keras_unet_seg/losses",
        "keras_unet_seg/metrics",
        "keras_unet_seg/_overlap.py",
        "keras_unet_seg/_lookup.py",
    ],
}
# JAX runs a named encoder eagerly operation by operation, compiling each anew for
# every shape: no test of ResNet50 or EfficientNetB0 finished in 6 minutes there. Under
# JAX the encoders group keeps the preprocessing tests and ApplicationEncoder's example
# (MobileNetV2 built and called on one channel). PyTorch runs them all but the frozen
# encoder's training with EfficientNetB0: what the backend changes there is the frozen
# BatchNormalization layer, the same in ResNet50 (EfficientNetB0's took 153 s of the
# group's 571 s under load). Likewise the blocks group under JAX keeps the models'
# tests: every block runs inside the U-Net's and UNet++'s standard checks there (a fit
# step, mixed precision, saving), and the block-by-block checks run under TensorFlow
# and PyTorch. (Left out of the paths given: pytest's `--ignore` does not apply to a
# path named on its command line, and the layers' tests ran there for 60 s.)
DESELECTED = {
    ("jax", "encoders"): ["-k", "not resnet50 and not efficientnetb0"],
    ("torch", "encoders"): ["-k", "not (frozen_encoder and efficientnetb0)"],
}
LEFT_OUT = {("jax", "blocks"): {"tests/layers", "keras_unet_seg/layers"}}

OTHER_BACKENDS = {"jax": "jax", "torch": "torch"}


@pytest.mark.parametrize("group", sorted(BACKEND_TEST_FILES))
@pytest.mark.parametrize("backend", sorted(OTHER_BACKENDS))
def test_files_pass_on_backend(backend, group):
    if keras.backend.backend() == backend:
        pytest.skip(f"the main run already uses {backend}")
    if importlib.util.find_spec(OTHER_BACKENDS[backend]) is None:
        pytest.skip(f"{backend} is not installed")
    env = dict(
        os.environ,
        KERAS_BACKEND=backend,
        TF_CPP_MIN_LOG_LEVEL="3",
        KERAS_UNET_SEG_MAX_EXAMPLES="4",  # hypothesis examples a property test
    )
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    if backend == "jax":
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()
    env.pop("PYTEST_XDIST_WORKER", None)
    left_out = LEFT_OUT.get((backend, group), set())
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not one_backend and not slow",
        *[path for path in BACKEND_TEST_FILES[group] if path not in left_out],
        *DESELECTED.get((backend, group), []),
    ]
    proc = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"{backend}: {' '.join(command)}\n{tail}"
    assert " passed" in proc.stdout, tail
