"""Batch-normalization folding: an inference-only copy of a model, without its batch norms.

At inference, batch normalization is a fixed per-channel affine map
`gamma * (x - mean) / sqrt(variance + epsilon) + beta`. When it directly
follows a convolution, it can be folded into that convolution's kernel and
bias, which removes a pass over every feature map (and, under a mixed
precision policy, the float32 casts around it).
"""

import keras
import numpy as np

from keras_unet_seg._model_facts import sample_input
from keras_unet_seg._sublayers import children, sublayers
from keras_unet_seg._validation import check_built_model

__all__ = ["fold_batch_normalization"]

_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)


def fold_batch_normalization(model):
    """Returns an inference-only copy of a model with batch normalization folded.

    Every `BatchNormalization` that directly follows a `Conv2D` or
    `Conv2DTranspose` (with no activation) whose output feeds nothing else is
    folded into that convolution: with `s = gamma / sqrt(moving_variance +
    epsilon)`, the kernel becomes `kernel * s` (per output channel) and the
    bias `(bias - moving_mean) * s + beta`. The pairs are found by running the
    model once and recording which layer produced and consumed each tensor, so
    any block that calls `conv -> norm` qualifies, not only `ConvBlock`.

    The copy is rebuilt from the model's config with batch normalization
    turned off (every `normalization` option that asks for `"batch"` becomes
    `None`, which gives the library's blocks biased convolutions and no
    normalization layer), so it is a plain model of the same classes that
    saves and loads as `.keras` with `safe_mode=True`. Group, instance and
    layer normalization depend on each input and are left as they are; so is
    a batch normalization that the config cannot turn off (it keeps its
    weights and stays exact).

    The copy computes what the original computes with `training=False`, to
    float32 rounding (about 1e-6); it must not be trained (its normalization
    no longer adapts).

    Args:
        model: a built Keras model, such as a trained `UNet`, of any dtype
            policy.

    Returns:
        A new built model of the same class and policy, or a copy with the
        same layers if nothing could be folded.

    Raises:
        ValueError: if the model is not built, or if its config turned off a
            batch normalization that does not directly follow a convolution
            (which would change its outputs).

    Example:

    >>> from keras_unet_seg import UNet
    >>> model = UNet(base_filters=4, depth=2)
    >>> model.build((None, None, None, 3))
    >>> folded = fold_batch_normalization(model)
    >>> print(folded.normalization)  # biased convolutions, no normalization layers
    None
    >>> x = np.random.default_rng(0).random((1, 36, 20, 3), dtype="float32")
    >>> bool(np.allclose(model(x), folded(x), atol=1e-5))
    True
    """
    check_built_model(model)
    build_config = model.get_build_config()
    pairs = _conv_norm_pairs(model, sample_input(model))
    config = keras.saving.serialize_keras_object(model)
    folded = keras.saving.deserialize_keras_object(_without_batch_normalization(config))
    if not folded.built:
        folded.build_from_config(build_config)
    old = {_relative_path(v.path, model): v for v in model.weights}
    new = {_relative_path(v.path, folded): v for v in folded.weights}
    conv_paths = _folded_convolutions(model, pairs, old, new)
    for path, variable in new.items():
        if path in old:
            variable.assign(old[path])
    for conv_path, (conv, norm) in conv_paths.items():
        kernel, bias = _folded_kernel_and_bias(conv, norm)
        new[conv_path + "/kernel"].assign(kernel)
        new[conv_path + "/bias"].assign(bias)
    return folded


def _folded_convolutions(model, pairs, old, new):
    """`{convolution path: (conv, norm)}` of the pairs folded in the rebuilt model.

    `old` and `new` are the weights of `model` and of its rebuilt copy by
    path; every weight the copy lacks must belong to a folded normalization,
    and every weight only the copy has must be a folded convolution's bias.
    """
    # The pairs whose normalization the rebuilt model no longer has, by its path.
    folded_pairs = {
        path: pair
        for path, pair in ((_relative_path(norm.path, model), (conv, norm)) for conv, norm in pairs)
        if not any(p.startswith(path + "/") for p in new)
    }
    for path in sorted(set(old) - set(new)):
        if path.rsplit("/", 1)[0] not in folded_pairs:
            raise ValueError(
                "Invalid value for argument `model`. Expected every batch normalization "
                "that the model's config turns off to directly follow a Conv2D or "
                f"Conv2DTranspose whose output feeds only it. Received: model={model.name!r}, "
                f"whose weight '{path}' has no place in the folded model"
            )
    conv_paths = {
        _relative_path(conv.path, model): (conv, norm) for conv, norm in folded_pairs.values()
    }
    unexpected = sorted(set(new) - set(old) - {path + "/bias" for path in conv_paths})
    missing = sorted(path for path in conv_paths if path + "/bias" not in new)
    if unexpected or missing:
        raise ValueError(
            "Invalid value for argument `model`. Expected the folded model to differ from "
            "it only by biases of the convolutions before folded batch normalizations. "
            f"Received: model={model.name!r}, whose folded copy has the new weights "
            f"{unexpected} and no bias in the convolutions {missing}"
        )
    return conv_paths


def _conv_norm_pairs(model, sample):
    """`[(conv, norm)]`: batch normalizations fed by a convolution's output alone."""
    calls = _record_calls(model, sample)
    producer = {}
    consumers = {}
    for layer, inputs, outputs in calls:
        for tensor in outputs:
            producer[id(tensor)] = layer
        for tensor in inputs:
            consumers.setdefault(id(tensor), set()).add(id(layer))
    candidates = {}  # id(norm) -> (conv, norm), None once a call disqualifies it
    for layer, inputs, _ in calls:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        conv = producer.get(id(inputs[0])) if len(inputs) == 1 else None
        pair = (conv, layer) if _foldable(conv, layer, consumers[id(inputs[0])]) else None
        if candidates.get(id(layer), pair) != pair:
            pair = None
        candidates[id(layer)] = pair
    pairs = [pair for pair in candidates.values() if pair is not None]
    # A convolution followed by two normalizations (called twice) cannot take both.
    convs = [id(conv) for conv, _ in pairs]
    return [(conv, norm) for conv, norm in pairs if convs.count(id(conv)) == 1]


def _record_calls(model, sample):
    """`[(layer, input tensors, output tensors)]` of every leaf layer, in call order.

    Runs `model` once in inference mode with every leaf layer's `call`
    wrapped; the list keeps the tensors alive, so their `id`s stay theirs.
    """
    calls = []
    leaves = [layer for layer in sublayers(model) if not children(layer)]

    def recording(layer, call):
        def wrapped(*args, **kwargs):
            outputs = call(*args, **kwargs)
            calls.append((layer, keras.tree.flatten(args), keras.tree.flatten(outputs)))
            return outputs

        return wrapped

    for layer in leaves:
        object.__setattr__(layer, "call", recording(layer, layer.call))
    try:
        model(sample, training=False)
    finally:
        for layer in leaves:
            object.__delattr__(layer, "call")
    return calls


def _foldable(conv, norm, consumers):
    return (
        isinstance(conv, _CONVOLUTIONS)
        and consumers == {id(norm)}
        and conv.data_format == "channels_last"
        and conv.activation is keras.activations.linear
        and norm.axis in (-1, 3)
    )


def _folded_kernel_and_bias(conv, norm):
    """The kernel and bias of `conv` followed by `norm` in inference mode, in float64."""
    kernel = np.asarray(conv.kernel, dtype=np.float64)
    channels = (
        kernel.shape[-2] if isinstance(conv, keras.layers.Conv2DTranspose) else kernel.shape[-1]
    )
    bias = np.asarray(conv.bias, dtype=np.float64) if conv.use_bias else np.zeros(channels)
    gamma = np.asarray(norm.gamma, dtype=np.float64) if norm.scale else np.ones(channels)
    beta = np.asarray(norm.beta, dtype=np.float64) if norm.center else np.zeros(channels)
    mean = np.asarray(norm.moving_mean, dtype=np.float64)
    variance = np.asarray(norm.moving_variance, dtype=np.float64)
    scale = gamma / np.sqrt(variance + norm.epsilon)
    if isinstance(conv, keras.layers.Conv2DTranspose):  # kernel (h, w, out, in)
        kernel = kernel * scale[:, None]
    else:  # kernel (h, w, in, out)
        kernel = kernel * scale
    bias = (bias - mean) * scale + beta
    return kernel.astype(np.float32), bias.astype(np.float32)


def _is_batch_spec(value):
    return value == "batch" or (isinstance(value, dict) and value.get("type") == "batch")


def _without_batch_normalization(config):
    """A copy of a serialized config with every `normalization: "batch"` set to `None`."""
    if isinstance(config, dict):
        return {
            key: None
            if key == "normalization" and _is_batch_spec(value)
            else _without_batch_normalization(value)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [_without_batch_normalization(value) for value in config]
    return config


def _relative_path(path, model):
    """A variable's or layer's path without the model's own name in front."""
    prefix = model.name + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path
