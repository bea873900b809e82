"""`_model_size`: the parameter estimate that refuses a model too big to train."""

import pytest


@pytest.mark.parametrize(
    "options",
    [
        {"base_filters": 8, "depth": 2},
        {"base_filters": 16, "depth": 4, "channels": 1, "num_classes": 3},
        {"base_filters": 8, "depth": 3, "upsampling": "bilinear"},
    ],
)
def test_parameter_estimate_is_within_3_percent_of_the_model(options):
    from keras_unet_seg import UNet
    from keras_unet_seg.commands._model_size import estimate_parameters

    channels, num_classes = options.pop("channels", 3), options.pop("num_classes", 1)
    model = UNet(num_classes=num_classes, **options)
    model.build((None, None, None, channels))
    estimate = estimate_parameters(
        channels,
        options["base_filters"],
        options["depth"],
        num_classes,
        options.get("upsampling", "transpose"),
    )
    assert estimate == pytest.approx(model.count_params(), rel=0.03)
