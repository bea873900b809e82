"""The model-size guard asks the model: exact counts for every encoder and decoder,
without allocating a model too big to train."""

import keras
import pytest

from keras_unet_seg import AttentionDecoderStage, UNet, UNetPlusPlus
from keras_unet_seg.training import TrainingConfig
from keras_unet_seg.training._model_size import check_model_fits, count_parameters


@pytest.mark.parametrize(
    "build",
    [
        lambda: UNet(base_filters=8, depth=3, upsampling="bilinear", residual=True),
        lambda: UNet(base_filters=4, depth=2, num_classes=3, decoder_stage=AttentionDecoderStage),
        lambda: UNet(encoder="mobilenetv2", decoder_filters=[4, 4, 8, 8, 8]),
        lambda: UNetPlusPlus(base_filters=4, depth=2),
    ],
)
def test_the_count_is_the_built_models(build):
    def built():
        model = build()
        model.build((None, None, None, 3))
        return model

    assert count_parameters(built) == built().count_params()


def test_a_model_too_big_is_refused_without_being_allocated():
    config = TrainingConfig(data="cells", base_filters=100000, depth=4)
    with pytest.raises(ValueError, match=r"makes a model of 7.57e\+13 parameters"):
        check_model_fits(config)
    # Nothing of it is left for Keras to initialise when the next scope ends.
    with keras.StatelessScope():
        pass
    assert check_model_fits(config.replace(base_filters=4), memory=1 << 40) > 0
    with pytest.raises(ValueError, match="needs about"):
        check_model_fits(config.replace(base_filters=4), memory=1 << 20)
