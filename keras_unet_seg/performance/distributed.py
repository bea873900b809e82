"""Data-parallel training on several devices: `tf.distribute` or `keras.distribution`.

TensorFlow is imported only where a TensorFlow strategy is made, wrapped or
fed (`"mirrored"`, `Distribution.even_batches`), never on import.
"""

import contextlib
import sys

import keras

from keras_unet_seg._validation import check_positive_int, invalid_value

__all__ = ["Distribution", "distribution"]

STRATEGIES = ("mirrored", "data_parallel")


class Distribution:
    """A data-parallel setup: where to build, compile and fit the model.

    Returned by `distribution`; not created directly.

    Attributes:
        name: `"mirrored"`, `"data_parallel"`, `None`, or the class name of
            another `tf.distribute.Strategy` that was passed in.
        strategy: the `tf.distribute.MirroredStrategy`, the
            `keras.distribution.DataParallel`, or `None`.
        num_replicas: int, the number of model replicas (devices).
    """

    def __init__(self, name, strategy, num_replicas):
        self.name = name
        self.strategy = strategy
        self.num_replicas = num_replicas

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

        Args:
            dataset: a batched `tf.data.Dataset` of tensors or tuples of
                tensors, batch first.
            num_samples: int, the number of samples that `dataset` batches,
                when known. Give it with `batch_size`: the result then keeps
                a known length (Keras' progress bar counts the steps).
                Defaults to `None`.
            batch_size: int, the global batch size of `dataset` (a multiple
                of `num_replicas`, as `global_batch_size` gives), with
                `num_samples`. Defaults to `None`.

        Returns:
            The `tf.data.Dataset` of the batches that split evenly.
        """
        if (num_samples is None) != (batch_size is None):
            raise ValueError(
                "Invalid arguments for `even_batches`. Expected `num_samples` and "
                f"`batch_size` together. Received: num_samples={num_samples!r}, "
                f"batch_size={batch_size!r}"
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

        replicas = self.num_replicas

        def divides_evenly(*batch):
            first = tf.nest.flatten(batch)[0]
            return tf.equal(tf.shape(first)[0] % replicas, 0)

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
            among the replicas, else 0.
        """
        last = num_samples % batch_size
        return last if last % self.num_replicas else 0

    def __repr__(self):
        return f"Distribution(name={self.name!r}, num_replicas={self.num_replicas})"


def distribution(strategy=None, devices=None):
    """Sets up data-parallel training on several devices.

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
      every device that `keras.distribution.list_devices()` reports; after
      `keras.distribution.initialize()` on each host that includes the
      devices of every host. The program is one SPMD computation, so batch
      normalization sees the whole global batch, as on one device. Every
      batch must divide evenly among the devices (batch with
      `drop_remainder=True`, predict with a batch size that is a multiple of
      `num_replicas`).
    - `None`: the default device; `scope()` does nothing and
      `num_replicas` is 1.

    Args:
        strategy: `"mirrored"`, `"data_parallel"`, `None`, or an existing
            `tf.distribute.Strategy` or `keras.distribution.DataParallel`.
            Defaults to `None`.
        devices: list of device names to use instead of all of them, such as
            `["/gpu:0", "/gpu:1"]` (TensorFlow) or `["gpu:0", "gpu:1"]`
            (JAX). Defaults to `None`.

    Returns:
        A `Distribution`.

    Raises:
        ValueError: for an unknown strategy, or one that the active backend
            does not support.

    Example:

    >>> dist = distribution(None)
    >>> dist.num_replicas, dist.global_batch_size(8)
    (1, 8)
    """
    if strategy is None or strategy == "none":
        return Distribution(None, None, 1)
    if not isinstance(strategy, str):
        return _existing(strategy)
    if strategy not in STRATEGIES:
        raise invalid_value("strategy", "one of 'mirrored', 'data_parallel' or None", strategy)
    backend = keras.backend.backend()
    if strategy == "mirrored":
        return _mirrored(devices, backend)
    return _data_parallel(devices, backend)


def _existing(strategy):
    """The `Distribution` of a strategy object made by the user."""
    if isinstance(strategy, (keras.distribution.DataParallel, keras.distribution.ModelParallel)):
        return Distribution("data_parallel", strategy, _keras_replicas(strategy))
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
        raise ValueError(
            "Invalid value for argument `strategy`: 'mirrored' "
            "(tf.distribute.MirroredStrategy) needs the TensorFlow backend; with "
            f"the {backend} backend use 'data_parallel' (JAX) instead. "
            f"Received: strategy='mirrored' with KERAS_BACKEND={backend!r}"
        )
    import tensorflow as tf

    if devices is None:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
    mirrored = tf.distribute.MirroredStrategy(devices=list(devices))
    return Distribution("mirrored", mirrored, mirrored.num_replicas_in_sync)


def _data_parallel(devices, backend):
    """`keras.distribution.DataParallel` on `devices`, by default every device."""
    if backend != "jax":
        raise ValueError(
            "Invalid value for argument `strategy`: 'data_parallel' "
            "(keras.distribution.DataParallel) needs the JAX backend in this Keras "
            f"version; with the {backend} backend "
            + ("use 'mirrored' instead. " if backend == "tensorflow" else "train on one device. ")
            + f"Received: strategy='data_parallel' with KERAS_BACKEND={backend!r}"
        )
    devices = list(devices) if devices is not None else keras.distribution.list_devices()
    data_parallel = keras.distribution.DataParallel(devices=devices)
    return Distribution("data_parallel", data_parallel, _keras_replicas(data_parallel))


def _keras_replicas(dist):
    return int(dist.device_mesh.devices.size)
