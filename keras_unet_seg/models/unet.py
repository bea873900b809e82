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
from keras_unet_seg.layers.unet_decoder import UNetDecoder, level_pool_size
from keras_unet_seg.models import _levels


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

    Volumes: the same model is 3D when its input has three spatial axes,
    `(batch, depth, height, width, channels)`, as with
    `UNet(...).build((None, None, None, None, channels))` or a call on a
    volume; every block reads its rank from its input (no argument says it),
    so a 2D config is unchanged. Each axis is padded to the product of its
    pool sizes and cropped back, so a 37x50x23 volume gives a 37x50x23 mask.
    A thick-slice volume (CT at 5 mm between slices and 0.8 mm in plane, say)
    should not be pooled along its depth at every level: `pool_sizes` gives
    one pool size a level, such as `[(1, 2, 2), (2, 2, 2), ...]`, and
    `keras_unet_seg.layers.plan_pool_sizes` derives them from the patch
    size and the voxel spacing as nnU-Net does.

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
        upsampling: `"transpose"`, `"bilinear"` or `"nearest"` (volumes:
            `"transpose"` or `"nearest"`). Defaults to `"transpose"`.
        output_activation: `"auto"` (sigmoid for one class, softmax
            otherwise), `None` (logits; use `from_logits=True` in the loss),
            or the name of a Keras activation. Defaults to `"auto"`.
        conv_block: class or registered callable building the blocks,
            called as `conv_block(filters=..., **block_arguments)`. Defaults
            to `ConvBlock`.
        encoder_stage: class or registered callable building the encoder
            stages, called as `encoder_stage(filters=..., pooling=...,
            conv_block=..., block_kwargs=...)`, and `pool_size=...` when
            `pool_sizes` is given. Defaults to `EncoderStage`.
        decoder_stage: class or registered callable building the decoder
            stages, called as `decoder_stage(filters=..., upsampling=...,
            conv_block=..., block_kwargs=...)`, and `pool_size=...` when
            `pool_sizes` is given. Defaults to `DecoderStage`.
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
        pool_sizes: `None` (2 along every axis at every level) or a list of
            `depth` pool sizes, one an encoder stage (the decoder stage of the
            same level upsamples by it): an int, or one int a spatial axis
            such as `(1, 2, 2)` to pool a volume in plane only. Each axis is
            padded to the product of its pool sizes. Written in the config
            only when given, so a config without it is that of any earlier
            version. Not with an `encoder`. Defaults to `None`.
        **kwargs: base model arguments (`name`, `dtype`, ...).

    Injected classes must be registered with
    `keras.saving.register_keras_serializable` so that a saved model finds
    them again; the config stores their registered names. An encoder or
    decoder object is stored in the config as a nested Keras object.

    With an encoder, per-level `num_convs` and `dropout` lists have one value
    a decoder stage, finest first.

    Call arguments:
        inputs: tensor of shape `(batch, height, width, channels)`, or
            `(batch, depth, height, width, channels)` for volumes.
        training: bool, whether normalization and dropout run in training
            mode.

    Returns:
        A float32 tensor of the input's spatial shape and `num_classes`
        channels, of probabilities (or logits with `output_activation=None`).

    Example:

    >>> model = UNet(num_classes=1, base_filters=8, depth=3)
    >>> tuple(model(keras.ops.zeros((2, 100, 75, 3))).shape)
    (2, 100, 75, 1)
    >>> volumes = UNet(base_filters=4, depth=2, pool_sizes=[(1, 2, 2), 2])
    >>> tuple(volumes(keras.ops.zeros((1, 5, 30, 17, 1))).shape)
    (1, 5, 30, 17, 1)

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
        pool_sizes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _levels.check_options(
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
        strides = None if given_encoder is None else _feature_strides(given_encoder)
        filters, depth, decoder_filters, per_level = _levels.levels(
            strides, filters, depth, base_filters, num_convs, dropout, encoder_trainable,
            decoder_filters, pool_sizes,
        )  # fmt: skip

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
        self.pool_sizes = per_level["pool_sizes"]
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
            pool_sizes=self.pool_sizes,
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
            "pool_sizes": self.pool_sizes,
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

    def _size_multiples(self, rank):
        """The multiple each spatial axis is padded to: the product of its pool sizes."""
        multiples = [1] * rank
        for level in range(self.depth):
            pool = _options.pool_tuple("pool_sizes", level_pool_size(self.pool_sizes, level), rank)
            multiples = [m * p for m, p in zip(multiples, pool, strict=True)]
        return multiples

    def _padded_shape(self, input_shape):
        """`input_shape` with each known spatial size padded up to its multiple."""
        rank = _options.spatial_rank(self, input_shape)
        spatial = [
            None if size is None else -(-size // m) * m
            for size, m in zip(input_shape[1:-1], self._size_multiples(rank), strict=True)
        ]
        return (input_shape[0], *spatial, input_shape[-1])

    def build(self, input_shape):
        shape = self._padded_shape(tuple(input_shape))
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
        rank = _options.spatial_rank(self, shape[0] if isinstance(shape, list) else shape)
        if isinstance(shape, list):
            # One head a nested depth, named by its column; the deepest last.
            first = self.depth - len(shape) + 1
            self.heads = [
                _options.make_conv(rank, self.num_classes, 1, name=f"head_{c}", dtype=policy)
                for c in range(first, self.depth + 1)
            ]
            heads, shapes = self.heads, shape
        else:
            self.head = _options.make_conv(rank, self.num_classes, 1, name="head", dtype=policy)
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
        sizes = [shape[axis] for axis in range(1, len(inputs.shape) - 1)]
        multiples = self._size_multiples(len(sizes))
        # Not `(-size) % multiple`: tf2onnx lowers a floor modulo of int32 tensors to
        # `x - (x / y) * y` with ONNX's truncating division, which is negative for a
        # negative `x`, so an exported model cropped 100x75 to 96x72. Every operand
        # here is non-negative, where truncating and floor modulo agree.
        pads = [(m - n % m) % m for n, m in zip(sizes, multiples, strict=True)]
        x = inputs
        needs_padding = not all(isinstance(p, int) for p in pads) or any(pads)
        if needs_padding:
            x = ops.pad(x, [[0, 0], *[[0, p] for p in pads], [0, 0]])
            if inputs.shape[-1] is not None:
                # A pad by traced amounts loses the static channel count in a TensorFlow
                # graph, and LiteRT then runs the first convolution as a TensorFlow op
                # its interpreter lacks; the reshape restores it.
                padded = [n + p for n, p in zip(sizes, pads, strict=True)]
                x = ops.reshape(x, (-1, *padded, inputs.shape[-1]))

        features = list(self.encoder(x, training=training))
        decoded = self.decoder(features, training=training)
        outputs = self._heads(self._head_inputs(decoded))

        if needs_padding:
            crop = (slice(None), *[slice(None, n) for n in sizes], slice(None))
            outputs = keras.tree.map_structure(lambda y: y[crop], outputs)
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
            # Only when given: a config without it is one of any earlier version.
            **({"pool_sizes": self.pool_sizes} if self.pool_sizes is not None else {}),
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
