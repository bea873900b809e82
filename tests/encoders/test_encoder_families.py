"""Every `keras.applications` family as encoder, custom encoders, and keras-hub backbones.

Each family's smallest member is built here; the larger members share its code and
differ only in their feature layer names, which `benchmarks/bench_encoders.py
--check` builds and round-trips for all 34 names (too slow for CI). One fresh
process loads several saved models at once, to pay its start-up once.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_unet_seg import UNet, UNetPlusPlus, encoders
from keras_unet_seg.encoders import ApplicationEncoder

SMALLEST = [
    "vgg16",
    "resnet50",
    "resnet50v2",
    "densenet121",
    "mobilenetv2",
    "mobilenetv3small",
    "efficientnetb0",
    "efficientnetv2b0",
    "convnexttiny",
]
LIGHT = {"decoder_filters": [4, 4, 8, 8, 8]}


def _images(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype("float32")


def test_available_lists_every_family_with_its_feature_layers():
    listed = encoders.available()
    assert len(listed) == 34
    assert set(SMALLEST) < set(listed)
    assert {name[:-1] for name in listed if name.startswith("efficientnetb")} == {"efficientnetb"}
    assert listed["vgg16"]["features"][1] == "block1_conv2"  # VGG has stride-1 features
    assert sorted(listed["convnexttiny"]["features"]) == [4, 8, 16, 32]
    assert listed["mobilenetv3small"]["features"][2] == "layers[3]"


@pytest.mark.parametrize("name", SMALLEST)
def test_smallest_member_of_each_family_gives_masks_of_the_input_size(name):
    model = UNet(encoder=name, **LIGHT)
    strides = encoders.available()[name]["features"]
    assert model.encoder.feature_strides == sorted(strides)
    features = model.encoder(_images((1, 64, 64, 3)))
    assert [f.shape[1] for f in features] == [64 // s for s in sorted(strides)]
    assert tuple(model(_images((1, 64, 64, 3))).shape) == (1, 64, 64, 1)
    assert tuple(model(_images((2, 100, 75, 3))).shape) == (2, 100, 75, 1)


def _functional_encoder():
    inputs = keras.Input((None, None, 2))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inputs)
    y = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    z = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(y)
    return keras.Model(inputs, [x, y, z], name="tiny_encoder")


def test_any_functional_model_is_an_encoder_and_its_strides_set_the_padding():
    model = UNet(encoder=_functional_encoder(), decoder_filters=[4, 4, 8])
    assert model.feature_strides == [2, 4, 8] and model.depth == 3
    assert tuple(model(_images((1, 21, 13, 2))).shape) == (1, 21, 13, 1)


def test_encoder_whose_maps_do_not_halve_is_refused():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    y = keras.layers.Conv2D(4, 3, strides=4, padding="same")(x)
    with pytest.raises(ValueError, match=r"each 2x coarser.*feature strides are \[2, 8\]\)"):
        UNet(encoder=keras.Model(inputs, [x, y]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encoder": "resnet51"}, "Received: network='resnet51'"),
        ({"encoder": "resnet50", "encoder_weights": "nope.h5"}, "Received: encoder_weights="),
        ({"encoder": 3}, "Received: encoder=3"),
        ({"encoder": "resnet50", "depth": 4}, r"the encoder's depth, 5 \(deepest stride 32\)"),
        ({"encoder_trainable": False}, "True without an `encoder`"),
        ({"decoder_filters": [4, 8]}, r"None without an `encoder` \(use `filters`\)"),
    ],
)
def test_invalid_encoder_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNet(**kwargs)


def test_weights_only_for_named_encoders(tmp_path):
    path = tmp_path / "w.weights.h5"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"None unless `encoder` names a keras\.applications"):
        UNet(encoder=_functional_encoder(), encoder_weights=str(path))


def _hub_backbone():
    keras_hub = pytest.importorskip("keras_hub")
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 16, 16],  # keras-hub wants 64 first
        stackwise_num_blocks=[1, 1, 1],
        stackwise_num_strides=[1, 2, 2],
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=(None, None, 3),
    )


def test_keras_hub_backbone_is_an_encoder_and_survives_saving(tmp_path):
    model = UNet(encoder=_hub_backbone(), decoder_filters=[4, 4, 8, 8])
    assert model.feature_strides == [4, 8, 16]  # P2 to P4: the stem pools to stride 4
    images = _images((2, 30, 20, 3))
    expected = keras.ops.convert_to_numpy(model(images))
    assert expected.shape == (2, 30, 20, 1)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded.encoder.backbone).__name__ == "ResNetBackbone"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(images)), expected, atol=1e-5)


_LOADER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import keras_unet_seg  # registers the package's classes
    for path in sys.argv[1:]:
        model = keras.models.load_model(path, safe_mode=True)
        outputs = keras.tree.flatten(model(np.load(path + ".in.npy")))  # eager: no tracing
        np.save(path + ".out.npy", np.stack([keras.ops.convert_to_numpy(y) for y in outputs]))
    """
)


def test_saved_models_load_in_a_fresh_process_with_identical_outputs(tmp_path):
    models = {
        "resnet50_frozen": (UNet(encoder="resnet50", encoder_trainable=False, **LIGHT), 3),
        "efficientnetb0_1ch": (UNet(encoder="efficientnetb0", **LIGHT), 1),
        "mobilenetv3small": (UNet(encoder="mobilenetv3small", **LIGHT), 3),
        "convnext_unetpp_ds": (
            UNetPlusPlus(encoder="convnexttiny", deep_supervision=True, **LIGHT),
            3,
        ),
        "functional": (UNet(encoder=_functional_encoder(), decoder_filters=[4, 4, 8]), 2),
    }
    expected, paths = {}, []
    for name, (model, channels) in models.items():
        images = _images((2, 36, 28, channels))
        outputs = keras.tree.flatten(model(images))
        expected[name] = np.stack([keras.ops.convert_to_numpy(y) for y in outputs])
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        np.save(path + ".in.npy", images)
        paths.append(path)
    script = tmp_path / "load.py"
    script.write_text(_LOADER)
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    proc = subprocess.run(
        [sys.executable, str(script), *paths],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name, path in zip(models, paths, strict=True):
        np.testing.assert_array_equal(np.load(path + ".out.npy"), expected[name], err_msg=name)


def test_application_encoder_config_never_names_weights(tmp_path):
    encoder = ApplicationEncoder("mobilenetv2", weights=None)
    assert encoder.get_config()["weights"] is None
    assert ApplicationEncoder.from_config(encoder.get_config()).network == "mobilenetv2"


def test_mixed_precision_reaches_the_encoder_and_the_output_stays_float32(monkeypatch):
    def refuse(policy):
        raise AssertionError(f"the global dtype policy was set to {policy}")

    # The encoder takes the model's policy without ever changing the global one.
    monkeypatch.setattr(keras.config, "set_dtype_policy", refuse)
    model = UNet(encoder="mobilenetv2", dtype="mixed_float16", **LIGHT)
    outputs = model(_images((1, 32, 32, 3)))
    assert keras.config.dtype_policy().name == "float32"
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
    assert {layer.compute_dtype for layer in model.encoder.backbone.layers[1:]} == {"float16"}
    assert all(w.dtype == "float32" for w in model.weights)
