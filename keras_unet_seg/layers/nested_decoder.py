"""`NestedDecoder`: the UNet++ decoder of nested, densely connected skip pathways."""

import keras
from keras import ops

from keras_unet_seg import _validation
from keras_unet_seg.layers.conv_block import ConvBlock
from keras_unet_seg.layers.stages import DecoderStage
from keras_unet_seg.layers.unet_decoder import UNetDecoder, split_features


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class NestedDecoder(UNetDecoder):
    """The UNet++ decoder: nested, dense skip pathways between the levels.

    The node `X[i, j]` (level `i`, stride `2**i`; column `j >= 1`) is a
    decoder stage that upsamples `X[i + 1, j - 1]` and fuses it with the
    concatenation of every node before it on its level, `X[i, 0]` (the
    encoder's feature map) to `X[i, j - 1]`. The last column, `X[0, L]`, is
    the output; with `deep_supervision=True` the decoder returns every
    `X[0, j]`, one map per nested U-Net depth, for one head each. Levels the
    encoder has no feature map for (strides 1 or 2 of an encoder that starts
    at stride 4) have no `X[i, 0]`, and the nodes that would need it are left
    out, so their level starts one column later.

    Nodes are `decoder_stage` layers, so `AttentionDecoderStage` (or your own
    stage) gives a nested decoder with attention gates; `upsampling`,
    `conv_block`, `block_kwargs` and `pool_sizes` are those of `UNetDecoder`
    (the nodes of level `i` upsample by `pool_sizes[i]`), and volumes work as
    images do.

    Args:
        filters: list of ints, the output channels of each level's nodes,
            finest first; `len(filters)` is the number of levels below the
            deepest feature map.
        deep_supervision: bool, whether to return the map of every nested
            depth (`X[0, 1]` to `X[0, L]`) instead of the last. Defaults to
            `False`.
        decoder_stage: see `UNetDecoder`. Defaults to `DecoderStage`.
        upsampling: see `UNetDecoder`. Defaults to `"transpose"`.
        conv_block: see `UNetDecoder`. Defaults to `ConvBlock`.
        block_kwargs: see `UNetDecoder`. Defaults to `None`.
        pool_sizes: see `UNetDecoder`. Defaults to `None`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: list of feature maps, finest first, the deepest last at
            stride `2**len(filters)`.
        training: bool, whether the blocks run in training mode.

    Returns:
        The stride-1 feature map, `filters[0]` channels, or with
        `deep_supervision=True` a list of them, shallowest nested U-Net first.

    Example:

    >>> decoder = NestedDecoder(filters=[8, 16], deep_supervision=True)
    >>> features = [keras.ops.zeros((1, 32, 32, 8)), keras.ops.zeros((1, 16, 16, 16)),
    ...             keras.ops.zeros((1, 8, 8, 32))]
    >>> [tuple(x.shape) for x in decoder(features)]
    [(1, 32, 32, 8), (1, 32, 32, 8)]

    Reference:
        - [Zhou et al., 2018](https://arxiv.org/abs/1807.10165)
    """

    def __init__(
        self,
        filters,
        deep_supervision=False,
        decoder_stage=DecoderStage,
        upsampling="transpose",
        conv_block=ConvBlock,
        block_kwargs=None,
        pool_sizes=None,
        **kwargs,
    ):
        _validation.check_bool("deep_supervision", deep_supervision)
        super().__init__(
            filters,
            decoder_stage=decoder_stage,
            upsampling=upsampling,
            conv_block=conv_block,
            block_kwargs=block_kwargs,
            pool_sizes=pool_sizes,
            **kwargs,
        )
        self.deep_supervision = deep_supervision

    def _node_keys(self):
        """`(level, column)` of every node: column >= 1 and level + column <= L."""
        return [
            (level, column)
            for column in range(1, self.levels + 1)
            for level in range(self.levels + 1 - column)
        ]

    def _make_stages(self, level_kwargs):
        # `self.stages` holds the nodes in the order of `_node_keys`, the order they run in.
        for level, column in self._node_keys():
            self.stages.append(self._stage(level, f"node_{level}_{column}", level_kwargs))

    def _node(self, key):
        return self.stages[self._node_keys().index(key)]

    def _walk(self, features, node):
        """Computes the nodes column by column; `node(key, inputs)` computes one."""
        levels = self.levels
        finest = levels + 1 - len(features)
        grid = {(level, 0): features[level - finest] for level in range(finest, levels + 1)}
        for column in range(1, levels + 1):
            for level in range(levels + 1 - column):
                if level + column < finest:
                    continue  # would need a feature map the encoder does not have
                skips = [grid[(level, k)] for k in range(column) if (level, k) in grid]
                inputs = [grid[(level + 1, column - 1)]]
                if skips:
                    inputs.append(skips)
                grid[(level, column)] = node((level, column), inputs)
        if self.deep_supervision:
            return [grid[(0, c)] for c in range(1, levels + 1) if (0, c) in grid]
        return grid[(0, levels)]

    def build(self, input_shape):
        split_features(input_shape, self.levels, type(self).__name__)

        def build_node(key, inputs):
            stage = self._node(key)
            shape = [inputs[0], _concatenated_shape(inputs[1])] if len(inputs) == 2 else inputs
            stage.build(shape)
            return stage.compute_output_shape(shape)

        self._walk([tuple(s) for s in input_shape], build_node)

    def call(self, inputs, training=None):
        def run_node(key, node_inputs):
            if len(node_inputs) == 2:
                skips = node_inputs[1]
                skip = skips[0] if len(skips) == 1 else ops.concatenate(skips, axis=-1)
                node_inputs = [node_inputs[0], skip]
            return self._node(key)(node_inputs, training=training)

        return self._walk(list(inputs), run_node)

    def compute_output_shape(self, input_shape):
        shape = super().compute_output_shape(input_shape)
        if not self.deep_supervision:
            return shape
        finest = split_features(input_shape, self.levels, type(self).__name__)
        return [shape] * (self.levels - max(finest - 1, 0))

    def get_config(self):
        config = super().get_config()
        config["deep_supervision"] = self.deep_supervision
        return config


def _concatenated_shape(shapes):
    channels = [s[-1] for s in shapes]
    total = None if None in channels else sum(channels)
    return (*shapes[0][:-1], total)
