"""`ConvBlock`: n x (conv -> norm -> activation) [+ residual] [+ dropout]."""

import warnings

import keras

from keras_unet_seg import _validation
from keras_unet_seg.layers import _options


@keras.saving.register_keras_serializable(package="keras_unet_seg")
class ConvBlock(keras.layers.Layer):
    """Stacked convolutions, each followed by normalization and activation.

    The unit every U-Net level is built from: `num_convs` times
    `Conv2D(filters, kernel_size, padding="same")` (`Conv3D` on volumes: the
    rank is read from the input at build), normalization, activation;
    then dropout if `dropout > 0`. With `residual=True` the input is added
    before the last activation, through a 1x1 projection (and normalization)
    when its channel count differs from `filters`. Convolutions carry no bias
    when a normalization follows them.

    Subclass it to make a variant (squeeze-excitation, another convolution),
    register the subclass, and pass it to `UNet(conv_block=...)`.

    Args:
        filters: int, number of output channels.
        num_convs: int, number of convolutions. Defaults to `2`.
        kernel_size: int, side of the square (or cubic) kernels. Defaults to
            `3`.
        normalization: `"batch"`, `"group"`, `"instance"`, `"layer"`, `None`,
            or a dict with a `"type"` key and that type's options, for example
            `{"type": "batch", "momentum": 0.99}` or
            `{"type": "group", "groups": 4}`. `"batch"` uses momentum `0.9`
            (PyTorch's default), not Keras' `0.99`: with `0.99` the moving
            statistics are still unsettled after a few hundred steps, and a
            short training run is evaluated with the wrong statistics.
            `"group"` uses 8 groups (or the largest common divisor with
            `filters`); `"layer"` normalizes over channels. Defaults to
            `"batch"`.
        activation: str, name of a Keras activation. Defaults to `"relu"`.
        dropout: float in `[0, 1)`, dropout rate after the convolutions.
            Defaults to `0.0`.
        residual: bool, whether to add the (projected) input before the last
            activation. Defaults to `False`.
        kernel_initializer: str or `keras.initializers.Initializer`,
            initializer of the convolution kernels. Defaults to
            `"he_normal"`, suited to ReLU.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: tensor of shape `(batch, height, width, channels)`, or
            `(batch, depth, height, width, channels)` for volumes.
        training: bool, whether normalization and dropout run in training mode.

    Input shape:
        4D tensor `(batch, height, width, channels)` or 5D tensor
        `(batch, depth, height, width, channels)`.

    Output shape:
        The input's shape with `filters` channels.

    Example:

    >>> block = ConvBlock(16, normalization="group", residual=True)
    >>> tuple(block(keras.ops.zeros((2, 32, 32, 3))).shape)
    (2, 32, 32, 16)
    >>> tuple(ConvBlock(4)(keras.ops.zeros((1, 5, 12, 9, 1))).shape)
    (1, 5, 12, 9, 4)

    Reference:
        - [Ronneberger et al., 2015](https://arxiv.org/abs/1505.04597)
        - [He et al., 2016](https://arxiv.org/abs/1512.03385) (residual)
    """

    def __init__(
        self,
        filters,
        num_convs=2,
        kernel_size=3,
        normalization="batch",
        activation="relu",
        dropout=0.0,
        residual=False,
        kernel_initializer="he_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        _validation.check_positive_int("filters", filters)
        _validation.check_positive_int("num_convs", num_convs)
        _validation.check_positive_int("kernel_size", kernel_size)
        norm_spec = _options.standardize_normalization(normalization)
        _options.check_activation("activation", activation)
        _validation.check_rate("dropout", dropout)
        _validation.check_bool("residual", residual)

        self.filters = filters
        self.num_convs = num_convs
        self.kernel_size = kernel_size
        self.normalization = normalization
        self.activation = activation
        self.dropout = dropout
        self.residual = residual
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._norm_spec = norm_spec

        # The layers are made at build, when the input's rank says whether the
        # convolutions are 2D or 3D.
        self.convs = []
        self.norms = []
        self.activation_layers = []
        self.dropout_layer = None
        self.shortcut = None
        self.shortcut_norm = None

    def build(self, input_shape):
        rank = _options.spatial_rank(self, input_shape)
        # === Layers === (made in this order, the order of their weights)
        self.convs = [
            _options.make_conv(
                rank,
                self.conv_filters(i),
                self.kernel_size,
                padding="same",
                use_bias=self._norm_spec is None,
                kernel_initializer=self.kernel_initializer,
                name=f"conv_{i}",
                dtype=self.dtype_policy,
            )
            for i in range(self.num_convs)
        ]
        policy = self.dtype_policy
        self.norms = [
            _options.make_normalization(self._norm_spec, self.conv_filters(i), f"norm_{i}", policy)
            for i in range(self.num_convs)
        ]
        self.activation_layers = [
            keras.layers.Activation(self.activation, name=f"act_{i}", dtype=self.dtype_policy)
            for i in range(self.num_convs)
        ]
        if self.dropout > 0:
            self.dropout_layer = keras.layers.Dropout(
                self.dropout, name="dropout", dtype=self.dtype_policy
            )
        own = [*self.convs, *self.norms, *self.activation_layers, self.dropout_layer]
        _options.track_first(self, own)  # before a subclass's, as when made in `__init__`

        shape = tuple(input_shape)
        for conv, norm, act in zip(self.convs, self.norms, self.activation_layers, strict=True):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if norm is not None:
                norm.build(shape)
            act.build(shape)
        if self.residual and input_shape[-1] != self.filters:
            self.shortcut = _options.make_conv(
                rank,
                self.filters,
                1,
                use_bias=self._norm_spec is None,
                kernel_initializer=self.kernel_initializer,
                name="shortcut",
                dtype=self.dtype_policy,
            )
            self.shortcut.build(input_shape)
            self.shortcut_norm = _options.make_normalization(
                self._norm_spec, self.filters, "shortcut_norm", self.dtype_policy
            )
            if self.shortcut_norm is not None:
                self.shortcut_norm.build(shape)
        if self.dropout_layer is not None:
            self.dropout_layer.build(shape)

    def conv_filters(self, index):
        """The output channels of convolution `index`: `filters`.

        Override it for a block whose convolutions differ, such as the 3D
        U-Net's encoder blocks (Cicek et al., 2016), whose first convolution
        has half the channels of the second. The last must give `filters`.
        """
        del index  # every convolution gives `filters` channels
        return self.filters

    def call(self, inputs, training=None):
        x = inputs
        last = self.num_convs - 1
        for i, (conv, norm, act) in enumerate(
            zip(self.convs, self.norms, self.activation_layers, strict=True)
        ):
            x = conv(x)
            if norm is not None:
                x = norm(x, training=training)
            if self.residual and i == last:
                x = x + self._shortcut(inputs, training)
            x = act(x)
        if self.dropout_layer is not None:
            x = self.dropout_layer(x, training=training)
        return x

    @property
    def activations(self):
        """Deprecated alias of `activation_layers`."""
        warnings.warn(
            "`ConvBlock.activations` is deprecated and will be removed in the next "
            "release: use `ConvBlock.activation_layers` (`activation` is the name of "
            "the activation).",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.activation_layers

    def __dir__(self):
        # Keras' saving reads every attribute that `dir` lists: not the deprecated alias.
        return [name for name in super().__dir__() if name != "activations"]

    def _shortcut(self, inputs, training):
        if self.shortcut is None:
            return inputs
        x = self.shortcut(inputs)
        if self.shortcut_norm is not None:
            x = self.shortcut_norm(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "num_convs": self.num_convs,
                "kernel_size": self.kernel_size,
                "normalization": self.normalization,
                "activation": self.activation,
                "dropout": self.dropout,
                "residual": self.residual,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
