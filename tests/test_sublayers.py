"""Tests for `keras_unet_seg._sublayers`: nested layers through public attributes."""

import keras

from keras_unet_seg import UNet
from keras_unet_seg._sublayers import children, sublayers


class _Pair(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.convs = [keras.layers.Conv2D(2, 1), keras.layers.Conv2D(2, 1)]
        self.first = self.convs[0]  # the same layer twice
        self.by_name = {"dense": keras.layers.Dense(2)}


def test_children_are_public_attributes_once_and_sublayers_nest():
    pair = _Pair()
    assert children(pair) == [*pair.convs, pair.by_name["dense"]]
    outer = keras.layers.Layer()
    outer.inner = _Pair()
    found = sublayers(outer)
    assert len({id(layer) for layer in found}) == len(found)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in found) == 2
    nested = next(layer for layer in found if isinstance(layer, _Pair))
    assert found.index(nested) < found.index(nested.convs[0])  # outer layers first


def test_sublayers_of_a_unet_hold_every_convolution():
    model = UNet(base_filters=2, depth=2, num_convs=1)
    model.build((None, 8, 8, 3))
    convs = [layer for layer in sublayers(model) if isinstance(layer, keras.layers.Conv2D)]
    # Two encoder levels, the bottleneck, two decoder levels, and the head.
    assert len(convs) == 6
