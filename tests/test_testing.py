import keras
import pytest

from keras_unet_seg import ConvBlock
from keras_unet_seg.testing import check_layer


@keras.saving.register_keras_serializable(package="keras_unet_seg_tests")
class ForgetfulBlock(ConvBlock):
    """Takes an argument but leaves it out of its config."""

    def __init__(self, filters, gain=1.0, **kwargs):
        super().__init__(filters, **kwargs)
        self.gain = gain


@keras.saving.register_keras_serializable(package="keras_unet_seg_tests")
class WrongShapeBlock(ConvBlock):
    """Announces one more channel than it returns."""

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters + 1)


def test_missing_config_argument_is_reported():
    with pytest.raises(
        AssertionError, match=r"get_config\(\) lacks constructor arguments \['gain'\]"
    ):
        check_layer(ForgetfulBlock, {"filters": 4, "gain": 2.0}, (1, 8, 8, 3))


def test_wrong_output_shape_is_reported():
    with pytest.raises(AssertionError, match="compute_output_shape gave"):
        check_layer(WrongShapeBlock, {"filters": 4}, (1, 8, 8, 3), (1, 8, 8, 4))


def test_passes_on_a_correct_block():
    check_layer(ConvBlock, {"filters": 4}, (2, 8, 8, 3), (2, 8, 8, 4))
