"""The one place the data subpackage imports TensorFlow, lazily, with an install hint."""


def import_tf():
    """Imports TensorFlow, which the `tf.data` pipeline needs, with an install hint."""
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - tensorflow is a dependency
        raise ImportError(
            "keras_unet_seg.data needs TensorFlow for its tf.data pipeline: "
            "`pip install tensorflow`."
        ) from None
    return tf
