"""Fast by default: precision, XLA and data-parallel training chosen per machine.

Three switches make a U-Net train and predict faster without changing what
it learns, and this package picks them for the machine at hand:

- `keras_unet_seg.performance.precision`: the Keras dtype policy
  (`set_precision`, `resolve_precision`, `with_precision`) and XLA
  (`resolve_jit_compile`), decided from the machine that
  `keras_unet_seg.performance.devices` describes.
- `keras_unet_seg.performance.distributed`: data-parallel training on every
  local GPU (`tf.distribute.MirroredStrategy`) or on every JAX device, across
  hosts too (`keras.distribution.DataParallel`), through `distribution`.
- `keras_unet_seg.performance.flops`: `estimate_flops` counts a model's
  convolution FLOPs, for throughput figures.

Every name is importable from `keras_unet_seg.performance` itself. The
measurements behind the defaults are in `benchmarks/bench_train.py` and the
Performance page of the documentation.
"""

from keras_unet_seg.performance.devices import accelerator, cpu_flags, cpu_supports_bfloat16
from keras_unet_seg.performance.distributed import STRATEGIES as STRATEGIES
from keras_unet_seg.performance.distributed import Distribution, distribution
from keras_unet_seg.performance.flops import estimate_flops
from keras_unet_seg.performance.precision import (
    PRECISIONS as PRECISIONS,
)
from keras_unet_seg.performance.precision import (
    resolve_jit_compile,
    resolve_precision,
    set_precision,
    with_precision,
)

__all__ = [
    "Distribution",
    "accelerator",
    "cpu_flags",
    "cpu_supports_bfloat16",
    "distribution",
    "estimate_flops",
    "resolve_jit_compile",
    "resolve_precision",
    "set_precision",
    "with_precision",
]
