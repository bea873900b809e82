"""Trains a tiny UNet data-parallel for 3 steps, for tests/performance/test_hosts.py.

One of the processes that join through JAX's distributed runtime (one CPU
device each), or the single process with two local CPU devices that they
must match (`XLA_FLAGS=--xla_force_host_platform_device_count=2`, set by
the caller). The JSON argument holds `distribution`'s host values; `{}`
for the single process, or for a process that finds them in the
environment:

    KERAS_BACKEND=jax python tests/performance/hosts_worker.py \
        '{"coordinator_address": "localhost:PORT", "num_processes": 2, "process_id": 0}'
    KERAS_BACKEND=jax python tests/performance/hosts_worker.py '{}'

Every process reads the same 12 images in global batches of 4 (2 a device),
unshuffled; `fit` gives each its part. Prints one line `RESULT {json}` with
the process's view of the distribution, the losses and the final weights.
"""

import json
import sys

from distributed_worker import _data, _he_normal_kernels


def main(argv):
    spec = json.loads(argv[1])
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_unet_seg import UNet
    from keras_unet_seg.losses import BCEDiceLoss
    from keras_unet_seg.performance import distribution

    keras.utils.set_random_seed(0)
    dist = distribution("data_parallel", **spec)
    # Joining again with the same values does nothing; with others, it is refused.
    again = distribution("data_parallel", **spec)
    assert (again.num_processes, again.process_id) == (dist.num_processes, dist.process_id)
    refused = None
    if dist.num_processes > 1:
        try:
            distribution("data_parallel", **{**spec, "process_id": 1 - dist.process_id})
        except ValueError as error:
            refused = str(error)
    images, masks = _data({"samples": 12})
    batch_size = dist.global_batch_size(2)
    data = tf.data.Dataset.from_tensor_slices((images, masks)).batch(batch_size)
    data = dist.even_batches(data, len(images), batch_size)
    with dist.scope():
        model = UNet(
            base_filters=4,
            depth=2,
            normalization=None,  # batch normalization doubles the compile time
            dropout=0.0,
            upsampling="bilinear",
            block_kwargs={"kernel_initializer": "zeros"},  # set below, the same everywhere
        )
        model.build((None, 32, 32, 3))
        model.set_weights(_he_normal_kernels(model.get_weights()))
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9), loss=BCEDiceLoss()
        )
        history = model.fit(data, epochs=1, shuffle=False, verbose=0).history
    result = {
        "num_processes": dist.num_processes,
        "process_id": dist.process_id,
        "is_chief": dist.is_chief,
        "refused": refused,
        "num_replicas": dist.num_replicas,
        "batch_size": batch_size,
        "loss": history["loss"],
        "weights": [np.asarray(w, "float64").ravel().tolist() for w in model.get_weights()],
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
