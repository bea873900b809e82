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
from keras_unet_seg._sublayers import sublayers
from keras_unet_seg._validation import check_built_model, invalid_value

__all__ = ["fold_batch_normalization"]

_TRANSPOSED = (keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.Conv3D, *_TRANSPOSED)


def fold_batch_normalization(model):
    """Returns an inference-only copy of a model with batch normalization folded.

    Every `BatchNormalization` that the model's config turns off is folded into
    the `Conv2D` or `Conv2DTranspose` (`Conv3D` or `Conv3DTranspose` in a
    volume model) with no activation that it follows: with
    `s = gamma / sqrt(moving_variance + epsilon)`, the kernel becomes `kernel * s`
    (per output channel) and the bias `(bias - moving_mean) * s + beta`.

    The copy is rebuilt from the model's config with batch normalization
    turned off (every `normalization` option that asks for `"batch"` becomes
    `None`, which gives the library's blocks biased convolutions and no
    normalization layer), so it is a plain model of the same classes that
    saves and loads as `.keras` with `safe_mode=True`. Group, instance and
    layer normalization depend on each input and are left as they are; so is
    a batch normalization that the config cannot turn off (it keeps its
    weights and stays exact). In each block, the normalizations turned off pair,
    in the block's order, with the convolutions that gained a bias (`ConvBlock`'s
    `convs` with its `norms`, its shortcut with `shortcut_norm`); a block where
    they do not pair one for one, or a convolution with an activation, is
    refused, and so is a fold that changes the outputs on a sample batch (a
    normalization called on something other than its convolution's output).

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
    config = keras.saving.serialize_keras_object(model)
    folded = keras.saving.deserialize_keras_object(_without_batch_normalization(config))
    if not folded.built:
        folded.build_from_config(model.get_build_config())
    old = {_relative_path(v.path, model): v for v in model.weights}
    new = {_relative_path(v.path, folded): v for v in folded.weights}
    pairs = _folded_pairs(model, old, new)
    for path, variable in new.items():
        if path in old:
            variable.assign(old[path])
    for conv_path, (conv, norm) in pairs.items():
        kernel, bias = _folded_kernel_and_bias(conv, norm)
        new[conv_path + "/kernel"].assign(kernel)
        new[conv_path + "/bias"].assign(bias)
    if pairs:
        _check_same_outputs(model, folded)
    return folded


def _folded_pairs(model, old, new):
    """`{convolution path: (conv, norm)}` of the batch normalizations folded in the copy.

    `old` and `new` are the weights of `model` and of its rebuilt copy by path. In
    each block, the batch normalizations whose weights the copy lacks pair, in the
    block's order, with the convolutions that gained a bias; every weight that
    only one of the two has must belong to such a pair.
    """
    norms, convs = _changed_layers(model, old, new)
    pairs = {}
    for block, found in norms.items():
        candidates = convs.get(block, [])
        block_pairs = {
            conv_path: (conv, norm)
            for norm, (conv_path, conv) in zip(found, candidates, strict=False)
            if isinstance(norm, keras.layers.BatchNormalization) and _foldable(conv, norm)
        }
        if len(block_pairs) == len(found) == len(candidates):
            pairs.update(block_pairs)
    folded_norms = {_relative_path(norm.path, model) for _, norm in pairs.values()}
    for path in sorted(set(old) - set(new)):
        if path.rpartition("/")[0] not in folded_norms:
            raise invalid_value(
                "model",
                "every batch normalization that the model's config turns off to directly "
                "follow a Conv2D or Conv2DTranspose whose output feeds only it",
                received=f"model={model.name!r}, whose weight '{path}' has no place in the "
                "folded model",
            )
    unexpected = sorted(set(new) - set(old) - {path + "/bias" for path in pairs})
    if unexpected:
        raise invalid_value(
            "model",
            "the folded model to differ from it only by biases of the convolutions before "
            "folded batch normalizations",
            received=f"model={model.name!r}, whose folded copy has the new weights {unexpected}",
        )
    return pairs


def _changed_layers(model, old, new):
    """`({block path: [layer]}, {block path: [(path, layer)]})`: the layers whose weights
    the copy lacks and the convolutions that gained a bias, in each block's order."""
    norms, convs = {}, {}
    for layer in sublayers(model):
        if layer.path is None:  # a functional model's InputLayer
            continue
        path = _relative_path(layer.path, model)
        block = path.rpartition("/")[0]
        prefix = path + "/"
        if any(p.startswith(prefix) for p in old) and not any(p.startswith(prefix) for p in new):
            norms.setdefault(block, []).append(layer)
        elif prefix + "bias" in new and prefix + "bias" not in old:
            convs.setdefault(block, []).append((path, layer))
    return norms, convs


def _check_same_outputs(model, folded):
    """Refuses a copy whose outputs differ from the model's (`training=False`) on a sample
    batch by more than rounding: a normalization paired with a convolution whose output
    it is not called on."""
    sample = sample_input(model)
    expected = keras.tree.flatten(model(sample, training=False))
    received = keras.tree.flatten(folded(sample, training=False))
    full = keras.backend.standardize_dtype(model.dtype_policy.compute_dtype) == "float32"
    tolerance = 1e-3 if full else 1e-1  # 16-bit floats keep 8 or 11 bits of mantissa
    difference = max(
        float(np.max(np.abs(np.asarray(a, "float32") - np.asarray(b, "float32"))))
        for a, b in zip(expected, received, strict=True)
    )
    if difference > tolerance:
        raise invalid_value(
            "model",
            "each batch normalization that its config turns off to be called on the "
            "output of the convolution built before it, and on nothing else",
            received=f"model={model.name!r}, whose folded copy differs from it by "
            f"{difference:.3g} on a sample batch",
        )


def _foldable(conv, norm):
    return (
        isinstance(conv, _CONVOLUTIONS)
        and conv.data_format == "channels_last"
        and conv.activation is keras.activations.linear
        and norm.axis in (-1, len(conv.kernel.shape) - 1)
    )


def _folded_kernel_and_bias(conv, norm):
    """The kernel and bias of `conv` followed by `norm` in inference mode, in float64."""
    kernel = np.asarray(conv.kernel, dtype=np.float64)
    channels = kernel.shape[-2] if isinstance(conv, _TRANSPOSED) else kernel.shape[-1]
    bias = np.asarray(conv.bias, dtype=np.float64) if conv.use_bias else np.zeros(channels)
    gamma = np.asarray(norm.gamma, dtype=np.float64) if norm.scale else np.ones(channels)
    beta = np.asarray(norm.beta, dtype=np.float64) if norm.center else np.zeros(channels)
    mean = np.asarray(norm.moving_mean, dtype=np.float64)
    variance = np.asarray(norm.moving_variance, dtype=np.float64)
    scale = gamma / np.sqrt(variance + norm.epsilon)
    if isinstance(conv, _TRANSPOSED):  # kernel (h, w, out, in), or (d, h, w, out, in)
        kernel = kernel * scale[:, None]
    else:  # kernel (h, w, in, out), or (d, h, w, in, out)
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
