"""`UNetPlusPlus`: the paper's configuration, deep supervision, saving, training."""

import keras
import numpy as np
import pytest

from keras_unet_seg import (
    AttentionDecoderStage,
    DiceCoefficient,
    NestedDecoder,
    UNet,
    UNetPlusPlus,
)
from keras_unet_seg.testing import check_layer

SMALL = {"base_filters": 4, "depth": 2}
# The standard checks' input, which a SMALL model with the nested decoder takes too: JAX
# compiles each operation once for each shape, so the backend reruns reuse them.
CHECKED_SHAPE = (2, 16, 16, 3)


def _images(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype("float32")


@pytest.mark.one_backend
def test_paper_configuration_has_the_parameter_count_of_its_table_1():
    # Zhou et al. 2018, Table 1: U-Net 7.76M, UNet++ 9.04M (filters 32 to 512, no norm).
    unet = UNet(base_filters=32, normalization=None)
    unet.build((None, 96, 96, 3))
    nested = UNetPlusPlus(base_filters=32, normalization=None)
    nested.build((None, 96, 96, 3))
    assert unet.count_params() == 7_760_097
    assert nested.count_params() == 9_042_177
    assert abs(nested.count_params() / 9.04e6 - 1) < 0.001
    # The encoder, bottleneck and head are the U-Net's: the nested decoder makes the rest.
    assert [e.filters for e in nested.encoders] == [32, 64, 128, 256]


def test_standard_checks():
    check_layer(UNetPlusPlus, {**SMALL, "dropout": 0.1}, CHECKED_SHAPE, (2, 16, 16, 1))


def test_deep_supervision_gives_one_output_per_nested_level_and_trains():
    model = UNetPlusPlus(base_filters=4, depth=3, deep_supervision=True)
    images = _images((4, 20, 28, 3))
    masks = (images[..., :1] > 0.5).astype("float32")
    outputs = model(images)
    assert len(outputs) == 3 and all(tuple(y.shape) == (4, 20, 28, 1) for y in outputs)
    assert [h.name for h in model.heads] == ["head_1", "head_2", "head_3"]
    assert all(h.built for h in model.heads) and not hasattr(model, "head")
    model.compile(optimizer="adam", loss=["binary_crossentropy"] * 3)
    history = model.fit(images, [masks] * 3, epochs=2, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][1] < history.history["loss"][0]


# As for U-Net's variants: `test_standard_checks` saves and loads a UNet++ on every
# backend, and the .keras format holds NumPy arrays whatever the backend.
@pytest.mark.one_backend
@pytest.mark.parametrize(
    "kwargs",
    [{"deep_supervision": True}, {"decoder_stage": AttentionDecoderStage, "residual": True}],
)
def test_saves_and_loads_with_identical_outputs(tmp_path, kwargs):
    model = UNetPlusPlus(**SMALL, **kwargs)
    images = _images((2, 12, 20, 3))
    expected = keras.tree.map_structure(keras.ops.convert_to_numpy, model(images))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.get_config() == model.get_config()
    actual = keras.tree.map_structure(keras.ops.convert_to_numpy, loaded(images))
    for a, e in zip(keras.tree.flatten(actual), keras.tree.flatten(expected), strict=True):
        np.testing.assert_allclose(a, e, atol=1e-6)


def test_a_decoder_argument_is_refused():
    with pytest.raises(ValueError, match=r"Received: decoder=<NestedDecoder"):
        UNetPlusPlus(decoder=NestedDecoder(filters=[4, 8]))


def test_unet_takes_the_nested_decoder_as_its_decoder_argument():
    model = UNet(**SMALL, decoder=NestedDecoder(filters=[4, 8]))
    assert tuple(model(_images(CHECKED_SHAPE)).shape) == (*CHECKED_SHAPE[:3], 1)
    assert model.get_config()["decoder"]["class_name"] == "NestedDecoder"
    assert not hasattr(model, "decoders")


def test_a_decoder_of_several_maps_gets_a_head_each():
    model = UNet(**SMALL, decoder=NestedDecoder(filters=[4, 8], deep_supervision=True))
    outputs = model(_images(CHECKED_SHAPE))
    assert [tuple(y.shape) for y in outputs] == [(*CHECKED_SHAPE[:3], 1)] * 2
    assert [h.name for h in model.heads] == ["head_1", "head_2"]


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the same model code trains under the other backends in the faster tests; "
    "6 epochs there would only add to the backend reruns' time",
)
def test_trains_on_synthetic_data_to_a_dice_above_0_9(tmp_path):
    from keras_unet_seg import SegmentationDataset, make_synthetic_dataset

    keras.utils.set_random_seed(0)
    make_synthetic_dataset(tmp_path, num_train=64, num_val=16, image_size=(64, 64), seed=0)
    train = SegmentationDataset.from_directory(
        tmp_path, subset="train", batch_size=8, image_size=(64, 64), shuffle=True, seed=0
    )
    val = SegmentationDataset.from_directory(
        tmp_path, subset="val", batch_size=8, image_size=(64, 64), shuffle=False
    )
    model = UNetPlusPlus(base_filters=8, depth=3)
    model.build((None, None, None, 3))
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="binary_crossentropy",
        metrics=[DiceCoefficient()],
    )
    model.optimizer.build(model.trainable_variables)  # one trace of the step, not two
    # Validation Dice by epoch, seed 0: 0.64, 0.90, 0.95, 0.95, 0.95, 0.98 (0.99 by 12).
    model.fit(train, epochs=6, verbose=0, shuffle=False)
    dice = model.evaluate(val, verbose=0, return_dict=True)["dice_coefficient"]
    assert dice >= 0.9
