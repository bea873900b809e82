"""`EncoderStage` and `DecoderStage`: one level of the U-Net on each side."""

import keras

from keras_unet_seg import _validation
from keras_unet_seg.layers import _options
from keras_unet_seg.layers.conv_block import ConvBlock


def _make_block(conv_block, filters, block_kwargs, dtype):
    return conv_block(filters=filters, **block_kwargs, name="block", dtype=dtype)


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class EncoderStage(keras.layers.Layer):
    """One encoder level: a convolution block, then downsampling by `pool_size` (2x).

    Works on images and on volumes alike: the layers are 2D or 3D by the
    rank of the input at build.

    Args:
        filters: int, output channels of the block.
        pooling: `"max"`, `"avg"` or `"conv"` (a strided 3x3 convolution).
            Defaults to `"max"`.
        conv_block: the block class (or registered callable returning a
            layer), called as `conv_block(filters=..., **block_kwargs)`; a
            registered name such as `"keras_unet_seg>ConvBlock"` also works.
            Defaults to `ConvBlock`.
        block_kwargs: dict of further constructor arguments of the block,
            for example `{"normalization": "group", "dropout": 0.1}`.
            Defaults to `None` (the block's defaults).
        pool_size: int, or one int a spatial axis, the downsampling factor:
            `(1, 2, 2)` pools a volume in plane only, keeping its depth, as
            for thick-slice CT. Defaults to `2`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: tensor of shape `(batch, height, width, channels)`, or
            `(batch, depth, height, width, channels)`.
        training: bool, whether the block runs in training mode.

    Returns:
        A tuple `(downsampled, skip)`: the block's output downsampled by
        `pool_size`, and at full size (the skip connection).

    Example:

    >>> stage = EncoderStage(16)
    >>> down, skip = stage(keras.ops.zeros((1, 32, 32, 3)))
    >>> tuple(down.shape), tuple(skip.shape)
    ((1, 16, 16, 16), (1, 32, 32, 16))
    >>> down, skip = EncoderStage(4, pool_size=(1, 2, 2))(keras.ops.zeros((1, 5, 8, 8, 1)))
    >>> tuple(down.shape)
    (1, 5, 4, 4, 4)
    """

    def __init__(
        self,
        filters,
        pooling="max",
        conv_block=ConvBlock,
        block_kwargs=None,
        pool_size=2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _validation.check_positive_int("filters", filters)
        _validation.check_choice("pooling", pooling, _options.POOLINGS)
        self.filters = filters
        self.pooling = pooling
        self.pool_size = _options.standardize_pool_size("pool_size", pool_size)
        self.conv_block = _options.resolve_registered("conv_block", conv_block)
        self.block_kwargs = dict(block_kwargs or {})

        # === Layers === (the downsampling at build, 2D or 3D by the input)
        self.block = _make_block(self.conv_block, filters, self.block_kwargs, self.dtype_policy)
        self.downsample = None

    def build(self, input_shape):
        rank = _options.spatial_rank(self, input_shape)
        self.downsample = _options.make_downsampling(
            self.pooling,
            self.filters,
            "downsample",
            self.dtype_policy,
            rank=rank,
            pool_size=_options.pool_tuple("pool_size", self.pool_size, rank),
        )
        _options.track_first(self, [self.block, self.downsample])
        self.block.build(input_shape)
        self.downsample.build(self.block.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        skip = self.block(inputs, training=training)
        return self.downsample(skip), skip

    def compute_output_shape(self, input_shape):
        skip_shape = self.block.compute_output_shape(input_shape)
        rank = _options.spatial_rank(self, input_shape)
        pool = _options.pool_tuple("pool_size", self.pool_size, rank)
        # As the pooling layers count (`"valid"` pooling, a `"same"` strided convolution).
        ceil = self.pooling == "conv"
        spatial = [_pooled(n, p, ceil) for n, p in zip(skip_shape[1:-1], pool, strict=True)]
        return (skip_shape[0], *spatial, skip_shape[-1]), skip_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "pooling": self.pooling,
                "pool_size": self.pool_size,
                "conv_block": _options.registered_name(self.conv_block),
                "block_kwargs": dict(self.block_kwargs),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class DecoderStage(keras.layers.Layer):
    """One decoder level: upsampling by `pool_size` (2x), fusion with the skip, a block.

    Works on images and on volumes alike: the layers are 2D or 3D by the
    rank of the input at build.

    The skip is fused by concatenation in `fuse`; override `fuse` (and
    `build`, for new weights) to make a variant, as `AttentionDecoderStage`
    does. The skip may be missing (called on `[x]` or on `x`): the stage then
    upsamples and runs its block, as the last stages of a decoder on an
    encoder without stride-1 features do.

    Args:
        filters: int, output channels of the upsampling and of the block.
        upsampling: `"transpose"` (a learned transposed convolution to
            `filters` channels, of kernel and stride `pool_size`: 2x2, or
            2x2x2 on volumes, by default), `"bilinear"` or `"nearest"`
            (parameter-free, channels unchanged; volumes take `"transpose"`
            or `"nearest"`). Defaults to `"transpose"`.
        conv_block: the block class (or registered callable returning a
            layer), called as `conv_block(filters=..., **block_kwargs)`.
            Defaults to `ConvBlock`.
        block_kwargs: dict of further constructor arguments of the block.
            Defaults to `None`.
        pool_size: int, or one int a spatial axis, the upsampling factor: the
            `pool_size` of the encoder stage this stage mirrors. Defaults to
            `2`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: list `[x, skip]`: the deeper features
            `(batch, h, w, channels)` and the skip connection
            `(batch, 2 * h, 2 * w, skip_channels)` (volumes: one more spatial
            axis, each times its `pool_size`); or `[x]` (or `x`) alone,
            without a skip.
        training: bool, whether the block runs in training mode.

    Output shape:
        `(batch, 2 * h, 2 * w, filters)`: the spatial axes times `pool_size`.

    Example:

    >>> stage = DecoderStage(8)
    >>> x, skip = keras.ops.zeros((1, 8, 8, 16)), keras.ops.zeros((1, 16, 16, 8))
    >>> tuple(stage([x, skip]).shape)
    (1, 16, 16, 8)
    >>> tuple(DecoderStage(8)([x]).shape)
    (1, 16, 16, 8)
    """

    def __init__(
        self,
        filters,
        upsampling="transpose",
        conv_block=ConvBlock,
        block_kwargs=None,
        pool_size=2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _validation.check_positive_int("filters", filters)
        _validation.check_choice("upsampling", upsampling, _options.UPSAMPLINGS)
        self.filters = filters
        self.upsampling = upsampling
        self.conv_block = _options.resolve_registered("conv_block", conv_block)
        self.block_kwargs = dict(block_kwargs or {})
        self.pool_size = _options.standardize_pool_size("pool_size", pool_size)

        # The layers are made at build (2D or 3D by the input), in this order, the
        # order of their weights.
        self.upsample = None
        self.concat = None
        self.block = None

    def upsample_filters(self, channels):
        """The output channels of a `"transpose"` upsampling of `channels`: `filters`.

        Override it to return `channels` for an upsampling that keeps the
        deeper features' channels, as the 3D U-Net of Cicek et al. (2016) does.
        """
        del channels  # the upsampling gives `filters` channels
        return self.filters

    def _make_layers(self, rank, channels):
        self.upsample = _options.make_upsampling(
            self.upsampling,
            self.upsample_filters(channels),
            "upsample",
            self.dtype_policy,
            rank=rank,
            pool_size=_options.pool_tuple("pool_size", self.pool_size, rank),
        )
        self.concat = keras.layers.Concatenate(axis=-1, name="concat", dtype=self.dtype_policy)
        self.block = _make_block(
            self.conv_block, self.filters, self.block_kwargs, self.dtype_policy
        )
        _options.track_first(self, [self.upsample, self.concat, self.block])

    def _check_input_shape(self, input_shape):
        """Returns `(x_shape, skip_shape)`, `skip_shape` being `None` without a skip."""
        if _is_shape(input_shape):
            input_shape = [input_shape]
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) not in (1, 2):
            raise ValueError(
                f"`{type(self).__name__}` expects a list `[x, skip]` of two tensors, or "
                f"`[x]` without a skip. Received: input_shape={input_shape}"
            )
        x_shape = tuple(input_shape[0])
        if len(input_shape) == 1:
            return x_shape, None
        skip_shape = tuple(input_shape[1])
        expected = self._upsampled_shape(x_shape)[1:-1]
        agree = len(skip_shape) == len(x_shape) and all(
            None in (size, skip_size) or size == skip_size
            for size, skip_size in zip(expected, skip_shape[1:-1], strict=True)
        )
        if not agree:
            raise ValueError(
                f"`{type(self).__name__}` expects a skip of the size of `x` times "
                f"pool_size={self.pool_size}. Received: x.shape={x_shape}, "
                f"skip.shape={skip_shape}"
            )
        return x_shape, skip_shape

    def _upsampled_shape(self, x_shape):
        rank = _options.spatial_rank(self, x_shape)
        pool = _options.pool_tuple("pool_size", self.pool_size, rank)
        spatial = [None if n is None else n * p for n, p in zip(x_shape[1:-1], pool, strict=True)]
        return (x_shape[0], *spatial, self.filters)

    def build(self, input_shape):
        x_shape, skip_shape = self._check_input_shape(input_shape)
        self._make_layers(_options.spatial_rank(self, x_shape), x_shape[-1])
        self.upsample.build(x_shape)
        up_shape = self.upsample.compute_output_shape(x_shape)
        if skip_shape is None:
            self.block.build(up_shape)
            return
        self.concat.build([up_shape, skip_shape])
        self.block.build(self.concat.compute_output_shape([up_shape, skip_shape]))

    def call(self, inputs, training=None):
        if not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        upsampled = self.upsample(inputs[0])
        if len(inputs) == 1:
            return self.block(upsampled, training=training)
        return self.block(self.fuse(upsampled, inputs[1]), training=training)

    def fuse(self, upsampled, skip):
        """Fuses the upsampled features with the skip connection."""
        return self.concat([upsampled, skip])

    def compute_output_shape(self, input_shape):
        x_shape, skip_shape = self._check_input_shape(input_shape)
        if skip_shape is not None:
            return (*skip_shape[:-1], self.filters)
        return self._upsampled_shape(x_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "upsampling": self.upsampling,
                "conv_block": _options.registered_name(self.conv_block),
                "block_kwargs": dict(self.block_kwargs),
                "pool_size": self.pool_size,
            }
        )
        return config


def _pooled(size, pool, ceil):
    """`size` divided by `pool`, rounded down (up with `ceil`); `None` if unknown."""
    if size is None:
        return None
    return -(-size // pool) if ceil else size // pool


def _is_shape(value):
    """Whether `value` is one shape (a tuple of ints or `None`), not a list of shapes."""
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(v is None or isinstance(v, int) for v in value)
    )
