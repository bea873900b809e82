"""Several hosts: processes joined by JAX's distributed runtime train as one with several devices.

Two processes on localhost stand in for two hosts, one CPU device each
(`tests/performance/hosts_worker.py`, gloo collectives); a third process
trains the same UNet on the same global batches with two local CPU devices.
The joining values' resolution and errors are checked in this process,
without joining anything.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _xla_flags import with_devices

from keras_unet_seg.performance import Distribution, distribution
from keras_unet_seg.performance.distributed import _host_values

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().with_name("hosts_worker.py")
HOST_ENVIRONMENT = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
    "JAX_COORDINATOR_ADDRESS",
    "SLURM_JOB_ID",
    "SLURM_NTASKS",
)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _start(spec, extra_env, log):
    """The worker process; its output goes to a file (a full pipe would stall the others)."""
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    for name in HOST_ENVIRONMENT:
        env.pop(name, None)
    env.update(extra_env)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(spec)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return proc, log


def _slurm_task(process_id, port):
    """What srun sets for task `process_id` of 2 on this host; JAX coordinates on `port`."""
    return {
        "SLURM_JOB_ID": "1",
        "SLURM_STEP_NODELIST": "localhost",
        "SLURM_NTASKS": "2",
        "SLURM_PROCID": str(process_id),
        "SLURM_LOCALID": "0",
        "JAX_COORDINATOR_PORT": str(port),
    }


def _result(started):
    proc, log = started
    proc.wait(timeout=300)
    output = Path(log).read_text()
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, output[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.mark.slow
@pytest.mark.one_backend
def test_two_processes_train_like_one_process_with_two_devices(tmp_path):
    """3 steps of SGD with momentum on 12 images in global batches of 4, unshuffled.

    Process 0 is given its values as arguments; process 1 finds them as in a
    Slurm step (JAX's own detection), on this host.

    Both setups run the same SPMD program over two devices; only the
    all-reduce of the gradients crosses processes (gloo) instead of staying
    in one. Adding two partial sums is the same float32 operation either
    way, so the weights agree to float32 rounding (measured: bit for bit),
    and every process holds the same replicated weights exactly.
    """
    pytest.importorskip("jax")
    port = _free_port()
    one_device = {"XLA_FLAGS": with_devices(1)}
    hosts = [
        _start(
            {"coordinator_address": f"localhost:{port}", "num_processes": 2, "process_id": 0},
            one_device,
            tmp_path / "process_0.log",
        ),
        # Process 1 finds the values as in a Slurm step of 2 tasks (what srun sets).
        _start({}, {**one_device, **_slurm_task(1, port)}, tmp_path / "process_1.log"),
    ]
    single = _start({}, {"XLA_FLAGS": with_devices(2)}, tmp_path / "single.log")
    try:
        first, second, one = (_result(started) for started in (*hosts, single))
    finally:  # none is left waiting for another that failed
        for proc, _ in (*hosts, single):
            proc.kill()

    assert (one["num_processes"], one["process_id"], one["is_chief"]) == (1, 0, True)
    assert (first["num_processes"], first["process_id"], first["is_chief"]) == (2, 0, True)
    assert (second["num_processes"], second["process_id"], second["is_chief"]) == (2, 1, False)
    for result in (one, first, second):
        assert result["num_replicas"] == 2 and result["batch_size"] == 4
    for result in (first, second):
        joined = f"this process already joined num_processes=2, process_id={result['process_id']}"
        assert f"{joined}; a process joins others once." in result["refused"]
    np.testing.assert_allclose(first["loss"], one["loss"], rtol=1e-5)
    assert len(first["weights"]) == len(one["weights"])
    for got, other, want in zip(first["weights"], second["weights"], one["weights"], strict=True):
        np.testing.assert_array_equal(got, other)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- in-process


def test_host_values_come_from_arguments_then_keras_then_jax_variables():
    assert _host_values(environ={}) is None
    given = _host_values("10.0.0.1:1234", 2, 1, environ={"KERAS_DISTRIBUTION_PROCESS_ID": "0"})
    assert given == {"coordinator_address": "10.0.0.1:1234", "num_processes": 2, "process_id": 1}
    environ = {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234,10.0.0.2:2345",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
        "KERAS_DISTRIBUTION_PROCESS_ID": "1",
        "JAX_COORDINATOR_ADDRESS": "10.0.0.9:99",
    }
    assert _host_values(environ=environ) == {
        "coordinator_address": "10.0.0.1:1234",  # the first job's, as Keras takes it
        "num_processes": 2,
        "process_id": 1,
    }
    del environ["KERAS_DISTRIBUTION_JOB_ADDRESSES"]
    assert _host_values(environ=environ)["coordinator_address"] == "10.0.0.9:99"


def test_a_slurm_step_of_several_tasks_leaves_the_missing_values_to_jax():
    slurm = {
        "SLURM_JOB_ID": "1234",
        "SLURM_STEP_NODELIST": "node[01-02]",
        "SLURM_NTASKS": "2",
        "SLURM_PROCID": "1",
        "SLURM_LOCALID": "0",
    }
    assert _host_values(environ=slurm) == dict.fromkeys(
        ("coordinator_address", "num_processes", "process_id")
    )
    assert _host_values(num_processes=2, environ=slurm)["num_processes"] == 2
    assert _host_values(environ={**slurm, "SLURM_NTASKS": "1"}) is None


@pytest.mark.parametrize(
    ("arguments", "environ", "message"),
    [
        (
            {"num_processes": 2, "process_id": 0},
            {},
            r"Missing value for argument `coordinator_address` \(or "
            r"KERAS_DISTRIBUTION_JOB_ADDRESSES or JAX_COORDINATOR_ADDRESS\)",
        ),
        (
            {"coordinator_address": "localhost:1234"},
            {},
            r"Missing value for argument `num_processes` \(or KERAS_DISTRIBUTION_NUM_PROCESSES\)",
        ),
        (
            {"coordinator_address": "localhost:1234", "num_processes": 2},
            {},
            r"Missing value for argument `process_id` \(or KERAS_DISTRIBUTION_PROCESS_ID\)",
        ),
        (
            {"coordinator_address": "localhost:1234", "num_processes": 2, "process_id": 2},
            {},
            r"argument `process_id`\. Expected an integer from 0 to 1 \(num_processes=2\)",
        ),
        (
            {"coordinator_address": "localhost:1234", "num_processes": 0, "process_id": 0},
            {},
            r"argument `num_processes`\. Expected a positive integer",
        ),
        (
            {"coordinator_address": "localhost", "num_processes": 2, "process_id": 0},
            {},
            r"argument `coordinator_address`\. Expected 'host:port' of process 0",
        ),
        (
            {"coordinator_address": "localhost:1234", "process_id": 0},
            {"KERAS_DISTRIBUTION_NUM_PROCESSES": "two"},
            r"environment variable KERAS_DISTRIBUTION_NUM_PROCESSES\. Expected an integer",
        ),
    ],
)
def test_incomplete_or_invalid_host_values_are_refused(arguments, environ, message):
    with pytest.raises(ValueError, match=message):
        _host_values(**arguments, environ=environ)


def test_several_hosts_need_data_parallel(monkeypatch):
    for name in HOST_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    hosts = {"coordinator_address": "localhost:1234", "num_processes": 2, "process_id": 0}
    for strategy in ("mirrored", None):
        with pytest.raises(
            ValueError,
            match=r"several hosts train with 'data_parallel' \(JAX\) only; Keras 3 does not "
            r"support TensorFlow's MultiWorkerMirroredStrategy \(keras-team/keras#20585\)",
        ):
            distribution(strategy, **hosts)
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    with pytest.raises(ValueError, match="Missing value for argument `coordinator_address`"):
        distribution("data_parallel")


def test_several_processes_keep_only_full_global_batches():
    """`fit` splits each global batch equally among the processes: a short one cannot be."""
    tf = pytest.importorskip("tensorflow")
    dataset = tf.data.Dataset.from_tensor_slices(np.arange(22, dtype="float32")).batch(8)
    hosts = Distribution("data_parallel", None, 2, num_processes=2, process_id=1)
    assert not hosts.is_chief
    assert [len(x) for x in hosts.even_batches(dataset, 22, 8)] == [8, 8]
    assert hosts.left_out(22, 8) == 6 and hosts.left_out(16, 8) == 0
    # One process with the same two devices keeps the batch of 6 (3 a device).
    assert Distribution("data_parallel", None, 2).left_out(22, 8) == 0
    with pytest.raises(ValueError, match="Expected `num_samples` and `batch_size` with 2 proc"):
        hosts.even_batches(dataset)
    assert repr(hosts) == "Distribution(name='data_parallel', num_replicas=2, num_processes=2)"
