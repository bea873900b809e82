"""Precision and XLA: the Keras dtype policy and `jit_compile` chosen per machine.

- `set_precision` / `resolve_precision`: the Keras dtype policy.
  `"auto"` picks `"mixed_bfloat16"` where bfloat16 runs in hardware and was
  measured to pay, `"mixed_float16"` on GPUs that have float16 but no
  bfloat16 tensor cores, and `"float32"` otherwise. Under a mixed policy the
  weights, the losses, the metrics and `UNet`'s output layer stay float32.
- `with_precision`: a model rebuilt under another policy, same weights.
- `resolve_jit_compile`: XLA where it pays, for `model.compile(jit_compile=...)`.

The measurements behind the defaults are in `benchmarks/bench_train.py` and
the Performance page of the documentation.
"""

import os

import keras

from keras_unet_seg._errors import InvalidArgumentError
from keras_unet_seg._validation import check_built_model, check_choice, invalid_value
from keras_unet_seg.performance import devices

__all__ = ["resolve_jit_compile", "resolve_precision", "set_precision", "with_precision"]

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")

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

# Measured on TensorFlow 2.21, CPU (see the Performance page).
_TF_CPU_XLA_TRAIN = False
_TF_CPU_XLA_INFER = False


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
    check_choice("precision", precision, PRECISIONS)
    if precision != "auto":
        return precision
    kind, capability = devices.accelerator()
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
    if not devices.cpu_supports_bfloat16():
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
    its `dtype` constructor argument, as `UNet` does. Every layer that had
    the model's policy gets the new one, nested ones included (such as the
    `keras.applications` network of an encoder, whose config carries its
    own policy); a layer deliberately kept in another (`UNet`'s float32
    output activation) keeps it.

    Args:
        model: a built Keras model, such as a loaded `UNet`.
        precision: see `resolve_precision`; `"auto"` uses the model's
            `base_filters` when it has one. Defaults to `"auto"`.
        training: bool, passed to `resolve_precision`. Defaults to `False`.

    Returns:
        The model itself if it already has that policy, otherwise a new,
        built model of the same class with the weights copied.

    Raises:
        ValueError: if the model is not built, if its config has no `dtype`
            entry to replace, or if a layer of the copy kept the old policy.
    """
    policy = resolve_precision(
        precision, base_filters=getattr(model, "base_filters", None), training=training
    )
    if model.dtype_policy.name == policy:
        return model
    check_built_model(model)
    config = model.get_config()
    if "dtype" not in config:
        expected = "a model whose config takes a `dtype` argument, such as `UNet`"
        received = f"model of class {type(model).__name__}"
        raise invalid_value("model", expected, received=received)
    config = _with_policy(config, model.dtype_policy.name, policy)
    config["dtype"] = policy
    clone = type(model).from_config(config)
    build_config = model.get_build_config()
    if build_config:
        clone.build_from_config(build_config)
    _check_every_layer(model, clone, policy)
    clone.set_weights(model.get_weights())
    return clone


def _with_policy(config, old, new):
    """`config` with every serialized dtype policy named `old`, at any depth, named `new`."""
    if isinstance(config, list):
        return [_with_policy(value, old, new) for value in config]
    if not isinstance(config, dict):
        return config
    inner = config.get("config")
    if (
        config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy")
        and isinstance(inner, dict)
        and inner.get("name") == old
    ):
        return {**config, "config": {**inner, "name": new}}
    return {key: _with_policy(value, old, new) for key, value in config.items()}


def _check_every_layer(model, clone, policy):
    """Raises if a layer of `clone` kept the reduced precision of `model`'s policy.

    (A layer kept in float32 may be deliberate, as `UNet`'s output activation.)
    """
    old = model.dtype_policy.name
    if old == "float32":
        return
    kept = [layer.name for layer in clone._flatten_layers() if layer.dtype_policy.name == old]
    if kept:
        raise InvalidArgumentError(
            f"Cannot rebuild model {model.name!r} under {policy!r}: layers {kept} keep "
            f"{old!r} (their config does not carry the dtype policy)."
        )


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
        raise invalid_value("jit_compile", "'auto', True or False", jit_compile)
    backend = keras.backend.backend()
    if backend == "jax":
        return True
    if backend == "tensorflow":
        if distribution is not None and distribution.name not in (None, "data_parallel"):
            return False
        kind, _ = devices.accelerator()
        if kind != "cpu":
            return True
        return _TF_CPU_XLA_TRAIN if training else _TF_CPU_XLA_INFER
    return False
