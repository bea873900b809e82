"""The loss and metrics of `--loss` and `--metrics`: names, or dicts with arguments."""

from keras_unet_seg.commands._errors import UsageError, one_line

# The library's short names, shown in the help and in the errors.
LOSS_NAMES = ("dice", "jaccard", "tversky", "focal_tversky", "bce_dice")
METRIC_NAMES = ("dice", "iou", "precision", "recall")


def _build_named(module, spec, where, kind, names):
    """An instance of `spec`: a name for `module.get`, or `{"name": ..., <arguments>}`.

    Arguments go to the class `module.get` finds by that name: the library's (`dice`,
    `TverskyLoss`), or a Keras class given by its class name
    (`BinaryFocalCrossentropy`); the class itself checks them.
    """
    import keras

    if isinstance(spec, str):
        return module.get(spec)
    name, arguments = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    instance = module.get(name)
    if not isinstance(instance, (keras.losses.Loss, keras.metrics.Metric)):
        raise UsageError(
            f"{where}: {kind} {name!r} with arguments: give a {kind} of this library "
            f"({', '.join(sorted(names))}) or a Keras class name such as "
            "BinaryFocalCrossentropy."
        )
    try:
        return type(instance)(**arguments)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{where}: {kind} {spec}: {one_line(error)}") from None


def _refusal(spec, error, kind):
    """Why `spec` is refused: unknown, or a Keras class that is not a usable `kind`."""
    message = one_line(error)
    if message.startswith("Could not interpret"):
        return f"unknown {kind} {_name(spec)!r}."
    # An abstract base class, or a class with required arguments: the lookup's reason.
    return message.split(". Expected")[0] + "."


def get_loss(spec, where):
    """The loss of `--loss` (a name or a dict with arguments), or a `UsageError`."""
    from keras_unet_seg import losses

    try:
        return _build_named(losses, spec, where, "loss", LOSS_NAMES)
    except ValueError as error:
        raise UsageError(
            f"{where}: {_refusal(spec, error, 'loss')} Use one of "
            f"{', '.join(sorted(LOSS_NAMES))}, or the name of a Keras loss such as "
            "binary_crossentropy."
        ) from None


def get_metric(spec, where, num_classes=1):
    """The metric of `spec` (as `get_loss`), for `num_classes` classes."""
    import keras

    from keras_unet_seg import metrics

    try:
        metric = _build_named(metrics, spec, where, "metric", METRIC_NAMES)
    except ValueError as error:
        raise UsageError(
            f"{where}: {_refusal(spec, error, 'metric')} Use one of "
            f"{', '.join(sorted(METRIC_NAMES))}, or the name of a Keras metric such as "
            "binary_accuracy."
        ) from None
    if not isinstance(metric, keras.metrics.Metric):
        return metric
    config = metric.get_config()
    if config.get("num_classes", num_classes) == num_classes:
        return metric
    return type(metric).from_config({**config, "num_classes": num_classes})


def _name(spec):
    return spec["name"] if isinstance(spec, dict) else spec


def metric_name(metric):
    return getattr(metric, "name", None) or getattr(metric, "__name__", str(metric))
