"""Data-parallel training on several devices: `tf.distribute` or `keras.distribution`.

TensorFlow is imported only where a TensorFlow strategy is made, wrapped or
fed (`"mirrored"`, `Distribution.even_batches`), never on import; JAX only
under `"data_parallel"`.
"""

import contextlib
import os
import sys

import keras

from keras_unet_seg._errors import InvalidArgumentError
from keras_unet_seg._naming import option
from keras_unet_seg._validation import check_positive_int, invalid_value, is_int

__all__ = ["Distribution", "distribution"]

STRATEGIES = ("mirrored", "data_parallel")

# Where each value that joins several processes comes from when it is not an
# argument: Keras' variables (`keras.distribution.initialize`), then JAX's.
HOST_VARIABLES = {
    "coordinator_address": ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "JAX_COORDINATOR_ADDRESS"),
    "num_processes": ("KERAS_DISTRIBUTION_NUM_PROCESSES",),
    "process_id": ("KERAS_DISTRIBUTION_PROCESS_ID",),
}
# The variables by which `jax.distributed.initialize` detects a Slurm step.
_SLURM_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_STEP_NODELIST",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_LOCALID",
)


class Distribution:
    """A data-parallel setup: where to build, compile and fit the model.

    Returned by `distribution`; not created directly.

    Attributes:
        name: `"mirrored"`, `"data_parallel"`, `None`, or the class name of
            another `tf.distribute.Strategy` that was passed in.
        strategy: the `tf.distribute.MirroredStrategy`, the
            `keras.distribution.DataParallel`, or `None`.
        num_replicas: int, the number of model replicas (devices), on every
            process together.
        num_processes: int, the number of processes (hosts) that train
            together; 1 unless `distribution` joined several.
        process_id: int, this process's index, from 0.
        is_chief: bool, whether this is process 0, the one that writes files.
    """

    def __init__(self, name, strategy, num_replicas, num_processes=1, process_id=0):
        self.name = name
        self.strategy = strategy
        self.num_replicas = num_replicas
        self.num_processes = num_processes
        self.process_id = process_id

    @property
    def is_chief(self):
        return self.process_id == 0

    def scope(self):
        """A context manager in which to build, compile and fit the model."""
        if self.strategy is None:
            return contextlib.nullcontext()
        return self.strategy.scope()

    def global_batch_size(self, per_replica_batch_size):
        """The batch size to give the dataset: per-replica batch x replicas.

        Args:
            per_replica_batch_size: int, the batch each device computes.

        Returns:
            int.
        """
        return check_positive_int("per_replica_batch_size", per_replica_batch_size) * (
            self.num_replicas
        )

    def even_batches(self, dataset, num_samples=None, batch_size=None):
        """Drops the batches of a `tf.data.Dataset` that do not split evenly.

        A batch whose size is not a multiple of `num_replicas` (the last,
        short batch of an epoch) fails under `"data_parallel"` (JAX cannot
        shard it) and in `fit` under `"mirrored"` (Keras adds the replicas'
        gradients, which then differ in shape; measured with Keras 3.15).
        Batches that divide evenly are kept, so metrics still count exactly
        the samples that were trained on. Every batch is still produced and
        then dropped, so a seeded augmentation draws the same random numbers
        as on one device. With one replica the dataset is returned unchanged.

        With several processes only full global batches are kept: `fit` gives
        each process its equal part of every global batch (Keras'
        `DataParallel` auto-sharding), which a short batch cannot have.

        Args:
            dataset: a batched `tf.data.Dataset` of tensors or tuples of
                tensors, batch first.
            num_samples: int, the number of samples that `dataset` batches,
                when known. Give it with `batch_size`: the result then keeps
                a known length (Keras' progress bar counts the steps).
                Defaults to `None`.
            batch_size: int, the global batch size of `dataset` (a multiple
                of `num_replicas`, as `global_batch_size` gives), with
                `num_samples`; required with several processes. Defaults to
                `None`.

        Returns:
            The `tf.data.Dataset` of the batches that split evenly.
        """
        if (num_samples is None) != (batch_size is None):
            raise InvalidArgumentError(
                "Invalid arguments for `even_batches`. Expected `num_samples` and "
                f"`batch_size` together. Received: num_samples={num_samples!r}, "
                f"batch_size={batch_size!r}"
            )
        if self.num_processes > 1 and batch_size is None:
            raise InvalidArgumentError(
                "Invalid arguments for `even_batches`. Expected `num_samples` and "
                f"`batch_size` with {self.num_processes} processes: only full global "
                "batches split among them. Received: num_samples=None, batch_size=None"
            )
        if batch_size is not None and batch_size % self.num_replicas:
            raise invalid_value(
                "batch_size", f"a multiple of the {self.num_replicas} replicas", batch_size
            )
        if self.num_replicas == 1:
            return dataset
        if num_samples is not None and not self.left_out(num_samples, batch_size):
            return dataset
        import tensorflow as tf

        replicas, full = self.num_replicas, batch_size if self.num_processes > 1 else None

        def divides_evenly(*batch):
            size = tf.shape(tf.nest.flatten(batch)[0])[0]
            return tf.equal(size, full) if full else tf.equal(size % replicas, 0)

        dataset = dataset.filter(divides_evenly)
        if num_samples is not None:
            dataset = dataset.apply(
                tf.data.experimental.assert_cardinality(num_samples // batch_size)
            )
        return dataset

    def left_out(self, num_samples, batch_size):
        """How many of `num_samples` samples `even_batches` leaves out each epoch.

        Args:
            num_samples: int, the number of samples.
            batch_size: int, the global batch size.

        Returns:
            int: the size of the short last batch if it does not split evenly
            among the replicas (with several processes: if there is one),
            else 0.
        """
        last = num_samples % batch_size
        return last if self.num_processes > 1 or last % self.num_replicas else 0

    def __repr__(self):
        hosts = f", num_processes={self.num_processes}" if self.num_processes > 1 else ""
        return f"Distribution(name={self.name!r}, num_replicas={self.num_replicas}{hosts})"


def distribution(
    strategy=None, devices=None, *, coordinator_address=None, num_processes=None, process_id=None
):
    """Sets up data-parallel training on several devices, and hosts.

    Build, compile and fit the model inside `scope()`, and batch the data with
    `global_batch_size(per_replica_batch_size)`: every replica computes a
    per-replica share of each global batch, the gradients are averaged
    across replicas, and metrics count every sample exactly once.

    - `"mirrored"` (TensorFlow backend): `tf.distribute.MirroredStrategy` on
      every local GPU, or on every logical CPU device when there is no GPU.
      One host only (Keras 3 does not support `MultiWorkerMirroredStrategy`,
      keras-team/keras#20585). Batch normalization uses each replica's own
      batch statistics (as PyTorch's DDP without SyncBatchNorm does).
    - `"data_parallel"` (JAX backend): `keras.distribution.DataParallel` on
      every device that `keras.distribution.list_devices()` reports, of
      every process. The program is one SPMD computation, so batch
      normalization sees the whole global batch, as on one device. Every
      batch must divide evenly among the devices (batch with
      `drop_remainder=True`, predict with a batch size that is a multiple of
      `num_replicas`).
    - `None`: the default device; `scope()` does nothing and
      `num_replicas` is 1.

    Several hosts (`"data_parallel"` only): one process on each host calls
    `distribution("data_parallel", ...)` with the same coordinator address
    and number of processes, and its own id, before anything runs on JAX; it
    joins the others through `keras.distribution.initialize` (gloo on CPUs).
    Values not given come from `KERAS_DISTRIBUTION_JOB_ADDRESSES` (the first
    is the coordinator), `KERAS_DISTRIBUTION_NUM_PROCESSES`,
    `KERAS_DISTRIBUTION_PROCESS_ID` or `JAX_COORDINATOR_ADDRESS`, or in a
    Slurm step of several tasks from Slurm (JAX's own detection). Every
    process builds the same dataset of global batches and `fit` gives each
    its part. Joining again with the same values does nothing.

    Args:
        strategy: `"mirrored"`, `"data_parallel"`, `None`, or an existing
            `tf.distribute.Strategy` or `keras.distribution.DataParallel`.
            Defaults to `None`.
        devices: list of device names to use instead of all of them, such as
            `["/gpu:0", "/gpu:1"]` (TensorFlow) or `["gpu:0", "gpu:1"]`
            (JAX). Defaults to `None`.
        coordinator_address: str, `"host:port"` of process 0, which the
            others connect to, for several hosts. Defaults to `None`.
        num_processes: int, the number of processes, for several hosts.
            Defaults to `None`.
        process_id: int, this process's index from 0 (0 is the
            coordinator), for several hosts. Defaults to `None`.

    Returns:
        A `Distribution`.

    Raises:
        ValueError: for an unknown strategy, or one that the active backend
            does not support; for hosts without `"data_parallel"`, incomplete
            or invalid host values, or a process that joined others already.

    Example:

    >>> dist = distribution(None)
    >>> dist.num_replicas, dist.global_batch_size(8)
    (1, 8)
    """
    hosts = _host_values(coordinator_address, num_processes, process_id)
    _check_hosts_strategy(strategy, hosts)
    if strategy is None or strategy == "none":
        return Distribution(None, None, 1)
    if not isinstance(strategy, str):
        return _existing(strategy)
    if strategy not in STRATEGIES:
        raise invalid_value("strategy", "one of 'mirrored', 'data_parallel' or None", strategy)
    backend = keras.backend.backend()
    if strategy == "mirrored":
        return _mirrored(devices, backend)
    return _data_parallel(devices, backend, hosts)


def _check_hosts_strategy(strategy, hosts):
    """Refuses several hosts with a strategy other than `"data_parallel"`."""
    if hosts is None or all(value is None for value in hosts.values()):
        return
    if strategy != "data_parallel":
        expected = (
            "'data_parallel': several hosts train with 'data_parallel' (JAX) only; Keras 3 "
            "does not support TensorFlow's MultiWorkerMirroredStrategy (keras-team/keras#20585)"
        )
        received = f"strategy={strategy!r} with {_describe(hosts)}"
        raise invalid_value("strategy", expected, received=received)


def _host_values(coordinator_address=None, num_processes=None, process_id=None, environ=None):
    """The values that join several processes, or `None` for one process.

    Each value not given is read from `environ` (`HOST_VARIABLES`). Inside a
    Slurm step of several tasks, missing values stay `None`: JAX reads them
    from Slurm's variables (and nothing joins unless the strategy is
    `"data_parallel"`).

    Args:
        coordinator_address: str or `None`.
        num_processes: int or `None`.
        process_id: int or `None`.
        environ: mapping, by default `os.environ`.

    Returns:
        A dict of the three values, or `None` when none is given and no Slurm
        step of several tasks is found.

    Raises:
        ValueError: naming the missing or invalid value and its variables.
    """
    environ = os.environ if environ is None else environ
    given = {
        "coordinator_address": coordinator_address,
        "num_processes": num_processes,
        "process_id": process_id,
    }
    values = {name: _from_environ(name, value, environ) for name, value in given.items()}
    slurm = all(name in environ for name in _SLURM_VARIABLES) and environ["SLURM_NTASKS"] != "1"
    if not slurm and all(value is None for value in values.values()):
        return None
    missing = [name for name, value in values.items() if value is None]
    if missing and not slurm:
        name = missing[0]
        raise InvalidArgumentError(
            f"Missing value for argument {option(name)} (or "
            f"{' or '.join(HOST_VARIABLES[name])}) "
            f"to join several processes. Received: {_describe(values)}"
        )
    if values["num_processes"] is not None:
        check_positive_int("num_processes", values["num_processes"])
    if values["process_id"] is not None:
        limit = values["num_processes"]
        pid = values["process_id"]
        if not is_int(pid) or pid < 0 or (limit is not None and pid >= limit):
            bound = "an integer from 0" + (f" to {limit - 1}" if limit is not None else "")
            raise invalid_value("process_id", f"{bound} (num_processes={limit})", pid)
    address = values["coordinator_address"]
    if address is not None and (not isinstance(address, str) or ":" not in address):
        raise invalid_value("coordinator_address", "'host:port' of process 0", address)
    return values


def _from_environ(name, value, environ):
    """`value`, else the first of `name`'s variables that is set (an int where it must be)."""
    if value is not None:
        return value
    for variable in HOST_VARIABLES[name]:
        text = environ.get(variable, "").strip()
        if not text:
            continue
        if name == "coordinator_address":
            return text.split(",")[0]
        try:
            return int(text)
        except ValueError:
            raise InvalidArgumentError(
                f"Invalid value for environment variable {variable}. Expected an integer "
                f"({name}). Received: {variable}={text!r}"
            ) from None
    return None


def _describe(values):
    return ", ".join(f"{name}={value!r}" for name, value in values.items())


def _join(hosts):
    """Joins the other processes once (`keras.distribution.initialize`); JAX only."""
    import jax

    if jax.distributed.is_initialized():
        joined = {"num_processes": jax.process_count(), "process_id": jax.process_index()}
        wanted = {name: hosts[name] for name in joined if hosts[name] is not None}
        if any(joined[name] != value for name, value in wanted.items()):
            raise InvalidArgumentError(
                f"Invalid arguments: this process already joined {_describe(joined)}; a "
                f"process joins others once. Received: {_describe(hosts)}"
            )
        return
    # The CPU collectives across processes: gloo, JAX's default in recent versions.
    if getattr(jax.config, "jax_cpu_collectives_implementation", "gloo") in (None, "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        keras.distribution.initialize(
            hosts["coordinator_address"], hosts["num_processes"], hosts["process_id"]
        )
    except RuntimeError as error:  # JAX ran something already, or the others did not come
        raise InvalidArgumentError(
            f"Cannot join several processes: {error} Received: {_describe(hosts)}"
        ) from None


def _existing(strategy):
    """The `Distribution` of a strategy object made by the user."""
    if isinstance(strategy, (keras.distribution.DataParallel, keras.distribution.ModelParallel)):
        return _keras_distribution(strategy)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        if isinstance(strategy, tf.distribute.Strategy):
            name = (
                "mirrored"
                if isinstance(strategy, tf.distribute.MirroredStrategy)
                else type(strategy).__name__
            )
            return Distribution(name, strategy, strategy.num_replicas_in_sync)
    raise invalid_value(
        "strategy",
        "one of 'mirrored', 'data_parallel', None, a tf.distribute.Strategy or a "
        "keras.distribution.DataParallel",
        strategy,
    )


def _mirrored(devices, backend):
    """`tf.distribute.MirroredStrategy` on `devices`: every local GPU, else every CPU."""
    if backend != "tensorflow":
        expected = (
            "a strategy of this backend: 'mirrored' (tf.distribute.MirroredStrategy) needs "
            f"the TensorFlow backend; with the {backend} backend use 'data_parallel' (JAX)"
        )
        received = f"strategy='mirrored' with KERAS_BACKEND={backend!r}"
        raise invalid_value("strategy", expected, received=received)
    import tensorflow as tf

    if devices is None:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
    mirrored = tf.distribute.MirroredStrategy(devices=list(devices))
    return Distribution("mirrored", mirrored, mirrored.num_replicas_in_sync)


def _data_parallel(devices, backend, hosts):
    """`keras.distribution.DataParallel` on `devices`, by default every device."""
    if backend != "jax":
        instead = "use 'mirrored'" if backend == "tensorflow" else "train on one device"
        expected = (
            "a strategy of this backend: 'data_parallel' (keras.distribution.DataParallel) "
            f"needs the JAX backend in this Keras version; with the {backend} backend {instead}"
        )
        received = f"strategy='data_parallel' with KERAS_BACKEND={backend!r}"
        raise invalid_value("strategy", expected, received=received)
    if hosts is not None:
        _join(hosts)
    devices = list(devices) if devices is not None else keras.distribution.list_devices()
    data_parallel = keras.distribution.DataParallel(devices=devices)
    return _keras_distribution(data_parallel)


def _keras_distribution(dist):
    """The `Distribution` of a `keras.distribution` one: every device, every process."""
    process_id = 0
    if dist.num_processes > 1:  # only JAX joins several processes
        import jax

        process_id = jax.process_index()
    return Distribution(
        "data_parallel",
        dist,
        int(dist.device_mesh.devices.size),
        num_processes=dist.num_processes,
        process_id=process_id,
    )
