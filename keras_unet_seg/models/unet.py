"""`UNet`: the subclassed Keras model that stacks injected stages."""

import keras
from keras import ops

from keras_unet_seg.layers import _options
from keras_unet_seg.layers.conv_block import ConvBlock
from keras_unet_seg.layers.stages import DecoderStage, EncoderStage

_PER_LEVEL = ("filters", "num_convs", "dropout")


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class UNet(keras.Model):
    """U-Net for semantic segmentation, assembled from injectable stages.

    `depth` encoder stages (a block, then 2x downsampling) lead to a
    bottleneck block; `depth` decoder stages (2x upsampling, concatenation
    with the encoder's skip, a block) lead back to full resolution, and a 1x1
    convolution gives `num_classes` channels. The filters double at each
    level: `base_filters * 2**level`.

    Inputs of any height and width work: they are zero-padded (bottom and
    right) to a multiple of `2**depth` inside the model and the output is
    cropped back, so a `(100, 75)` image gives a `(100, 75)` mask. Build with
    `(None, None, channels)` for an unknown size.

    Under a mixed precision policy the weights stay float32 and the output
    activation computes in float32, so losses and metrics see float32.

    Args:
        num_classes: int, output channels. `1` gives one sigmoid channel
            (binary segmentation); more gives a softmax over `num_classes`
            channels. Defaults to `1`.
        base_filters: int, filters of the first level. Defaults to `64`.
        depth: int, number of downsampling stages. Defaults to `4`, or
            `len(filters) - 1` when `filters` is given.
        filters: list of `depth + 1` ints, the filters of every level (the
            bottleneck is the last); overrides `base_filters`. Defaults to
            `None`.
        num_convs: int or list of `depth + 1` ints, convolutions per block.
            Defaults to `2`.
        kernel_size: int, kernel size of the block convolutions. Defaults to
            `3`.
        normalization: normalization of the blocks: `"batch"` (momentum 0.9,
            see `ConvBlock`), `"group"`, `"instance"`, `"layer"`, `None`, or a
            dict such as `{"type": "batch", "momentum": 0.99}`. Defaults to
            `"batch"`.
        activation: str, activation of the blocks. Defaults to `"relu"`.
        dropout: float or list of `depth + 1` floats, dropout rate at the end
            of each block. Defaults to `0.0`.
        residual: bool, residual blocks. Defaults to `False`.
        pooling: `"max"`, `"avg"` or `"conv"`. Defaults to `"max"`.
        upsampling: `"transpose"`, `"bilinear"` or `"nearest"`. Defaults to
            `"transpose"`.
        output_activation: `"auto"` (sigmoid for one class, softmax
            otherwise), `None` (logits; use `from_logits=True` in the loss),
            or the name of a Keras activation. Defaults to `"auto"`.
        conv_block: class or registered callable building the blocks,
            called as `conv_block(filters=..., **block_arguments)`. Defaults
            to `ConvBlock`.
        encoder_stage: class or registered callable building the encoder
            stages, called as `encoder_stage(filters=..., pooling=...,
            conv_block=..., block_kwargs=...)`. Defaults to `EncoderStage`.
        decoder_stage: class or registered callable building the decoder
            stages, called as `decoder_stage(filters=..., upsampling=...,
            conv_block=..., block_kwargs=...)`. Defaults to `DecoderStage`.
        block_kwargs: dict of extra constructor arguments for every block,
            for the options of a custom `conv_block`. Defaults to `None`.
        **kwargs: base model arguments (`name`, `dtype`, ...).

    Injected classes must be registered with
    `keras.saving.register_keras_serializable` so that a saved model finds
    them again; the config stores their registered names.

    Call arguments:
        inputs: tensor of shape `(batch, height, width, channels)`.
        training: bool, whether normalization and dropout run in training
            mode.

    Returns:
        A float32 tensor `(batch, height, width, num_classes)` of
        probabilities (or logits with `output_activation=None`).

    Example:

    >>> model = UNet(num_classes=1, base_filters=8, depth=3)
    >>> tuple(model(keras.ops.zeros((2, 100, 75, 3))).shape)
    (2, 100, 75, 1)

    Reference:
        - [Ronneberger et al., 2015](https://arxiv.org/abs/1505.04597)
    """

    def __init__(
        self,
        num_classes=1,
        base_filters=64,
        depth=None,
        filters=None,
        num_convs=2,
        kernel_size=3,
        normalization="batch",
        activation="relu",
        dropout=0.0,
        residual=False,
        pooling="max",
        upsampling="transpose",
        output_activation="auto",
        conv_block=ConvBlock,
        encoder_stage=EncoderStage,
        decoder_stage=DecoderStage,
        block_kwargs=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _options.check_positive_int("num_classes", num_classes)
        _options.check_positive_int("base_filters", base_filters)
        if depth is not None:
            _options.check_positive_int("depth", depth)
        _options.check_positive_int("kernel_size", kernel_size)
        _options.check_choice("pooling", pooling, _options.POOLINGS)
        _options.check_choice("upsampling", upsampling, _options.UPSAMPLINGS)
        _options.standardize_normalization(normalization)
        _options.check_activation("activation", activation)
        if output_activation not in (None, "auto"):
            _options.check_activation("output_activation", output_activation)

        if filters is not None:
            filters = list(filters)
            if depth is None:
                depth = len(filters) - 1
        depth = 4 if depth is None else depth
        per_level = _per_level_values(depth, filters=filters, num_convs=num_convs, dropout=dropout)
        if filters is None:
            per_level["filters"] = [base_filters * 2**level for level in range(depth + 1)]
        for value in per_level["filters"]:
            _options.check_positive_int("filters", value)
        for value in per_level["num_convs"]:
            _options.check_positive_int("num_convs", value)
        for value in per_level["dropout"]:
            _options.check_rate("dropout", value)

        self.num_classes = num_classes
        self.base_filters = base_filters
        self.depth = depth
        self.filters = filters
        self.num_convs = num_convs
        self.kernel_size = kernel_size
        self.normalization = normalization
        self.activation = activation
        self.dropout = dropout
        self.residual = residual
        self.pooling = pooling
        self.upsampling = upsampling
        self.output_activation = output_activation
        self.conv_block = _options.resolve_registered("conv_block", conv_block)
        self.encoder_stage = _options.resolve_registered("encoder_stage", encoder_stage)
        self.decoder_stage = _options.resolve_registered("decoder_stage", decoder_stage)
        self.block_kwargs = dict(block_kwargs or {})
        self.level_filters = per_level["filters"]

        def level_block_kwargs(level):
            return {
                "num_convs": per_level["num_convs"][level],
                "kernel_size": kernel_size,
                "normalization": normalization,
                "activation": activation,
                "dropout": per_level["dropout"][level],
                "residual": residual,
                **self.block_kwargs,
            }

        # === Layers ===
        policy = self.dtype_policy
        self.encoders = [
            self.encoder_stage(
                filters=self.level_filters[level],
                pooling=pooling,
                conv_block=self.conv_block,
                block_kwargs=level_block_kwargs(level),
                name=f"encoder_{level}",
                dtype=policy,
            )
            for level in range(depth)
        ]
        self.bottleneck = self.conv_block(
            filters=self.level_filters[depth],
            **level_block_kwargs(depth),
            name="bottleneck",
            dtype=policy,
        )
        self.decoders = [
            self.decoder_stage(
                filters=self.level_filters[level],
                upsampling=upsampling,
                conv_block=self.conv_block,
                block_kwargs=level_block_kwargs(level),
                name=f"decoder_{level}",
                dtype=policy,
            )
            for level in reversed(range(depth))
        ]
        self.head = keras.layers.Conv2D(num_classes, 1, name="head", dtype=policy)
        # Float32 whatever the policy, so losses and metrics never see float16.
        self.output_layer = keras.layers.Activation(
            self._resolved_output_activation(), name="output_activation", dtype="float32"
        )

    def _resolved_output_activation(self):
        if self.output_activation == "auto":
            return "sigmoid" if self.num_classes == 1 else "softmax"
        return self.output_activation or "linear"

    def _padded_size(self, size):
        if size is None:
            return None
        factor = 2**self.depth
        return -(-size // factor) * factor

    def build(self, input_shape):
        batch, height, width, channels = input_shape
        shape = (batch, self._padded_size(height), self._padded_size(width), channels)
        skip_shapes = []
        for encoder in self.encoders:
            encoder.build(shape)
            shape, skip_shape = encoder.compute_output_shape(shape)
            skip_shapes.append(skip_shape)
        self.bottleneck.build(shape)
        shape = self.bottleneck.compute_output_shape(shape)
        for decoder, skip_shape in zip(self.decoders, reversed(skip_shapes), strict=True):
            decoder.build([shape, skip_shape])
            shape = decoder.compute_output_shape([shape, skip_shape])
        self.head.build(shape)
        self.output_layer.build(self.head.compute_output_shape(shape))

    def call(self, inputs, training=None):
        shape = ops.shape(inputs)
        height, width = shape[1], shape[2]
        factor = 2**self.depth
        # Not `(-height) % factor`: tf2onnx lowers a floor modulo of int32 tensors to
        # `x - (x / y) * y` with ONNX's truncating division, which is negative for a
        # negative `x`, so an exported model cropped 100x75 to 96x72. Every operand
        # here is non-negative, where truncating and floor modulo agree.
        pad_h, pad_w = (factor - height % factor) % factor, (factor - width % factor) % factor
        x = inputs
        needs_padding = not (isinstance(pad_h, int) and isinstance(pad_w, int)) or pad_h or pad_w
        if needs_padding:
            x = ops.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])
            if inputs.shape[-1] is not None:
                # A pad by traced amounts loses the static channel count in a TensorFlow
                # graph, and LiteRT then runs the first convolution as a TensorFlow op
                # its interpreter lacks; the reshape restores it.
                x = ops.reshape(x, (-1, height + pad_h, width + pad_w, inputs.shape[-1]))

        skips = []
        for encoder in self.encoders:
            x, skip = encoder(x, training=training)
            skips.append(skip)
        x = self.bottleneck(x, training=training)
        for decoder, skip in zip(self.decoders, reversed(skips), strict=True):
            x = decoder([x, skip], training=training)
        x = self.output_layer(self.head(x))

        if needs_padding:
            x = x[:, :height, :width, :]
        return x

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.num_classes)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "num_classes": self.num_classes,
            "base_filters": self.base_filters,
            "depth": self.depth,
            "filters": self.filters,
            "num_convs": self.num_convs,
            "kernel_size": self.kernel_size,
            "normalization": self.normalization,
            "activation": self.activation,
            "dropout": self.dropout,
            "residual": self.residual,
            "pooling": self.pooling,
            "upsampling": self.upsampling,
            "output_activation": self.output_activation,
            "conv_block": _options.registered_name(self.conv_block),
            "encoder_stage": _options.registered_name(self.encoder_stage),
            "decoder_stage": _options.registered_name(self.decoder_stage),
            "block_kwargs": dict(self.block_kwargs),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return cls(**config)


def _per_level_values(depth, **values):
    """Expands scalars to one value per level and checks sequence lengths together."""
    levels = depth + 1
    expanded, wrong = {}, []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            if len(value) != levels:
                wrong.append(name)
            expanded[name] = list(value)
        else:
            expanded[name] = [value] * levels
    if wrong:
        received = ", ".join(f"{name}={values[name]!r}" for name in values)
        raise ValueError(
            "Invalid value for per-level arguments "
            + ", ".join(f"`{name}`" for name in wrong)
            + f". Expected a scalar or a sequence of length depth + 1 = {levels} "
            f"(one value per level, the bottleneck included). Received: depth={depth}, " + received
        )
    return expanded
