"""The loss and metrics of a `TrainingConfig`: names, or dicts with arguments."""

import keras

from keras_unet_seg._errors import InvalidArgumentError

# The library's short names, shown in the help and in the errors.
LOSS_NAMES = ("dice", "jaccard", "tversky", "focal_tversky", "bce_dice")
METRIC_NAMES = ("dice", "iou", "precision", "recall")
# The library's metrics whose short name is Keras' in `keras_unet_seg.metrics.get`.
_LIBRARY_METRICS = {"precision": "keras_unet_seg>Precision", "recall": "keras_unet_seg>Recall"}
_EXAMPLES = {"loss": "binary_crossentropy", "metric": "binary_accuracy"}


def _build_named(module, spec, where, kind, names):
    """An instance of `spec`: a name for `module.get`, or `{"name": ..., <arguments>}`.

    Arguments go to the class `module.get` finds by that name: the library's (`dice`,
    `TverskyLoss`), or a Keras class given by its class name
    (`BinaryFocalCrossentropy`); the class itself checks them. `where` names the
    argument in the errors.
    """
    name = spec if isinstance(spec, str) else spec["name"]
    try:
        instance = module.get(name)
    except ValueError as error:
        raise InvalidArgumentError(
            f"{where}: {_refusal(name, error, kind)} Use one of {', '.join(sorted(names))}, "
            f"or the name of a Keras {kind} such as {_EXAMPLES[kind]}."
        ) from None
    if isinstance(spec, str):
        return instance
    arguments = {k: v for k, v in spec.items() if k != "name"}
    if not isinstance(instance, (keras.losses.Loss, keras.metrics.Metric)):
        raise InvalidArgumentError(
            f"{where}: {kind} {name!r} with arguments: give a {kind} of this library "
            f"({', '.join(sorted(names))}) or a Keras class name such as "
            "BinaryFocalCrossentropy."
        )
    try:
        return type(instance)(**arguments)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"{where}: {kind} {spec}: {_one_line(error)}") from None


def _refusal(name, error, kind):
    """Why `name` is refused: unknown, or a Keras class that is not a usable `kind`."""
    message = _one_line(error)
    if message.startswith("Could not interpret"):
        return f"unknown {kind} {name!r}."
    # An abstract base class, or a class with required arguments: the lookup's reason.
    return message.split(". Expected")[0] + "."


def get_loss(spec, where="loss"):
    """The loss of `spec` (a name or a dict with arguments); `ValueError` if none."""
    from keras_unet_seg import losses

    return _build_named(losses, spec, where, "loss", LOSS_NAMES)


def get_metric(spec, where="metrics", num_classes=1):
    """The metric of `spec` (as `get_loss`), for `num_classes` classes."""
    from keras_unet_seg import metrics

    if isinstance(spec, str):
        spec = _LIBRARY_METRICS.get(spec, spec)
    else:
        spec = {**spec, "name": _LIBRARY_METRICS.get(spec["name"], spec["name"])}
    metric = _build_named(metrics, spec, where, "metric", METRIC_NAMES)
    if not isinstance(metric, keras.metrics.Metric):
        return metric
    config = metric.get_config()
    if config.get("num_classes", num_classes) == num_classes:
        return metric
    return type(metric).from_config({**config, "num_classes": num_classes})


def metric_name(metric):
    return getattr(metric, "name", None) or getattr(metric, "__name__", str(metric))


def _one_line(error):
    return " ".join(str(error).split())
