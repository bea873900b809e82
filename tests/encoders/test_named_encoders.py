"""Named encoders in depth: ResNet50 and EfficientNetB0, on every backend.

`tests/test_backends.py` runs this file again under JAX and PyTorch.
"""

import json
import zipfile

import keras
import numpy as np
import pytest

from keras_unet_seg import UNet
from keras_unet_seg.encoders import ImagePreprocessing

NAMES = {"resnet50": "ResNet50", "efficientnetb0": "EfficientNetB0"}
# JAX compiles each operation anew for every shape it meets, so the reruns under the
# other backends keep to small images, and every test here to the same few shapes.
SIZE = 256 if keras.backend.backend() == "tensorflow" else 64
# A light decoder keeps the tests about the encoder.
LIGHT = {"decoder_filters": [4, 4, 8, 8, 8]}


def _images(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype("float32")


def _first_kernel(model):
    convs = [
        layer
        for layer in model.encoder.backbone.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.kernel.shape[2] in (1, 3, 4)
    ]
    return keras.ops.convert_to_numpy(convs[0].kernel)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_builds_at_256_and_at_an_odd_size(name):
    model = UNet(encoder=name, **LIGHT)
    assert model.depth == 5 and model.encoder.feature_strides == [2, 4, 8, 16, 32]
    assert tuple(model(_images((1, SIZE, SIZE, 3))).shape) == (1, SIZE, SIZE, 1)
    assert tuple(model(_images((1, 100, 75, 3))).shape) == (1, 100, 75, 1)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_frozen_encoder_trains_only_the_decoder_and_keeps_its_statistics(name):
    model = UNet(encoder=name, encoder_trainable=False, **LIGHT)
    images = _images((2, 64, 64, 3))
    masks = (images[..., :1] > 0.5).astype("float32")
    model.build((None, 64, 64, 3))
    assert model.encoder.trainable_weights == []
    assert len(model.encoder.non_trainable_weights) > 100
    frozen = [keras.ops.convert_to_numpy(w) for w in model.encoder.weights]
    decoder = [keras.ops.convert_to_numpy(w) for w in model.decoder.trainable_weights]
    # Eager steps: tracing these networks costs more than the two steps.
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", run_eagerly=True
    )
    model.fit(images, masks, epochs=1, batch_size=1, verbose=0)
    # Weights and batch normalization statistics of the encoder did not move.
    for before, weight in zip(frozen, model.encoder.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), before)
    changed = [
        not np.array_equal(keras.ops.convert_to_numpy(w), b)
        for w, b in zip(model.decoder.trainable_weights, decoder, strict=True)
    ]
    assert all(changed)

    model.unfreeze_encoder()
    assert model.encoder_trainable and model.get_config()["encoder_trainable"] is True
    assert len(model.encoder.trainable_weights) > 50
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy", run_eagerly=True
    )
    model.fit(images, masks, epochs=1, batch_size=1, verbose=0)
    moved = [
        not np.array_equal(keras.ops.convert_to_numpy(w), b)
        for w, b in zip(model.encoder.weights, frozen, strict=True)
    ]
    assert sum(moved) > len(moved) // 2


# The adaptation is NumPy on the kernels, the file HDF5: nothing a backend changes.
@pytest.mark.one_backend
@pytest.mark.parametrize("name", sorted(NAMES))
def test_weights_by_path_and_their_adaptation_to_1_and_4_channels(tmp_path, name):
    application = getattr(keras.applications, NAMES[name])(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    path = str(tmp_path / "encoder.weights.h5")
    application.save_weights(path)
    kernel = next(
        keras.ops.convert_to_numpy(layer.kernel)
        for layer in application.layers
        if isinstance(layer, keras.layers.Conv2D)
    )

    loaded = {}
    for channels in (3, 1, 4):
        model = UNet(encoder=name, encoder_weights=path, **LIGHT)
        assert tuple(model(_images((1, 64, 64, channels))).shape) == (1, 64, 64, 1)
        loaded[channels] = _first_kernel(model)
    np.testing.assert_array_equal(loaded[3], kernel)
    np.testing.assert_allclose(loaded[1], kernel.sum(axis=2, keepdims=True), rtol=1e-6)
    repeated = kernel[:, :, [0, 1, 2, 0], :] * 3 / 4
    np.testing.assert_allclose(loaded[4], repeated, rtol=1e-6)
    # A config names no weights, so loading a saved model downloads nothing.
    assert model.get_config()["encoder_weights"] is None


# As for the models' variants (tests/models/test_unet.py): the .keras format holds NumPy
# arrays whatever the backend, and a U-Net saves and loads on every backend there.
@pytest.mark.one_backend
@pytest.mark.parametrize("name", sorted(NAMES))
def test_saves_and_loads_with_identical_outputs(tmp_path, name):
    model = UNet(encoder=name, encoder_trainable=False, **LIGHT)
    images = _images((1, 64, 64, 3))
    expected = keras.ops.convert_to_numpy(model(images))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    # The nested encoder's build shape comes back as a list: compare as JSON.
    assert json.dumps(loaded.get_config()) == json.dumps(model.get_config())
    assert loaded.encoder.trainable is False
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(images)), expected, atol=1e-5)


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf"])
def test_preprocessing_matches_keras_applications(mode):
    images = _images((2, 5, 6, 3))
    expected = keras.applications.imagenet_utils.preprocess_input(
        images * 255.0, data_format="channels_last", mode=mode
    )
    actual = keras.ops.convert_to_numpy(ImagePreprocessing(mode)(images))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4)


def test_preprocessing_of_other_channel_counts_uses_the_average_statistics():
    actual = keras.ops.convert_to_numpy(ImagePreprocessing("torch")(np.ones((1, 1, 1, 2))))
    expected = (1 - np.mean([0.485, 0.456, 0.406])) / np.mean([0.229, 0.224, 0.225])
    np.testing.assert_allclose(actual, np.full((1, 1, 1, 2), expected), rtol=1e-6)


def _with_config(source, target, edit):
    """Copies the `.keras` archive `source` to `target` with its config.json edited."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            new.writestr(item, data)


@pytest.mark.one_backend
@pytest.mark.parametrize("top, nested", [("imagenet", "path"), ("path", "imagenet")])
def test_loading_never_downloads_or_reads_the_weights_a_config_names(
    tmp_path, monkeypatch, top, nested
):
    """A `.keras` whose config names imagenet or a file loads its own weights, nothing else."""
    import urllib.request

    from keras.src.utils import file_utils

    model = UNet(encoder="mobilenetv3small", decoder_filters=[4, 4, 8, 8, 8])
    images = _images((1, 32, 32, 3))
    expected = keras.ops.convert_to_numpy(model(images))
    model.save(tmp_path / "saved.keras")
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not weights")
    sources = {"imagenet": "imagenet", "path": str(junk)}

    def edit(config):
        config["config"]["encoder_weights"] = sources[top]
        config["config"]["encoder"]["config"]["weights"] = sources[nested]

    _with_config(tmp_path / "saved.keras", tmp_path / "edited.keras", edit)

    def refuse(*args, **kwargs):
        raise AssertionError(f"loading tried the network: {args}")

    monkeypatch.setattr(file_utils, "get_file", refuse)
    monkeypatch.setattr(keras.utils, "get_file", refuse)
    monkeypatch.setattr(file_utils, "urlretrieve", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)
    loaded = keras.models.load_model(tmp_path / "edited.keras", safe_mode=True)
    assert loaded.get_config()["encoder_weights"] is None
    assert loaded.encoder.weights_source is None
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(images)), expected, atol=1e-5)
