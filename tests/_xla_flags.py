"""XLA flags for the tests' JAX processes (backend reruns, several devices, several hosts).

JAX compiles each operation of the tests' small models anew for every shape, and
LLVM's optimizations cost more than they save there: the decoder and ConvBlock tests
took 63 s with them, 29 s without. Not for the main TensorFlow run, whose XLA training
steps run longer without them.
"""

FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def with_devices(count):
    """`XLA_FLAGS` for `count` host CPU devices, compiled fast."""
    return f"--xla_force_host_platform_device_count={count} {FAST_COMPILE}"
