"""Fast by default: precision, XLA and data-parallel training chosen per machine.

Three switches make a U-Net train and predict faster without changing what
it learns, and this module picks them for the machine at hand:

- `set_precision` / `resolve_precision`: the Keras dtype policy.
  `"auto"` picks `"mixed_bfloat16"` where bfloat16 runs in hardware and was
  measured to pay, `"mixed_float16"` on GPUs that have float16 but no
  bfloat16 tensor cores, and `"float32"` otherwise. Under a mixed policy the
  weights, the losses, the metrics and `UNet`'s output layer stay float32.
- `resolve_jit_compile`: XLA where it pays, for `model.compile(jit_compile=...)`.
- `distribution`: data-parallel training on every local GPU
  (`tf.distribute.MirroredStrategy`) or on every JAX device, across hosts
  too (`keras.distribution.DataParallel`).

`estimate_flops` counts a model's convolution FLOPs, for throughput figures.
The measurements behind the defaults are in `benchmarks/bench_train.py` and
the Performance page of the documentation.
"""

import contextlib
import os
import sys

import keras

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("mirrored", "data_parallel")

# CPU flags of hardware bfloat16 dot products (x86: AVX512-BF16 on Cooper Lake,
# Sapphire Rapids and Zen 4 or later; AMX on Sapphire Rapids or later).
_CPU_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")

# On CPUs, bfloat16 pays only when the convolutions are wide enough for the
# bfloat16 dot products to outweigh the casts and the float32 normalisations
# around them. Measured with benchmarks/bench_train.py on a 2-core Zen 4
# (AVX512-BF16), TensorFlow 2.21 + oneDNN, batch 8, against float32:
# base_filters 8: training 1.14x, inference 0.94x (slower); 16: 1.21x / 1.30x
# (64x64) and 1.24x / 1.27x (128x128); 32: 1.5-1.6x / 1.6x; 64: 1.7-1.8x.
_CPU_BFLOAT16_MIN_TRAIN_FILTERS = 16
_CPU_BFLOAT16_MIN_INFER_FILTERS = 16
# The UNet default, assumed when `resolve_precision` gets no `base_filters`.
_DEFAULT_BASE_FILTERS = 64
# Backends whose CPU convolutions run bfloat16 in hardware (TensorFlow through
# oneDNN). XLA:CPU (JAX) was measured no faster in bfloat16 than in float32.
_CPU_BFLOAT16_BACKENDS = ("tensorflow",)


# --------------------------------------------------------------------------- devices


def cpu_flags():
    """Returns the CPU's feature flags as a frozenset of lower-case names.

    Read from `/proc/cpuinfo` (Linux); empty on other systems, where
    `precision="auto"` then keeps float32 on the CPU.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].lower().split())
    except OSError:
        pass
    return frozenset()


def cpu_supports_bfloat16(flags=None):
    """Whether the CPU has hardware bfloat16 dot products (AVX512-BF16 or AMX).

    Args:
        flags: iterable of CPU flag names, for tests. Defaults to `cpu_flags()`.

    Returns:
        bool.
    """
    flags = cpu_flags() if flags is None else {flag.lower() for flag in flags}
    return any(flag in flags for flag in _CPU_BFLOAT16_FLAGS)


def accelerator():
    """Describes the accelerator that the active Keras backend would use.

    Returns:
        A tuple `(kind, compute_capability)`: `("gpu", (8, 0))` for an NVIDIA
        A100 (the lowest capability when several GPUs differ), `("gpu",
        None)` for a GPU whose capability is unknown, `("tpu", None)`, or
        `("cpu", None)` when the backend computes on the CPU.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return ("tpu", None) if tf.config.list_physical_devices("TPU") else ("cpu", None)
        capabilities = [
            tf.config.experimental.get_device_details(gpu).get("compute_capability") for gpu in gpus
        ]
        return "gpu", _lowest(capabilities)
    if backend == "jax":
        import jax

        platform = jax.default_backend()
        if platform == "tpu":
            return "tpu", None
        if platform in ("gpu", "cuda", "rocm"):
            capabilities = [
                getattr(device, "compute_capability", None) for device in jax.local_devices()
            ]
            return "gpu", _lowest(capabilities)
        return "cpu", None
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            capabilities = [
                torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())
            ]
            return "gpu", _lowest(capabilities)
        return "cpu", None
    return "cpu", None


def _lowest(capabilities):
    parsed = []
    for capability in capabilities:
        if capability is None:
            return None
        if isinstance(capability, str):
            capability = tuple(int(part) for part in capability.split(".")[:2])
        parsed.append(tuple(capability))
    return min(parsed) if parsed else None


# --------------------------------------------------------------------------- precision


def _check_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(
            "Invalid value for argument `precision`. Expected one of "
            + ", ".join(repr(p) for p in PRECISIONS)
            + f". Received: precision={precision!r}"
        )


def resolve_precision(precision="auto", *, base_filters=None, training=True):
    """Resolves a precision option to the name of a Keras dtype policy.

    `"auto"` picks, for the active backend and its device:

    - a GPU of compute capability 8.0 or more (A100, H100, RTX 30xx and
      later): `"mixed_bfloat16"`; 7.x (V100, T4, RTX 20xx): `"mixed_float16"`
      (Keras scales the loss automatically under this policy); older or
      unknown GPUs: `"float32"`. A TPU: `"mixed_bfloat16"`.
    - a CPU with AVX512-BF16 or AMX (read from `/proc/cpuinfo`) on the
      TensorFlow backend (oneDNN): `"mixed_bfloat16"` when `base_filters`
      is at least 16. Measured on such a CPU (2-core Zen 4), bfloat16 trains
      and predicts 1.2-1.3x faster than float32 at 16 base filters and
      1.5-1.8x faster at 32 and 64, but predicts slower at 8, where the
      casts around the small convolutions cost more than they save. JAX's
      CPU backend (XLA) gains nothing from bfloat16 (its bfloat16 matmul is
      no faster than float32), and `TF_ENABLE_ONEDNN_OPTS=0` turns oneDNN
      off: both keep float32.
    - anything else: `"float32"`.

    Other values are returned unchanged.

    Args:
        precision: `"auto"`, `"float32"`, `"mixed_bfloat16"` or
            `"mixed_float16"`. Defaults to `"auto"`.
        base_filters: int, the U-Net's first-level filters, which decide
            whether bfloat16 pays on a CPU. Defaults to `None`, meaning
            `UNet`'s default (64).
        training: bool, whether the precision is for training (`True`) or
            for inference only. Defaults to `True`.

    Returns:
        str, the dtype policy name.

    Raises:
        ValueError: if `precision` is not one of the values above.

    Example:

    >>> resolve_precision("float32")
    'float32'
    >>> resolve_precision("auto") in ("float32", "mixed_bfloat16", "mixed_float16")
    True
    """
    _check_precision(precision)
    if precision != "auto":
        return precision
    kind, capability = accelerator()
    if kind == "tpu":
        return "mixed_bfloat16"
    if kind == "gpu":
        if capability is None:
            return "float32"
        if capability >= (8, 0):
            return "mixed_bfloat16"
        if capability >= (7, 0):
            return "mixed_float16"
        return "float32"
    return _cpu_precision(base_filters, training)


def _cpu_precision(base_filters, training):
    if not cpu_supports_bfloat16():
        return "float32"
    if keras.backend.backend() not in _CPU_BFLOAT16_BACKENDS:
        return "float32"
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() in ("0", "false"):
        return "float32"
    filters = _DEFAULT_BASE_FILTERS if base_filters is None else base_filters
    threshold = _CPU_BFLOAT16_MIN_TRAIN_FILTERS if training else _CPU_BFLOAT16_MIN_INFER_FILTERS
    return "mixed_bfloat16" if filters >= threshold else "float32"


def set_precision(precision="auto", *, base_filters=None, training=True):
    """Sets Keras' global dtype policy and returns its name.

    Call it before building the model: layers take the global policy when
    they are created. `UNet` keeps its weights and its output layer in
    float32 under a mixed policy, and the library's losses and metrics
    compute in float32.

    Args:
        precision: see `resolve_precision`. Defaults to `"auto"`.
        base_filters: see `resolve_precision`. Defaults to `None`.
        training: see `resolve_precision`. Defaults to `True`.

    Returns:
        str, the dtype policy name that was set.

    Example:

    >>> from keras_unet_seg import UNet
    >>> policy = set_precision("mixed_bfloat16")
    >>> model = UNet(base_filters=8, depth=2)
    >>> output = model(keras.ops.zeros((1, 16, 16, 3)))
    >>> model.dtype_policy.name, keras.backend.standardize_dtype(output.dtype)
    ('mixed_bfloat16', 'float32')
    >>> set_precision("float32")
    'float32'
    """
    policy = resolve_precision(precision, base_filters=base_filters, training=training)
    keras.config.set_dtype_policy(policy)
    return policy


def with_precision(model, precision="auto", training=False):
    """Returns a copy of a model rebuilt under another precision, same weights.

    A saved model keeps the dtype policy it was built with; this rebuilds it
    from its config under `precision` and copies the weights (which are
    float32 under every policy), for example to predict in bfloat16 with a
    model trained in float32. The model's class must take the policy through
    its `dtype` constructor argument, as `UNet` does.

    Args:
        model: a built Keras model, such as a loaded `UNet`.
        precision: see `resolve_precision`; `"auto"` uses the model's
            `base_filters` when it has one. Defaults to `"auto"`.
        training: bool, passed to `resolve_precision`. Defaults to `False`.

    Returns:
        The model itself if it already has that policy, otherwise a new,
        built model of the same class with the weights copied.

    Raises:
        ValueError: if the model is not built, or if its config has no
            `dtype` entry to replace.
    """
    policy = resolve_precision(
        precision, base_filters=getattr(model, "base_filters", None), training=training
    )
    if model.dtype_policy.name == policy:
        return model
    if not model.built:
        raise ValueError(
            "Invalid value for argument `model`. Expected a built model (call it on a batch "
            f"or `build` it first). Received: model={model.name!r} (not built)"
        )
    config = model.get_config()
    if "dtype" not in config:
        raise ValueError(
            "Invalid value for argument `model`. Expected a model whose config takes a "
            f"`dtype` argument, such as `UNet`. Received: model of class "
            f"{type(model).__name__}"
        )
    config["dtype"] = policy
    clone = type(model).from_config(config)
    build_config = model.get_build_config()
    if build_config:
        clone.build_from_config(build_config)
    clone.set_weights(model.get_weights())
    return clone


# --------------------------------------------------------------------------- XLA


def resolve_jit_compile(jit_compile="auto", *, training=True, distribution=None):
    """Resolves `jit_compile="auto"` to what was measured fastest for `UNet`.

    Keras' own `"auto"` turns XLA on for TensorFlow only when a GPU or TPU
    is present, on for JAX always, and off for PyTorch (where `True` means
    `torch.compile`). This keeps those choices except TensorFlow on the CPU,
    where XLA was measured against oneDNN with `benchmarks/bench_train.py`.

    Args:
        jit_compile: `"auto"`, `True` or `False`. Defaults to `"auto"`.
        training: bool, whether the model will be trained (`True`) or only
            used for inference. Defaults to `True`.
        distribution: the `Distribution` the model trains under, or `None`.
            Under `"mirrored"` (any `tf.distribute` strategy), `"auto"` gives
            `False`, as Keras' does: XLA
            cannot reach variables mirrored on other devices of one process
            (measured on logical CPU devices; TensorFlow's XLA known issue
            "tf.Variable on a different device"). Defaults to `None`.

    Returns:
        bool, for `model.compile(jit_compile=...)` or `model.jit_compile`.

    Raises:
        ValueError: if `jit_compile` is not `"auto"`, `True` or `False`.
    """
    if isinstance(jit_compile, bool):
        return jit_compile
    if jit_compile != "auto":
        raise ValueError(
            "Invalid value for argument `jit_compile`. Expected 'auto', True or False. "
            f"Received: jit_compile={jit_compile!r}"
        )
    backend = keras.backend.backend()
    if backend == "jax":
        return True
    if backend == "tensorflow":
        if distribution is not None and distribution.name not in (None, "data_parallel"):
            return False
        kind, _ = accelerator()
        if kind != "cpu":
            return True
        return _TF_CPU_XLA_TRAIN if training else _TF_CPU_XLA_INFER
    return False


# Measured on TensorFlow 2.21, CPU (see the Performance page).
_TF_CPU_XLA_TRAIN = False
_TF_CPU_XLA_INFER = False


# --------------------------------------------------------------------------- distribution


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
        if (
            isinstance(per_replica_batch_size, bool)
            or not isinstance(per_replica_batch_size, int)
            or per_replica_batch_size < 1
        ):
            raise ValueError(
                "Invalid value for argument `per_replica_batch_size`. Expected a positive "
                f"integer. Received: per_replica_batch_size={per_replica_batch_size!r}"
            )
        return per_replica_batch_size * self.num_replicas

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
            raise ValueError(
                "Invalid value for argument `batch_size`. Expected a multiple of the "
                f"{self.num_replicas} replicas. Received: batch_size={batch_size!r}"
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
    if isinstance(strategy, (keras.distribution.DataParallel, keras.distribution.ModelParallel)):
        return Distribution("data_parallel", strategy, _keras_replicas(strategy))
    if not isinstance(strategy, str):
        if "tensorflow" in sys.modules:
            import tensorflow as tf

            if isinstance(strategy, tf.distribute.Strategy):
                name = (
                    "mirrored"
                    if isinstance(strategy, tf.distribute.MirroredStrategy)
                    else type(strategy).__name__
                )
                return Distribution(name, strategy, strategy.num_replicas_in_sync)
        raise ValueError(
            "Invalid value for argument `strategy`. Expected one of 'mirrored', "
            "'data_parallel', None, a tf.distribute.Strategy or a "
            f"keras.distribution.DataParallel. Received: strategy={strategy!r}"
        )
    if strategy not in STRATEGIES:
        raise ValueError(
            "Invalid value for argument `strategy`. Expected one of 'mirrored', "
            f"'data_parallel' or None. Received: strategy={strategy!r}"
        )
    backend = keras.backend.backend()
    if strategy == "mirrored":
        if backend != "tensorflow":
            raise ValueError(
                "Invalid value for argument `strategy`: 'mirrored' "
                "(tf.distribute.MirroredStrategy) needs the TensorFlow backend; with "
                f"the {backend} backend use 'data_parallel' (JAX) instead. "
                f"Received: strategy={strategy!r} with KERAS_BACKEND={backend!r}"
            )
        import tensorflow as tf

        if devices is None:
            devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
                d.name for d in tf.config.list_logical_devices("CPU")
            ]
        mirrored = tf.distribute.MirroredStrategy(devices=list(devices))
        return Distribution("mirrored", mirrored, mirrored.num_replicas_in_sync)
    if backend != "jax":
        raise ValueError(
            "Invalid value for argument `strategy`: 'data_parallel' "
            "(keras.distribution.DataParallel) needs the JAX backend in this Keras "
            f"version; with the {backend} backend "
            + ("use 'mirrored' instead. " if backend == "tensorflow" else "train on one device. ")
            + f"Received: strategy={strategy!r} with KERAS_BACKEND={backend!r}"
        )
    devices = list(devices) if devices is not None else keras.distribution.list_devices()
    data_parallel = keras.distribution.DataParallel(devices=devices)
    return Distribution("data_parallel", data_parallel, _keras_replicas(data_parallel))


def _keras_replicas(dist):
    return int(dist.device_mesh.devices.size)


# --------------------------------------------------------------------------- FLOPs


def estimate_flops(model, input_shape, training=False):
    """Counts the floating-point operations of a model's convolutions.

    Every `Conv2D` and `Conv2DTranspose` in the model counts
    `2 * kernel_height * kernel_width * input_channels * output_channels`
    operations per output pixel (per input pixel for a transposed
    convolution), a `DepthwiseConv2D` `2 * kernel_height * kernel_width *
    channels * depth_multiplier`, and a `Dense` layer on feature maps (the
    pointwise convolutions of ConvNeXt) `2 * input_units * units` per pixel.
    Normalization, activations and pooling are left out, as
    is usual; they are a few percent of a U-Net's work. A training step
    counts three times the forward pass (the forward pass, then the
    gradients with respect to the activations and to the weights).

    Args:
        model: a Keras model whose class rebuilds from its config, such as
            `UNet`. It is rebuilt at `input_shape` (without its weights) to
            read each layer's input shape.
        input_shape: tuple `(batch, height, width, channels)` with known
            height and width; a `None` batch counts as one image.
        training: bool, whether to count a training step. Defaults to
            `False`.

    Returns:
        int, the number of floating-point operations for the batch.

    Raises:
        ValueError: if the height or width is unknown.

    Example:

    >>> from keras_unet_seg import UNet
    >>> flops = estimate_flops(UNet(base_filters=64), (1, 256, 256, 3))
    >>> round(flops / 1e9, 1)
    96.3
    """
    batch, height, width, channels = input_shape
    if height is None or width is None:
        raise ValueError(
            "Invalid value for argument `input_shape`. Expected known height and width. "
            f"Received: input_shape={input_shape}"
        )
    shape = (batch or 1, height, width, channels)
    probe = type(model).from_config(model.get_config())
    probe.build(shape)
    layers = list(probe._flatten_layers(include_self=False))
    # Networks built for any image size (keras.applications encoders) know their
    # layers' input shapes only once an image of this size runs through them.
    padded = getattr(probe, "_padded_size", lambda size: size)
    input_shapes = {}
    for network in layers:  # outer networks come before the networks inside them
        if _is_graph(network) and id(network) not in input_shapes:
            _, _, _, network_channels = network.inputs[0].shape
            image = (1, padded(height), padded(width), network_channels)
            _graph_input_shapes(network, image, input_shapes)
    total = 0
    for layer in layers:
        total += _layer_flops(layer, input_shapes.get(id(layer))) * shape[0]
    return total * 3 if training else total


def _is_graph(layer):
    return isinstance(layer, keras.Model) and bool(getattr(layer, "inputs", None))


def _graph_input_shapes(network, input_shape, shapes):
    """Adds to `shapes` the input shape of each layer of a functional or sequential model.

    For an input of `input_shape`, through the networks inside it too.
    """
    shapes[id(network)] = input_shape
    graph = getattr(network, "_functional", network)  # a Sequential's own graph
    # The network's own nodes: a layer of a network cut out of a larger one has others.
    inputs = {}
    for nodes in graph._nodes_by_depth.values():
        for node in nodes:
            operation = node.operation
            if isinstance(operation, _COUNTED) or _is_graph(operation):
                inputs[id(operation)] = (operation, node.input_tensors[0])
    if not inputs:
        return
    operations = [operation for operation, _ in inputs.values()]
    probe = keras.Model(graph.inputs, [tensor for _, tensor in inputs.values()])
    specs = keras.tree.flatten(probe.compute_output_spec(keras.KerasTensor(input_shape)))
    for operation, spec in zip(operations, specs, strict=True):
        if _is_graph(operation):
            _graph_input_shapes(operation, tuple(spec.shape), shapes)
        else:
            shapes[id(operation)] = tuple(spec.shape)


_COUNTED = (
    keras.layers.Conv2D,
    keras.layers.Conv2DTranspose,
    keras.layers.DepthwiseConv2D,
    keras.layers.Dense,
)


def _layer_flops(layer, layer_input=None):
    """Floating-point operations of one image through `layer` (0 if not counted)."""
    if not isinstance(layer, _COUNTED) or not layer.built:
        return 0
    layer_input = layer_input or layer.get_build_config()["input_shape"]
    if isinstance(layer, keras.layers.Dense):
        if len(layer_input) != 4:
            return 0
        _, height, width, units = layer_input
        return 2 * units * layer.units * height * width
    kernel_h, kernel_w = layer.kernel_size
    if isinstance(layer, keras.layers.Conv2DTranspose):
        _, in_h, in_w, in_c = layer_input
        return 2 * kernel_h * kernel_w * in_c * layer.filters * in_h * in_w
    _, out_h, out_w, _ = layer.compute_output_shape(layer_input)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return 2 * kernel_h * kernel_w * layer_input[-1] * layer.depth_multiplier * out_h * out_w
    in_c = layer_input[-1] // getattr(layer, "groups", 1)
    return 2 * kernel_h * kernel_w * in_c * layer.filters * out_h * out_w
