"""`train --strategy data_parallel` on several hosts: two processes on localhost, one CPU
device each, train one run as one process with two devices does; process 0 alone
writes the run folder.

Both join with the command's flags (the environment variables and Slurm's are
tested in `tests/performance/test_hosts.py`). A third process trains the same
options with two local devices into its own folder.
"""

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from _xla_flags import with_devices

from keras_unet_seg.data import make_synthetic_dataset

from ._helpers import SMALL_MODEL

REPO = Path(__file__).resolve().parents[2]
COMMAND = "import sys; from keras_unet_seg.cli import main; sys.exit(main(sys.argv[1:]))"


def _train(argv, devices, log):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    env["XLA_FLAGS"] = with_devices(devices)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    for name in list(env):  # the variables by which processes would join otherwise
        if name.startswith(("KERAS_DISTRIBUTION_", "JAX_COORDINATOR", "SLURM_")):
            del env[name]
    with open(log, "w") as out:  # a full pipe would stall the other process
        return subprocess.Popen(
            [sys.executable, "-c", COMMAND, "train", *argv], stdout=out, stderr=out, env=env
        )


def _rows(run):
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.one_backend
def test_two_processes_train_one_run_as_one_process_with_two_devices(tmp_path):
    pytest.importorskip("jax")
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    options = [*SMALL_MODEL, "--batch-size", "2", "--epochs", "2", "--no-augment"]
    data = make_synthetic_dataset(tmp_path / "data", 8, 4, image_size=(32, 32), seed=0)
    options += ["--data", data, "--strategy", "data_parallel"]
    run, single = tmp_path / "run", tmp_path / "single"
    hosts = ["--coordinator-address", f"localhost:{port}", "--num-processes", "2"]
    logs = [tmp_path / f"{name}.log" for name in ("process_0", "process_1", "single")]
    processes = [
        _train([*options, "--out", str(run), *hosts, "--process-id", "0"], 1, logs[0]),
        _train([*options, "--out", str(run), *hosts, "--process-id", "1"], 1, logs[1]),
        _train([*options, "--out", str(single)], 2, logs[2]),
    ]
    try:
        codes = [proc.wait(timeout=600) for proc in processes]
    finally:  # none is left waiting for another that failed
        for proc in processes:
            proc.kill()
    outputs = [log.read_text() for log in logs]
    assert codes == [0, 0, 0], "\n\n".join(output[-3000:] for output in outputs)

    assert "Training in float32, XLA on, 2 devices (batches of 4)." in outputs[0]
    assert "Training finished" not in outputs[1]  # quiet: process 0 speaks for the run
    assert _rows(run) == _rows(single)
    assert sorted(os.listdir(run)) == sorted(os.listdir(single))
    for name in ("model.keras", "best.keras"):
        weights = [keras.saving.load_model(folder / name).get_weights() for folder in (run, single)]
        for joined, alone in zip(*weights, strict=True):
            np.testing.assert_allclose(joined, alone, rtol=1e-5, atol=1e-6)
