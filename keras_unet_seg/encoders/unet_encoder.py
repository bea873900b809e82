"""`UNetEncoder`: the U-Net's own encoder stages and bottleneck, as one swappable part."""

import keras

from keras_unet_seg import _validation
from keras_unet_seg.layers import _options
from keras_unet_seg.layers.conv_block import ConvBlock
from keras_unet_seg.layers.stages import EncoderStage
from keras_unet_seg.layers.unet_decoder import (
    check_filters,
    stage_pool_size,
    standardize_level_kwargs,
    standardize_pool_sizes,
)

__all__ = ["UNetEncoder"]


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class UNetEncoder(keras.layers.Layer):
    """The U-Net encoder: one encoder stage a level, then the bottleneck block.

    Each stage is a block then a 2x downsampling; the blocks' outputs (the
    skip connections) and the bottleneck's are the feature maps, finest
    first, at strides `1, 2, ..., 2**depth`: what `UNetDecoder` takes.
    `UNet` builds one when no `encoder` is given. Images and volumes alike:
    the stages are 2D or 3D by the rank of the input.

    Args:
        filters: list of `depth + 1` ints, the filters of every level, the
            bottleneck's last.
        encoder_stage: class or registered callable building the stages,
            called as `encoder_stage(filters=..., pooling=...,
            conv_block=..., block_kwargs=...)`. Defaults to `EncoderStage`.
        pooling: `"max"`, `"avg"` or `"conv"`. Defaults to `"max"`.
        conv_block: class or registered callable building the blocks (the
            bottleneck included), called as `conv_block(filters=...,
            **block_kwargs)`. Defaults to `ConvBlock`.
        block_kwargs: dict of block arguments for every level, or a list of
            `depth + 1` dicts, one a level (the bottleneck's last). Defaults
            to `None`.
        pool_sizes: `None` (2 along every axis at every stage) or a list of
            `depth` pool sizes, one a stage: an int or one int a spatial
            axis, such as `(1, 2, 2)` to keep a thin volume's depth (see
            `plan_pool_sizes`). Defaults to `None`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: images `(batch, height, width, channels)` or volumes
            `(batch, depth, height, width, channels)`, each spatial size a
            multiple of the product of its axis' pool sizes (`2**depth`).
        training: bool, whether the blocks run in training mode.

    Returns:
        The list of `depth + 1` feature maps, finest first, at
        `feature_strides`.

    Example:

    >>> encoder = UNetEncoder(filters=[4, 8, 16])
    >>> encoder.feature_strides
    [1, 2, 4]
    >>> [tuple(f.shape) for f in encoder(keras.ops.zeros((1, 32, 32, 3)))]
    [(1, 32, 32, 4), (1, 16, 16, 8), (1, 8, 8, 16)]
    """

    def __init__(
        self,
        filters,
        encoder_stage=EncoderStage,
        pooling="max",
        conv_block=ConvBlock,
        block_kwargs=None,
        pool_sizes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_filters("filters", filters)
        if len(self.filters) < 2:
            raise _validation.invalid_value(
                "filters", "a list of at least 2 positive integers (depth + 1)", filters
            )
        self.pool_sizes = standardize_pool_sizes("pool_sizes", pool_sizes, self.depth)
        _validation.check_choice("pooling", pooling, _options.POOLINGS)
        self.encoder_stage = _options.resolve_registered("encoder_stage", encoder_stage)
        self.conv_block = _options.resolve_registered("conv_block", conv_block)
        self.pooling = pooling
        self.block_kwargs = block_kwargs
        level_kwargs = standardize_level_kwargs("block_kwargs", block_kwargs, len(self.filters))

        # === Layers ===
        self.stages = [
            self.encoder_stage(
                filters=self.filters[level],
                pooling=pooling,
                conv_block=self.conv_block,
                block_kwargs=level_kwargs[level],
                **stage_pool_size(self.pool_sizes, level),
                name=f"encoder_{level}",
                dtype=self.dtype_policy,
            )
            for level in range(self.depth)
        ]
        self.bottleneck = self.conv_block(
            filters=self.filters[-1],
            **level_kwargs[-1],
            name="bottleneck",
            dtype=self.dtype_policy,
        )

    @property
    def depth(self):
        return len(self.filters) - 1

    @property
    def feature_strides(self):
        return [2**level for level in range(self.depth + 1)]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for stage in self.stages:
            stage.build(shape)
            shape, _ = stage.compute_output_shape(shape)
        self.bottleneck.build(shape)

    def call(self, inputs, training=None):
        x, features = inputs, []
        for stage in self.stages:
            x, skip = stage(x, training=training)
            features.append(skip)
        features.append(self.bottleneck(x, training=training))
        return features

    def compute_output_shape(self, input_shape):
        shape, features = tuple(input_shape), []
        for stage in self.stages:
            shape, skip_shape = stage.compute_output_shape(shape)
            features.append(skip_shape)
        features.append(self.bottleneck.compute_output_shape(shape))
        return features

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": list(self.filters),
                "encoder_stage": _options.registered_name(self.encoder_stage),
                "pooling": self.pooling,
                "conv_block": _options.registered_name(self.conv_block),
                "block_kwargs": self.block_kwargs,
                "pool_sizes": self.pool_sizes,
            }
        )
        return config
