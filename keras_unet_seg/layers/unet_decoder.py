"""`UNetDecoder`: the U-Net's chain of decoder stages, as one swappable part."""

import keras

from keras_unet_seg import _validation
from keras_unet_seg.layers import _options
from keras_unet_seg.layers.conv_block import ConvBlock
from keras_unet_seg.layers.stages import DecoderStage

__all__ = ["UNetDecoder"]


def standardize_level_kwargs(name, value, levels):
    """Returns `value` (a dict, a list of dicts or `None`) as one dict per level."""
    if value is None or isinstance(value, dict):
        return [dict(value or {}) for _ in range(levels)]
    if isinstance(value, (list, tuple)) and len(value) == levels:
        if all(isinstance(v, dict) for v in value):
            return [dict(v) for v in value]
    raise _validation.invalid_value(
        name, f"a dict or a list of {levels} dicts (one a level)", value
    )


def check_filters(name, filters):
    """Checks a non-empty list of positive ints and returns it as a list."""
    if not isinstance(filters, (list, tuple)) or not filters:
        raise _validation.invalid_value(name, "a non-empty list of positive integers", filters)
    for value in filters:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _validation.invalid_value(name, "a non-empty list of positive integers", filters)
    return list(filters)


def standardize_pool_sizes(name, pool_sizes, levels):
    """Checks `pool_sizes`: `None` (2 along every axis) or one pool size a level."""
    if pool_sizes is None:
        return None
    if not isinstance(pool_sizes, (list, tuple)) or len(pool_sizes) != levels:
        raise _validation.invalid_value(
            name,
            f"None or a list of {levels} pool sizes (one a level), each an int or one int a "
            "spatial axis such as (1, 2, 2)",
            pool_sizes,
        )
    return [_options.standardize_pool_size(name, size) for size in pool_sizes]


def level_pool_size(pool_sizes, level):
    """The pool size between `level` and `level + 1`: 2 without `pool_sizes`."""
    return 2 if pool_sizes is None else pool_sizes[level]


def stage_pool_size(pool_sizes, level):
    """`{"pool_size": ...}` for the stage of `level`, or `{}` without `pool_sizes`.

    A stage of an earlier version's contract (a registered callable taking
    `filters`, `pooling` or `upsampling`, `conv_block` and `block_kwargs`) gets no
    `pool_size` unless the model pools by other than 2.
    """
    return {} if pool_sizes is None else {"pool_size": pool_sizes[level]}


def split_features(input_shape, levels, layer_name):
    """Checks a list of feature shapes and returns the level of the finest one.

    The deepest feature is at level `levels` (stride `2**levels`); the others
    are the skips of the levels just above it, so `levels + 1 - len(features)`
    levels (the finest) have no skip.
    """
    if not isinstance(input_shape, (list, tuple)) or not input_shape:
        raise ValueError(
            f"`{layer_name}` expects a list of feature maps, finest first. "
            f"Received: input_shape={input_shape}"
        )
    if len(input_shape) > levels + 1:
        raise ValueError(
            f"`{layer_name}` has {levels} levels, so it takes at most {levels + 1} feature maps "
            f"(strides 1 to {2**levels}). Received: {len(input_shape)} feature maps of shapes "
            f"{[tuple(s) for s in input_shape]}"
        )
    return levels + 1 - len(input_shape)


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class UNetDecoder(keras.layers.Layer):
    """The U-Net decoder: one decoder stage a level, deepest first.

    Takes the encoder's feature maps, finest first and each 2x coarser than
    the last, and upsamples the deepest back to stride 1, fusing the feature
    map of each stride on the way (the skip connections). `len(filters)` is
    the number of stages, so the deepest feature map is at stride
    `2**len(filters)`; strides with no feature map (an encoder whose finest
    features are at stride 2 or 4) get stages without a skip.

    `stages[i]` is the stage that outputs stride `2**i`; the weights come
    deepest stage first, the order the stages run in. The stages are 2D or
    3D by the rank of the features; with `pool_sizes`, a level's stride is
    the product of the pool sizes above it, axis by axis.

    Args:
        filters: list of ints, the output channels of the stages, finest
            first: `filters[i]` is the stage that outputs stride `2**i`.
        decoder_stage: class or registered callable building the stages,
            called as `decoder_stage(filters=..., upsampling=...,
            conv_block=..., block_kwargs=...)`, such as `DecoderStage` or
            `AttentionDecoderStage`. Defaults to `DecoderStage`.
        upsampling: `"transpose"`, `"bilinear"` or `"nearest"`. Defaults to
            `"transpose"`.
        conv_block: the block class of the stages. Defaults to `ConvBlock`.
        block_kwargs: dict of block arguments for every stage, or a list of
            one dict a stage (finest first). Defaults to `None`.
        pool_sizes: `None` (each stage upsamples 2x along every axis) or a
            list of one pool size a stage, finest first: an int or one int a
            spatial axis, such as `(1, 2, 2)` for a volume whose depth the
            encoder did not pool at that level. Defaults to `None`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: list of feature maps, finest first, the deepest last at
            stride `2**len(filters)` (images or volumes).
        training: bool, whether the blocks run in training mode.

    Returns:
        The stride-1 feature map, `filters[0]` channels.

    Example:

    >>> decoder = UNetDecoder(filters=[8, 16, 32])
    >>> features = [keras.ops.zeros((1, 16, 16, 24)), keras.ops.zeros((1, 8, 8, 40)),
    ...             keras.ops.zeros((1, 4, 4, 80))]
    >>> tuple(decoder(features).shape)
    (1, 32, 32, 8)
    """

    def __init__(
        self,
        filters,
        decoder_stage=DecoderStage,
        upsampling="transpose",
        conv_block=ConvBlock,
        block_kwargs=None,
        pool_sizes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_filters("filters", filters)
        self.pool_sizes = standardize_pool_sizes("pool_sizes", pool_sizes, len(self.filters))
        _validation.check_choice("upsampling", upsampling, _options.UPSAMPLINGS)
        self.decoder_stage = _options.resolve_registered("decoder_stage", decoder_stage)
        self.conv_block = _options.resolve_registered("conv_block", conv_block)
        self.upsampling = upsampling
        self.block_kwargs = block_kwargs
        level_kwargs = standardize_level_kwargs("block_kwargs", block_kwargs, len(self.filters))

        # === Layers ===
        self.stages = []
        self._make_stages(level_kwargs)

    def _make_stages(self, level_kwargs):
        # By level, finest first, and made deepest first, the order they run in: the
        # order of their weights, as the U-Net's decoder stages have always had.
        for level in reversed(range(len(self.filters))):
            self.stages.insert(0, self._stage(level, f"stage_{level}", level_kwargs))

    def _stage(self, level, name, level_kwargs):
        """A decoder stage of `level`'s filters and block options."""
        return self.decoder_stage(
            filters=self.filters[level],
            upsampling=self.upsampling,
            conv_block=self.conv_block,
            block_kwargs=level_kwargs[level],
            **stage_pool_size(self.pool_sizes, level),
            name=name,
            dtype=self.dtype_policy,
        )

    @property
    def levels(self):
        return len(self.filters)

    def _stage_inputs(self, features, x, level):
        """`[x, skip]`, or `[x]` where the level has no feature map."""
        index = level - (self.levels + 1 - len(features))
        return [x] if index < 0 else [x, features[index]]

    def build(self, input_shape):
        split_features(input_shape, self.levels, type(self).__name__)
        shape = tuple(input_shape[-1])
        for level in reversed(range(self.levels)):
            stage_shape = self._stage_inputs([tuple(s) for s in input_shape], shape, level)
            self.stages[level].build(stage_shape)
            shape = self.stages[level].compute_output_shape(stage_shape)

    def call(self, inputs, training=None):
        x = inputs[-1]
        for level in reversed(range(self.levels)):
            x = self.stages[level](self._stage_inputs(inputs, x, level), training=training)
        return x

    def compute_output_shape(self, input_shape):
        finest = split_features(input_shape, self.levels, type(self).__name__)
        shape = tuple(input_shape[0]) if finest == 0 else tuple(input_shape[-1])
        rank = _options.spatial_rank(self, shape)
        scales = [1] * rank
        if finest > 0:
            for level in range(self.levels):
                pool = level_pool_size(self.pool_sizes, level)
                pool = _options.pool_tuple("pool_sizes", pool, rank)
                scales = [s * p for s, p in zip(scales, pool, strict=True)]
        spatial = [None if n is None else n * s for n, s in zip(shape[1:-1], scales, strict=True)]
        return (shape[0], *spatial, self.filters[0])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": list(self.filters),
                "decoder_stage": _options.registered_name(self.decoder_stage),
                "upsampling": self.upsampling,
                "conv_block": _options.registered_name(self.conv_block),
                "block_kwargs": self.block_kwargs,
                "pool_sizes": self.pool_sizes,
            }
        )
        return config
