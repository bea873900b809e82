"""The machine: the accelerator of the active backend and the CPU's bfloat16 support.

What `precision="auto"` and `jit_compile="auto"` decide from. TensorFlow,
JAX or PyTorch is imported only when it is the active Keras backend.
"""

import keras

__all__ = ["accelerator", "cpu_flags", "cpu_supports_bfloat16"]

# CPU flags of hardware bfloat16 dot products (x86: AVX512-BF16 on Cooper Lake,
# Sapphire Rapids and Zen 4 or later; AMX on Sapphire Rapids or later).
_CPU_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


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


def speed_summary(policy, jit_compile, num_replicas=1):
    """One line that says how a run computes, such as `float32, XLA off, 1 device`."""
    devices = "1 device" if num_replicas == 1 else f"{num_replicas} devices"
    return f"{policy}, XLA {'on' if jit_compile else 'off'}, {devices}"
