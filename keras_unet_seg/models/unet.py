"""`UNet`: encoder -> decoder -> head, each a swappable Keras layer of injected stages."""

import itertools

import keras
from keras import ops

from keras_unet_seg import _validation
from keras_unet_seg.encoders import ApplicationEncoder, PyramidEncoder
from keras_unet_seg.encoders.application_encoder import check_weights
from keras_unet_seg.encoders.unet_encoder import UNetEncoder
from keras_unet_seg.layers import _options
from keras_unet_seg.layers.conv_block import ConvBlock
from keras_unet_seg.layers.stages import DecoderStage, EncoderStage
from keras_unet_seg.layers.unet_decoder import UNetDecoder, check_filters


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class UNet(keras.Model):
    """U-Net for semantic segmentation, assembled from injectable stages.

    `depth` encoder stages (a block, then 2x downsampling) lead to a
    bottleneck block; `depth` decoder stages (2x upsampling, concatenation
    with the encoder's skip, a block) lead back to full resolution, and a 1x1
    convolution gives `num_classes` channels. The filters double at each
    level: `base_filters * 2**level`.

    The model is three parts, run in this order: `encoder` (a `UNetEncoder`
    of the stages and the bottleneck, or the given `encoder`), `decoder` (a
    `UNetDecoder`, or the given `decoder`) and `head` (or one head a map,
    `heads`, for a decoder that returns several). `encoders`, `bottleneck`
    and `decoders` (deepest first) are the stages inside the parts, under
    the names that files saved before the parts existed hold them by.

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
        encoder: `None` (the encoder stages above), the name of a
            `keras.applications` network such as `"resnet50"` (see
            `keras_unet_seg.encoders.available()`), a keras-hub
            `FeaturePyramidBackbone`, or any Keras layer or functional model
            mapping images to a list of feature maps, finest first, each 2x
            coarser than the last (stride 1 optional). A layer that is not a
            functional model must have a `feature_strides` attribute. With an
            encoder, `base_filters`, `filters`, `depth`, `pooling` and
            `encoder_stage` are unused, and the model pads to the encoder's
            deepest stride. Defaults to `None`.
        encoder_weights: weights of a named encoder: `None` (random),
            `"imagenet"` (downloaded by `keras.applications` on first use) or
            the path of a weights file. Never part of a config: a saved model
            holds its weights, and loading it downloads or reads nothing else
            (`from_config` ignores `encoder_weights`). Defaults to `None`.
        encoder_trainable: bool, `False` freezes the encoder (its batch
            normalization then runs in inference mode); see
            `unfreeze_encoder`. Defaults to `True`.
        decoder: `None` (a `UNetDecoder` of `decoder_stage` stages) or a
            decoder layer taking the list of feature maps and returning the
            stride-1 features, such as a `NestedDecoder`. Defaults to `None`.
        decoder_filters: list of ints, filters of the decoder stages when an
            encoder is given, finest first, one a stride from 1 to half the
            deepest. Defaults to `None`: `16, 32, 64, ...`, segmentation_models'
            choice.
        **kwargs: base model arguments (`name`, `dtype`, ...).

    Injected classes must be registered with
    `keras.saving.register_keras_serializable` so that a saved model finds
    them again; the config stores their registered names. An encoder or
    decoder object is stored in the config as a nested Keras object.

    With an encoder, per-level `num_convs` and `dropout` lists have one value
    a decoder stage, finest first.

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
        encoder=None,
        encoder_weights=None,
        encoder_trainable=True,
        decoder=None,
        decoder_filters=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_options(
            num_classes=num_classes,
            base_filters=base_filters,
            depth=depth,
            kernel_size=kernel_size,
            pooling=pooling,
            upsampling=upsampling,
            normalization=normalization,
            activation=activation,
            output_activation=output_activation,
            encoder_trainable=encoder_trainable,
        )
        _check_decoder(decoder)
        given_encoder = _resolve_encoder(encoder, encoder_weights, self.dtype_policy)
        if given_encoder is None:
            filters, depth, per_level = _plain_levels(
                filters, depth, base_filters, num_convs, dropout, encoder_trainable, decoder_filters
            )
        else:
            depth, decoder_filters, per_level = _decoder_levels(
                _feature_strides(given_encoder), depth, decoder_filters, num_convs, dropout
            )

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
        self.encoder_trainable = encoder_trainable
        self.decoder_filters = decoder_filters
        self._encoder_given = given_encoder is not None
        self._decoder_given = decoder is not None
        # One dict a level: the decoder's levels, then (without an encoder) the bottleneck.
        levels = range(len(per_level["num_convs"]))
        block_kwargs = [self._level_block_kwargs(per_level, level) for level in levels]

        # === Layers ===
        self.encoder = self._make_encoder(given_encoder, block_kwargs)
        self.feature_strides = _feature_strides(self.encoder)
        self.decoder = decoder if decoder is not None else self._make_decoder(block_kwargs)

    def _make_encoder(self, given_encoder, block_kwargs):
        """The given encoder (trainable as asked), else the U-Net's own stages."""
        if given_encoder is not None:
            given_encoder.trainable = self.encoder_trainable
            return given_encoder
        return UNetEncoder(
            filters=self.level_filters,
            encoder_stage=self.encoder_stage,
            pooling=self.pooling,
            conv_block=self.conv_block,
            block_kwargs=block_kwargs,
            name="encoder",
            dtype=self.dtype_policy,
        )

    def _level_block_kwargs(self, per_level, level):
        return {
            "num_convs": per_level["num_convs"][level],
            "kernel_size": self.kernel_size,
            "normalization": self.normalization,
            "activation": self.activation,
            "dropout": per_level["dropout"][level],
            "residual": self.residual,
            **self.block_kwargs,
        }

    def _make_decoder(self, block_kwargs):
        """The default decoder; `block_kwargs` has one dict a level, finest first."""
        return UNetDecoder(**self._decoder_options(block_kwargs))

    def _decoder_options(self, block_kwargs):
        """The arguments of a `UNetDecoder` (or subclass) of this model's levels."""
        return {
            "filters": self.level_filters[: self.depth],
            "decoder_stage": self.decoder_stage,
            "upsampling": self.upsampling,
            "conv_block": self.conv_block,
            "block_kwargs": block_kwargs[: self.depth],
            "name": "decoder",
            "dtype": self.dtype_policy,
        }

    # The stages under the names of earlier versions. A `.keras` file holds each layer
    # under the attribute path it was saved from, and Keras loads a layer from the
    # first of its paths that the file has: these views are how the files saved before
    # the encoder -> decoder -> head composition (`encoders/...`, `bottleneck/...`,
    # `decoders/...`) find their weights.

    @property
    def encoders(self):
        """The encoder stages of a U-Net without an `encoder` (`encoder.stages`)."""
        return self._own_encoder().stages

    @property
    def bottleneck(self):
        """The bottleneck block of a U-Net without an `encoder` (`encoder.bottleneck`)."""
        return self._own_encoder().bottleneck

    @property
    def decoders(self):
        """The default decoder's stages, deepest first (`decoder.stages` reversed)."""
        if type(self.decoder) is not UNetDecoder or self._decoder_given:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute 'decoders'")
        return self.decoder.stages[::-1]

    def _own_encoder(self):
        if self._encoder_given:
            raise AttributeError(
                f"A {type(self).__name__} with an `encoder` has no encoder stages of its own."
            )
        return self.encoder

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
        if not self.encoder.built:  # a given model may come built
            self.encoder.build(shape)
        features = [tuple(f) for f in self.encoder.compute_output_shape(shape)]
        self.decoder.build(features)
        self._make_heads(self._head_inputs(self.decoder.compute_output_shape(features)))

    def _head_inputs(self, decoded):
        """The decoder's maps that get a head: one (or a list, for one head each)."""
        return decoded

    def _make_heads(self, shape):
        """Creates and builds the 1x1 convolutions of the maps of `shape` (one or a list)."""
        policy = self.dtype_policy
        if isinstance(shape, list):
            # One head a nested depth, named by its column; the deepest last.
            first = self.depth - len(shape) + 1
            self.heads = [
                keras.layers.Conv2D(self.num_classes, 1, name=f"head_{column}", dtype=policy)
                for column in range(first, self.depth + 1)
            ]
            heads, shapes = self.heads, shape
        else:
            self.head = keras.layers.Conv2D(self.num_classes, 1, name="head", dtype=policy)
            heads, shapes = [self.head], [shape]
        # Float32 whatever the policy, so losses and metrics never see float16.
        self.output_layer = keras.layers.Activation(
            self._resolved_output_activation(), name="output_activation", dtype="float32"
        )
        for head, head_shape in zip(heads, shapes, strict=True):
            head.build(head_shape)
        self.output_layer.build(heads[0].compute_output_shape(shapes[0]))

    def _heads(self, x):
        if isinstance(x, (list, tuple)):
            return [self.output_layer(head(y)) for head, y in zip(self.heads, x, strict=True)]
        return self.output_layer(self.head(x))

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

        features = list(self.encoder(x, training=training))
        decoded = self.decoder(features, training=training)
        outputs = self._heads(self._head_inputs(decoded))

        if needs_padding:
            outputs = keras.tree.map_structure(lambda y: y[:, :height, :width, :], outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        shape = (*tuple(input_shape)[:-1], self.num_classes)
        return [shape] * len(self.heads) if hasattr(self, "heads") else shape

    def freeze_encoder(self):
        """Freezes the encoder: no trainable weights, batch normalization in inference mode.

        The same as `encoder_trainable=False` at construction. Compile the
        model again afterwards.

        Raises:
            ValueError: if the model has no `encoder`.
        """
        self._set_encoder_trainable(False)

    def unfreeze_encoder(self):
        """Makes the encoder trainable again, for the second phase of fine-tuning.

        Compile the model again afterwards (with a smaller learning rate, as
        a rule) so that training updates the encoder's weights.

        Raises:
            ValueError: if the model has no `encoder` (its stages always train).
        """
        self._set_encoder_trainable(True)

    def _set_encoder_trainable(self, trainable):
        if not self._encoder_given:
            raise ValueError(
                "Freezing and unfreezing need a model built with `encoder=...`; this "
                "model's encoder stages always train."
            )
        self.encoder.trainable = trainable
        self.encoder_trainable = trainable

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
            "encoder": _serialize(self.encoder) if self._encoder_given else None,
            # A saved model holds the encoder's weights: a config never downloads them.
            "encoder_weights": None,
            "encoder_trainable": self.encoder_trainable,
            "decoder": _serialize(self.decoder) if self._decoder_given else None,
            "decoder_filters": self.decoder_filters,
        }

    @classmethod
    def from_config(cls, config):
        # A saved model's weights replace the encoder's: whatever `encoder_weights` an
        # (edited) config names, loading neither downloads nor reads them.
        config = {**config, "encoder_weights": None}
        for key in ("dtype", "encoder", "decoder"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _check_options(**options):
    """Checks the options that do not depend on the encoder."""
    for name in ("num_classes", "base_filters", "kernel_size"):
        _validation.check_positive_int(name, options[name])
    if options["depth"] is not None:
        _validation.check_positive_int("depth", options["depth"])
    _validation.check_bool("encoder_trainable", options["encoder_trainable"])
    _validation.check_choice("pooling", options["pooling"], _options.POOLINGS)
    _validation.check_choice("upsampling", options["upsampling"], _options.UPSAMPLINGS)
    _options.standardize_normalization(options["normalization"])
    _options.check_activation("activation", options["activation"])
    if options["output_activation"] not in (None, "auto"):
        _options.check_activation("output_activation", options["output_activation"])


def _plain_levels(filters, depth, base_filters, num_convs, dropout, trainable, decoder_filters):
    """Returns `(filters, depth, per_level)` of a U-Net without an encoder."""
    if not trainable:
        raise _validation.invalid_value("encoder_trainable", "True without an `encoder`", trainable)
    if decoder_filters is not None:
        raise _validation.invalid_value(
            "decoder_filters", "None without an `encoder` (use `filters`)", decoder_filters
        )
    if filters is not None:
        filters = list(filters)
        if depth is None:
            depth = len(filters) - 1
    depth = 4 if depth is None else depth
    per_level = _per_level_values(depth, filters=filters, num_convs=num_convs, dropout=dropout)
    if filters is None:
        per_level["filters"] = [base_filters * 2**level for level in range(depth + 1)]
    _check_levels(per_level)
    return filters, depth, per_level


def _decoder_levels(feature_strides, depth, decoder_filters, num_convs, dropout):
    """Returns `(depth, decoder_filters, per_level)` of a U-Net on an encoder."""
    encoder_depth = feature_strides[-1].bit_length() - 1
    if depth is not None and depth != encoder_depth:
        raise _validation.invalid_value(
            "depth",
            f"None or the encoder's depth, {encoder_depth} (deepest stride {feature_strides[-1]})",
            depth,
        )
    if decoder_filters is not None:
        decoder_filters = check_filters("decoder_filters", decoder_filters)
    per_level = _per_level_values(
        encoder_depth - 1, filters=decoder_filters, num_convs=num_convs, dropout=dropout
    )
    per_level.setdefault("filters", [16 * 2**level for level in range(encoder_depth)])
    _check_levels(per_level)
    return encoder_depth, decoder_filters, per_level


def _check_levels(per_level):
    for value in per_level["filters"]:
        _validation.check_positive_int("filters", value)
    for value in per_level["num_convs"]:
        _validation.check_positive_int("num_convs", value)
    for value in per_level["dropout"]:
        _validation.check_rate("dropout", value)


def _serialize(layer):
    return None if layer is None else keras.saving.serialize_keras_object(layer)


def _check_decoder(decoder):
    if decoder is not None and not isinstance(decoder, keras.layers.Layer):
        raise _validation.invalid_value(
            "decoder", "None or a Keras layer taking the list of feature maps", decoder
        )


def _resolve_encoder(encoder, weights, dtype):
    """The encoder layer of the `encoder` argument, or `None` for the stages."""
    check_weights("encoder_weights", weights)
    if isinstance(encoder, str):
        return ApplicationEncoder(encoder, weights=weights, name="encoder", dtype=dtype)
    if weights is not None:
        raise _validation.invalid_value(
            "encoder_weights", "None unless `encoder` names a keras.applications network", weights
        )
    if encoder is None or isinstance(encoder, (ApplicationEncoder, PyramidEncoder)):
        return encoder
    if hasattr(encoder, "pyramid_outputs"):  # a keras-hub FeaturePyramidBackbone
        return PyramidEncoder(encoder, name="encoder", dtype=dtype)
    if isinstance(encoder, keras.layers.Layer):
        return encoder
    raise _validation.invalid_value(
        "encoder",
        "None, the name of a keras.applications network (see encoders.available()), a "
        "keras-hub FeaturePyramidBackbone, or a Keras layer returning feature maps",
        encoder,
    )


def _feature_strides(encoder):
    """The strides of the encoder's feature maps, checked: each 2x the last."""
    strides = getattr(encoder, "feature_strides", None)
    if strides is None:
        inputs = getattr(encoder, "inputs", None)
        if not inputs:
            expected = "a functional model or a layer with a `feature_strides` attribute"
            raise _validation.invalid_value("encoder", expected, encoder)
        _, height, width, channels = inputs[0].shape
        probe = (1, height or 1024, width or 1024, channels)
        outputs = keras.tree.flatten(encoder.compute_output_spec(keras.KerasTensor(probe)))
        strides = [probe[1] // output.shape[1] for output in outputs]
    strides = list(strides)
    first = strides[0] if strides else 0
    valid = first >= 1 and first & (first - 1) == 0
    valid = valid and all(b == 2 * a for a, b in itertools.pairwise(strides))
    if not valid or len(strides) < 2:
        raise _validation.invalid_value(
            "encoder",
            "feature maps finest first, each 2x coarser than the last, at least two, the "
            f"first at stride 1, 2, 4, ... (its feature strides are {strides})",
            encoder,
        )
    return strides


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
