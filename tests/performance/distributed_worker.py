"""Runs one short training on one device and on two, for tests/performance/test_distributed.py.

Run in a fresh process, because the devices must be set up before the
backend starts: two logical CPU devices for TensorFlow's MirroredStrategy,
two XLA host devices (`XLA_FLAGS=--xla_force_host_platform_device_count=2`,
set by the caller) for JAX's DataParallel.

    KERAS_BACKEND=tensorflow python tests/performance/distributed_worker.py \
        '{"strategy": "mirrored"}'

Prints one line `RESULT {json}` with both runs' losses, metrics, sample
counts and final weights.
"""

import json
import sys


def _set_up_devices(spec):
    if spec["strategy"] == "mirrored":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * spec.get("devices", 2)
        )


def _data(spec):
    import numpy as np

    rng = np.random.default_rng(0)
    n, size = spec.get("samples", 16), spec.get("size", 32)
    images = rng.random((n, size, size, 3), dtype="float32")
    # A mask that the image predicts, so that the metrics move.
    masks = (images[..., :1] + 0.3 * images[..., 1:2] > 0.7).astype("float32")
    return images, masks


def _dataset(images, masks, batch_size, drop_remainder=False):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, masks)).batch(
        batch_size, drop_remainder=drop_remainder
    )


def _he_normal_kernels(weights):
    """The weights with every convolution kernel drawn from He's normal, with NumPy."""
    import numpy as np

    rng = np.random.default_rng(0)
    return [
        rng.normal(0.0, np.sqrt(2.0 / np.prod(w.shape[:-1])), w.shape).astype(w.dtype)
        if w.ndim == 4
        else w
        for w in weights
    ]


def _run(spec, dist, data_dist, initial_weights=None):
    import keras
    import numpy as np

    from keras_unet_seg import UNet
    from keras_unet_seg.losses import BCEDiceLoss
    from keras_unet_seg.metrics import DiceCoefficient, IoUScore

    images, masks = _data(spec)
    per_replica = spec.get("per_replica_batch", 4)
    batch = dist.global_batch_size(per_replica) if spec.get("scale_batch", True) else per_replica
    with dist.scope():
        keras.config.set_dtype_policy(spec.get("precision", "float32"))
        model = UNet(
            base_filters=4,
            depth=2,
            normalization=spec.get("normalization", "batch"),
            dropout=0.0,
            # No random initializer: JAX compiles one program per weight shape for
            # each (about 2 s apiece, most of the run); the kernels are drawn below.
            upsampling="bilinear",
            block_kwargs={"kernel_initializer": "zeros"},
        )
        model.build((None, images.shape[1], images.shape[2], 3))
        keras.config.set_dtype_policy("float32")
        model.set_weights(initial_weights or _he_normal_kernels(model.get_weights()))
        start = [w.copy() for w in model.get_weights()]
        count = DiceCoefficient(per_image=True, name="dice_per_image")
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
            loss=BCEDiceLoss(),
            metrics=[
                DiceCoefficient(name="dice"),
                IoUScore(name="iou"),
                count,
                keras.metrics.BinaryAccuracy(name="accuracy"),
            ],
            jit_compile=spec.get("jit_compile", "auto"),
        )
        data = _dataset(images, masks, batch)
        if spec.get("even_batches", False):
            data = data_dist.even_batches(data)
        history = model.fit(data, epochs=spec.get("epochs", 2), verbose=0).history
        fit_count = float(keras.ops.convert_to_numpy(count.image_count))
        evaluation = model.evaluate(data, verbose=0, return_dict=True)
        eval_count = float(keras.ops.convert_to_numpy(count.image_count))
        predict_batch = dist.global_batch_size(2)
        predictions = model.predict(images[:predict_batch], batch_size=predict_batch, verbose=0)
    return start, {
        "replicas": dist.num_replicas,
        "batch_size": batch,
        "history": {k: [float(v) for v in vs] for k, vs in history.items()},
        "evaluate": {k: float(v) for k, v in evaluation.items()},
        "fit_count": fit_count,
        "eval_count": eval_count,
        "predict_shape": list(predictions.shape),
        "predict_dtype": str(predictions.dtype),
        "weights": [np.asarray(w, "float64").ravel().tolist() for w in model.get_weights()],
    }


def main(argv):
    spec = json.loads(argv[1])
    _set_up_devices(spec)
    import keras

    from keras_unet_seg.performance import distribution

    keras.utils.set_random_seed(0)
    single_dist = distribution(None)
    multi_dist = distribution(spec["strategy"])
    # The one-device run uses the per-replica batch times the replicas, and the
    # same `even_batches` filter, so both runs see the same global batches.
    spec_single = dict(spec, scale_batch=False, per_replica_batch=spec.get("per_replica_batch", 4))
    spec_single["per_replica_batch"] *= multi_dist.num_replicas
    start, single = _run(spec_single, single_dist, multi_dist)
    _, multi = _run(spec, multi_dist, multi_dist, initial_weights=start)
    result = {"single": single, "multi": multi, "backend": keras.backend.backend()}
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
