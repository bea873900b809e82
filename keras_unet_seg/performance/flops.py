"""Counting a model's convolution FLOPs, for throughput figures."""

import math

import keras

from keras_unet_seg._sublayers import sublayers
from keras_unet_seg._validation import invalid_value

__all__ = ["estimate_flops"]


def estimate_flops(model, input_shape, training=False):
    """Counts the floating-point operations of a model's convolutions.

    Every `Conv2D` and `Conv2DTranspose` in the model counts
    `2 * kernel_height * kernel_width * input_channels * output_channels`
    operations per output pixel (per input pixel for a transposed
    convolution), a `Conv3D` and `Conv3DTranspose` the same with the
    kernel's depth as a third factor per voxel, a `DepthwiseConv2D`
    `2 * kernel_height * kernel_width * channels * depth_multiplier`, and a
    `Dense` layer on feature maps (the pointwise convolutions of ConvNeXt)
    `2 * input_units * units` per pixel.
    Normalization, activations and pooling are left out, as
    is usual; they are a few percent of a U-Net's work. A training step
    counts three times the forward pass (the forward pass, then the
    gradients with respect to the activations and to the weights).

    Args:
        model: a Keras model whose class rebuilds from its config, such as
            `UNet`. It is rebuilt at `input_shape` (without its weights) to
            read each layer's input shape.
        input_shape: tuple `(batch, height, width, channels)`, or
            `(batch, depth, height, width, channels)` for a volume, with known
            spatial sizes; a `None` batch counts as one image.
        training: bool, whether to count a training step. Defaults to
            `False`.

    Returns:
        int, the number of floating-point operations for the batch.

    Raises:
        ValueError: if a spatial size is unknown.

    Example:

    >>> from keras_unet_seg import UNet
    >>> flops = estimate_flops(UNet(base_filters=64), (1, 256, 256, 3))
    >>> round(flops / 1e9, 1)
    96.3
    """
    if len(input_shape) not in (4, 5) or None in tuple(input_shape)[1:-1]:
        raise invalid_value(
            "input_shape", "known height and width (and depth, for a volume)", input_shape
        )
    shape = (input_shape[0] or 1, *tuple(input_shape)[1:])
    probe = type(model).from_config(model.get_config())
    probe.build(shape)
    layers = sublayers(probe)
    # Networks built for any image size (keras.applications encoders) know their
    # layers' input shapes only once an image of this size runs through them.
    padded = getattr(probe, "_padded_shape", lambda shape: shape)(shape)
    input_shapes = {}
    for network in layers:  # outer networks come before the networks inside them
        if _is_graph(network) and id(network) not in input_shapes:
            image = (1, *padded[1:-1], network.inputs[0].shape[-1])
            _graph_input_shapes(network, image, input_shapes)
    total = 0
    for layer in layers:
        total += _layer_flops(layer, input_shapes.get(id(layer))) * shape[0]
    return total * 3 if training else total


def _is_graph(layer):
    return isinstance(layer, keras.Model) and bool(getattr(layer, "inputs", None))


def _graph_input_shapes(network, input_shape, shapes):
    """Adds to `shapes` the input shape of each layer of a functional or sequential model.

    For an input of `input_shape`, through the networks inside it too.
    """
    shapes[id(network)] = input_shape
    graph = getattr(network, "_functional", network)  # a Sequential's own graph
    # The network's own nodes: a layer of a network cut out of a larger one has others.
    inputs = {}
    for nodes in graph._nodes_by_depth.values():
        for node in nodes:
            operation = node.operation
            if isinstance(operation, _COUNTED) or _is_graph(operation):
                inputs[id(operation)] = (operation, node.input_tensors[0])
    if not inputs:
        return
    operations = [operation for operation, _ in inputs.values()]
    probe = keras.Model(graph.inputs, [tensor for _, tensor in inputs.values()])
    specs = keras.tree.flatten(probe.compute_output_spec(keras.KerasTensor(input_shape)))
    for operation, spec in zip(operations, specs, strict=True):
        if _is_graph(operation):
            _graph_input_shapes(operation, tuple(spec.shape), shapes)
        else:
            shapes[id(operation)] = tuple(spec.shape)


_TRANSPOSED = (keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
_COUNTED = (
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    *_TRANSPOSED,
    keras.layers.DepthwiseConv2D,
    keras.layers.Dense,
)


def _layer_flops(layer, layer_input=None):
    """Floating-point operations of one image through `layer` (0 if not counted)."""
    if not isinstance(layer, _COUNTED) or not layer.built:
        return 0
    layer_input = layer_input or layer.get_build_config()["input_shape"]
    if isinstance(layer, keras.layers.Dense):
        if len(layer_input) not in (4, 5):
            return 0
        return 2 * layer_input[-1] * layer.units * math.prod(layer_input[1:-1])
    kernel = math.prod(layer.kernel_size)
    if isinstance(layer, _TRANSPOSED):
        return 2 * kernel * layer_input[-1] * layer.filters * math.prod(layer_input[1:-1])
    outputs = math.prod(layer.compute_output_shape(layer_input)[1:-1])
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return 2 * kernel * layer_input[-1] * layer.depth_multiplier * outputs
    in_c = layer_input[-1] // getattr(layer, "groups", 1)
    return 2 * kernel * in_c * layer.filters * outputs
