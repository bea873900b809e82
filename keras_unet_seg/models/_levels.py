"""The checks and per-level values of a `UNet`'s arguments."""

from keras_unet_seg import _validation
from keras_unet_seg.layers import _options
from keras_unet_seg.layers.unet_decoder import check_filters, standardize_pool_sizes


def check_options(**options):
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


def levels(
    strides,
    filters,
    depth,
    base_filters,
    num_convs,
    dropout,
    trainable,
    decoder_filters,
    pool_sizes,
):
    """Returns `(filters, depth, decoder_filters, per_level)` of a U-Net.

    `strides` are those of the given encoder's features, `None` without an encoder;
    `per_level` holds `filters`, `num_convs` and `dropout` a level, and the checked
    `pool_sizes`.
    """
    if strides is None:
        filters, depth, per_level = plain_levels(
            filters, depth, base_filters, num_convs, dropout, trainable, decoder_filters
        )
        per_level["pool_sizes"] = standardize_pool_sizes("pool_sizes", pool_sizes, depth)
        return filters, depth, decoder_filters, per_level
    if pool_sizes is not None:
        raise _validation.invalid_value(
            "pool_sizes", "None with an `encoder` (its strides are its own)", pool_sizes
        )
    depth, decoder_filters, per_level = decoder_levels(
        strides, depth, decoder_filters, num_convs, dropout
    )
    per_level["pool_sizes"] = None
    return filters, depth, decoder_filters, per_level


def plain_levels(filters, depth, base_filters, num_convs, dropout, trainable, decoder_filters):
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
    per_level = per_level_values(depth, filters=filters, num_convs=num_convs, dropout=dropout)
    if filters is None:
        per_level["filters"] = [base_filters * 2**level for level in range(depth + 1)]
    _check_levels(per_level)
    return filters, depth, per_level


def decoder_levels(feature_strides, depth, decoder_filters, num_convs, dropout):
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
    per_level = per_level_values(
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


def per_level_values(depth, **values):
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
