"""The model of a `TrainingConfig`: built, and compiled with its loss and metrics."""

import difflib

import keras

from keras_unet_seg._errors import InvalidArgumentError
from keras_unet_seg._naming import option
from keras_unet_seg.data._images import channels_for
from keras_unet_seg.training import _objectives


def build_model(config, dtype=None, channels=None):
    """The `UNet` of `config`, built for images (or volumes) of any size.

    Args:
        config: a `TrainingConfig`.
        dtype: the dtype policy name (`performance.resolve_precision`); `None` takes
            Keras' global one.
        channels: the input channels, by default those of `config.color_mode`; with
            `color_mode="native"`, or for volumes (`image_size` of three sides: their
            channels are the files'), the model is returned unbuilt when they are not given.
    """
    from keras_unet_seg.layers import AttentionDecoderStage, DecoderStage
    from keras_unet_seg.models import UNet

    model = UNet(
        num_classes=config.num_classes,
        base_filters=config.base_filters,
        **_encoder_kwargs(config),
        normalization=config.normalization,
        upsampling=config.upsampling,
        pooling=config.pooling,
        dropout=config.dropout,
        residual=config.residual,
        decoder_stage=AttentionDecoderStage if config.attention else DecoderStage,
        dtype=dtype,
    )
    rank = len(config.image_size)
    channels = channels or (channels_for(config.color_mode) if rank == 2 else None)
    if channels is not None:
        model.build((None,) * (rank + 1) + (channels,))
    return model


def _encoder_kwargs(config):
    """The `UNet` arguments of the encoder (`depth` stays out with a pretrained one)."""
    if config.encoder is None:
        return {"depth": config.depth}
    _check_encoder_name(config.encoder)
    return {"encoder": config.encoder, "encoder_weights": config.encoder_weights}


def _check_encoder_name(name):
    """Refuses an unknown encoder, suggesting the closest names."""
    from keras_unet_seg.encoders import available

    names = sorted(available())
    if name in names:
        return
    close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise InvalidArgumentError(
        f"{option('encoder', name)}: not a known encoder; {hint}"
        "keras_unet_seg.encoders.available() lists them all (such as resnet50, "
        "efficientnetb0, mobilenetv2)."
    )


def compile_model(model, config, jit_compile="auto"):
    """Compiles `model` with Adam and the loss and metrics of `config`.

    Returns the name of the logged quantity that selects the best checkpoint
    (`val_<first metric>`).
    """
    loss = _objectives.get_loss(config.loss, option("loss"))
    metrics = [
        _objectives.get_metric(name, option("metrics"), config.num_classes)
        for name in config.metrics
    ]
    if not metrics:
        raise InvalidArgumentError(
            f"{option('metrics')}: give at least one metric name, such as dice."
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=loss,
        metrics=metrics,
        jit_compile=jit_compile,
    )
    return f"val_{_objectives.metric_name(metrics[0])}"
