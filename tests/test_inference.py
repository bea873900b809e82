"""Tests for `keras_unet_seg.inference.predict_tiled`."""

import itertools
import re

import keras
import numpy as np
import pytest

from keras_unet_seg import UNet
from keras_unet_seg.inference import predict_tiled
from keras_unet_seg.inference._tiles import _tile_starts, _weight_profiles


class _RecordingModel:
    """A fake model that returns its input (or some channels) and records batch shapes."""

    def __init__(self, channels=None):
        self.channels = channels
        self.shapes = []

    def predict_on_batch(self, x):
        self.shapes.append(x.shape)
        x = np.asarray(x)
        return x if self.channels is None else x[..., : self.channels]


def _conv_model(kernel_size=3, channels=3, num_classes=2, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, channels))
    x = keras.layers.Conv2D(6, kernel_size, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Conv2D(num_classes, 1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def _image(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype="float32")


# --- tiling and shapes -------------------------------------------------------


@pytest.mark.parametrize(
    "size, tile",
    [
        ((50, 40), 64),  # smaller than the tile: padded, then cropped
        ((150, 100), 64),  # larger
        ((97, 131), 32),  # odd sizes
        ((64, 64), 64),  # exactly one tile
        ((65, 63), 64),  # one pixel over / under
        ((200, 30), (48, 32)),  # rectangular tiles, one side smaller
    ],
)
def test_identity_model_reconstructs_image(size, tile):
    # Normalised blending of an identity model must give the image back exactly:
    # every pixel covered, weights normalised, padding cropped.
    image = _image((*size, 3))
    for blend in ("gaussian", "constant"):
        out = predict_tiled(_RecordingModel(), image, tile, blend=blend)
        assert out.shape == image.shape
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, image, rtol=1e-6, atol=1e-6)


def test_batch_equals_single_images():
    model = _conv_model()
    images = _image((2, 70, 90, 3))
    batch = predict_tiled(model, images, 32, batch_size=3)
    assert batch.shape == (2, 70, 90, 2)
    for i in range(2):
        single = predict_tiled(model, images[i], 32, batch_size=3)
        assert single.shape == (70, 90, 2)
        np.testing.assert_allclose(batch[i], single, atol=1e-6)


@pytest.mark.parametrize("size", [(20, 30), (127, 61)])
def test_small_and_odd_images_with_keras_model(size):
    out = predict_tiled(_conv_model(), _image((*size, 3)), 64)
    assert out.shape == (*size, 2)
    assert out.dtype == np.float32
    assert np.all((out >= 0) & (out <= 1))


@pytest.mark.parametrize(
    "length, tile, overlap", [(1000, 128, 0.25), (700, 128, 0.5), (129, 128, 0.0)]
)
def test_tile_starts_cover_and_align_to_border(length, tile, overlap):
    starts = _tile_starts(length, tile, overlap)
    assert starts[0] == 0
    assert starts[-1] == length - tile  # the last tile ends at the border
    assert all(b - a <= tile * (1 - overlap) for a, b in itertools.pairwise(starts))
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + tile] = True
    assert covered.all()


def test_model_sees_fixed_batches_of_at_most_batch_size():
    model = _RecordingModel()
    predict_tiled(model, _image((300, 250, 3)), 64, overlap=0.25, batch_size=4)
    # stride <= 48: 6 x 5 = 30 tiles, 8 calls, the last one filled up to the batch size.
    assert len(model.shapes) == 8
    assert set(model.shapes) == {(4, 64, 64, 3)}


def test_weight_map_is_gaussian_centred_and_symmetric():
    weights = np.outer(*_weight_profiles((128, 96), "gaussian", 0.125))
    assert weights.shape == (128, 96)
    assert weights.max() <= 1.0 and weights.min() > 0
    np.testing.assert_allclose(weights, weights[::-1, ::-1])
    # sigma = 0.125 * size around the centre (size - 1) / 2, normalised to a maximum
    # of 1 (at the four centre pixels): about exp(-8) at the edge.
    expected = np.exp(-0.5 * ((63.5 / 16) ** 2 - (0.5 / 16) ** 2))
    np.testing.assert_allclose(weights[0, 47], expected, rtol=1e-5)


# --- no seams ----------------------------------------------------------------


def test_constant_image_gives_constant_output():
    # A pointwise (1x1) model is translation equivariant, so any seam or border
    # artefact of the blending would show on a constant image.
    model = _conv_model(kernel_size=1)
    image = np.full((173, 141, 3), 0.3, dtype="float32")
    out = predict_tiled(model, image, 48, overlap=0.25)
    np.testing.assert_allclose(out, np.broadcast_to(out[0, 0], out.shape), atol=1e-6)


def _train_small_conv_model():
    """A 3-layer conv net (receptive field 5x5) trained briefly on 128x128 scenes."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    images = rng.normal(0.3, 0.05, (16, 128, 128, 3)).astype("float32")
    masks = np.zeros((16, 128, 128, 1), "float32")
    for i in range(16):
        for _ in range(4):
            cy, cx = rng.uniform(0, 128, 2)
            r = rng.uniform(5, 20)
            masks[i, (yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
    images += 0.4 * masks
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    model.fit(images, masks, epochs=3, batch_size=8, verbose=0)
    return model


def test_tiled_agrees_with_whole_image_prediction_on_1000x700():
    model = _train_small_conv_model()
    image = _image((1000, 700, 3), seed=1) * 0.5 + 0.2
    whole = keras.ops.convert_to_numpy(model.predict_on_batch(image[None]))[0]
    tiled = predict_tiled(model, image, 128)
    assert tiled.shape == (1000, 700, 1)
    # Only pixels within 2 px (the receptive radius) of an interior tile edge see
    # the tile's zero padding; their Gaussian weight there is exp(-8) of the
    # centre's, so the blend is within ~4e-4 of the whole-image prediction.
    # Tiles align to the image border, so the image border agrees as well.
    np.testing.assert_allclose(tiled, whole, atol=2e-3)
    # Plain averaging keeps the tile-edge errors: the seams Gaussian blending removes.
    averaged = predict_tiled(model, image, 128, blend="constant")
    assert np.abs(averaged - whole).max() > 5 * np.abs(tiled - whole).max()


def test_unet_any_size():
    from keras_unet_seg import UNet

    model = UNet(num_classes=1, base_filters=4, depth=2)
    out = predict_tiled(model, _image((70, 45, 3)), 32, batch_size=2)
    assert out.shape == (70, 45, 1)
    assert out.dtype == np.float32
    assert np.all((out >= 0) & (out <= 1))


# --- test-time augmentation ----------------------------------------------------


def _flip_equivariant_model():
    # Kernels symmetric under both flips and zero "same" padding commute with flips.
    model = _conv_model(kernel_size=3, seed=1)
    conv = model.layers[1]
    kernel, bias = conv.get_weights()
    kernel = (kernel + kernel[::-1] + kernel[:, ::-1] + kernel[::-1, ::-1]) / 4
    conv.set_weights([kernel, bias])
    return model


def test_tta_with_flip_equivariant_model_equals_no_tta():
    model = _flip_equivariant_model()
    image = _image((90, 70, 3))
    plain = predict_tiled(model, image, 32)
    augmented = predict_tiled(model, image, 32, tta=True)
    np.testing.assert_allclose(augmented, plain, atol=1e-5)


def test_tta_averages_unflipped_predictions():
    model = _conv_model(seed=2)
    image = _image((32, 32, 3))  # one tile: no blending involved

    def predict(x):
        return keras.ops.convert_to_numpy(model.predict_on_batch(x[None]))[0]

    expected = (
        predict(image)
        + predict(image[:, ::-1])[:, ::-1]
        + predict(image[::-1])[::-1]
        + predict(image[::-1, ::-1])[::-1, ::-1]
    ) / 4
    np.testing.assert_allclose(predict_tiled(model, image, 32, tta=True), expected, atol=1e-5)
    assert not np.allclose(predict(image), expected, atol=1e-3)  # the flips did matter


def test_tta_subset_runs_one_pass_per_flip():
    model = _RecordingModel()
    image = _image((32, 32, 3))
    out = predict_tiled(model, image, 32, tta=("horizontal",))
    assert len(model.shapes) == 2
    np.testing.assert_allclose(out, image, atol=1e-6)


# --- inputs ------------------------------------------------------------------


def test_uint8_image_with_preprocess_equals_normalised_float_image():
    model = _conv_model()
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype="uint8")
    from_uint8 = predict_tiled(model, image, 32, preprocess=lambda x: x / 255.0)
    from_float = predict_tiled(model, image.astype("float32") / 255.0, 32)
    np.testing.assert_allclose(from_uint8, from_float, atol=1e-6)


def test_backend_tensor_input_and_plain_callable_model():
    model = _conv_model()
    image = _image((40, 50, 3))
    expected = predict_tiled(model, image, 32)
    from_tensor = predict_tiled(model, keras.ops.convert_to_tensor(image), 32)
    assert isinstance(from_tensor, np.ndarray)
    np.testing.assert_allclose(from_tensor, expected, atol=1e-6)
    from_callable = predict_tiled(lambda x: model(x, training=False), image, 32)
    np.testing.assert_allclose(from_callable, expected, atol=1e-5)


def test_input_is_not_modified():
    image = _image((50, 40, 3))
    copy = image.copy()
    predict_tiled(_RecordingModel(), image, 64, padding_mode="reflect")
    np.testing.assert_array_equal(image, copy)


# --- errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tile_size": 0}, "Invalid value for argument `tile_size`. Expected a positive integer"),
        ({"tile_size": (32,)}, "Received: tile_size=(32,)"),
        ({"tile_size": 32.0}, "Received: tile_size=32.0"),
        (
            {"overlap": 1.0},
            "Invalid value for argument `overlap`. Expected a float in [0, 1). "
            "Received: overlap=1.0",
        ),
        ({"overlap": -0.1}, "Received: overlap=-0.1"),
        ({"batch_size": 0}, "Invalid value for argument `batch_size`"),
        ({"blend": "linear"}, "Expected one of 'gaussian', 'constant'. Received: blend='linear'"),
        ({"sigma_scale": 0}, "Invalid value for argument `sigma_scale`"),
        ({"tta": ("diagonal",)}, "Invalid value for argument `tta`"),
        ({"padding_mode": "wrap"}, "Invalid value for argument `padding_mode`"),
        ({"preprocess": 255}, "Invalid value for argument `preprocess`"),
    ],
)
def test_invalid_arguments(kwargs, message):
    arguments = {"tile_size": 32, **kwargs}
    with pytest.raises(ValueError) as info:
        predict_tiled(_RecordingModel(), _image((40, 40, 3)), **arguments)
    assert message in str(info.value)


@pytest.mark.parametrize("shape", [(40, 40), (1, 1, 40, 40, 3), (0, 40, 3)])
def test_invalid_image_rank(shape):
    with pytest.raises(
        ValueError, match=r"Invalid value for argument `image`.*Received: image\.shape="
    ):
        predict_tiled(_RecordingModel(), np.zeros(shape, "float32"), 32)


def test_integer_image_without_preprocess_is_refused():
    with pytest.raises(ValueError) as info:
        predict_tiled(_RecordingModel(), np.zeros((40, 40, 3), "uint8"), 32)
    assert "preprocess=lambda x: x / 255.0" in str(info.value)
    assert "Received: image.dtype=uint8 and preprocess=None" in str(info.value)


def test_model_changing_tile_size_is_refused():
    class Cropping:
        def predict_on_batch(self, x):
            return x[:, 2:-2, 2:-2, :1]

    with pytest.raises(ValueError) as info:
        predict_tiled(Cropping(), _image((40, 40, 3)), 32, batch_size=2)
    assert "Expected the model to keep the tiles' batch size, height and width" in str(info.value)
    assert "Received: output.shape=(2, 28, 28, 1)" in str(info.value)


# --- faithful to the model, bounded work, clear errors -----------------------


@pytest.mark.parametrize("size", [(64, 64), (45, 70)])
def test_image_that_fits_in_one_tile_is_predicted_as_the_model_predicts_it(size):
    """No padding to the tile: padding changes a UNet's output near the border."""
    keras.utils.set_random_seed(0)
    model = UNet(base_filters=8, depth=2)
    model.build((None, None, None, 3))
    image = _image((*size, 3))
    expected = keras.ops.convert_to_numpy(model.predict_on_batch(image[None]))[0]
    tiled = predict_tiled(model, image, tile_size=256)
    np.testing.assert_allclose(tiled, expected, atol=1e-6)
    recording = _RecordingModel()
    predict_tiled(recording, image, 256)
    assert recording.shapes == [(1, *size, 3)]


def test_a_fixed_size_model_gets_the_image_padded_to_its_size():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
    assert predict_tiled(model, _image((20, 24, 3)), 32).shape == (20, 24, 1)


def test_an_image_with_other_channels_than_the_model_is_refused():
    model = _conv_model(channels=3)
    message = (
        "Invalid value for argument `image`. Expected the model's 3 input channels "
        "(convert a grayscale image to RGB, or read it in the model's color mode). "
        "Received: image.shape=(40, 30, 1)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        predict_tiled(model, _image((40, 30, 1)), 32)


def test_a_list_of_images_of_different_sizes_is_refused_and_of_one_size_taken():
    images = [_image((40, 30, 3)), _image((20, 30, 3))]
    message = (
        "Expected one image, a batch, or a list of images of one size (call predict_tiled on "
        "each image of another size). Received: a list of 2 images of shapes "
        "[(40, 30, 3), (20, 30, 3)]"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        predict_tiled(_RecordingModel(), images, 32)
    same = [_image((20, 30, 3), seed) for seed in range(2)]
    np.testing.assert_allclose(
        predict_tiled(_RecordingModel(), same, 32), np.stack(same), atol=1e-6
    )


def test_an_overlap_that_multiplies_the_tiles_is_refused_before_any_prediction():
    model = _RecordingModel()
    with pytest.raises(ValueError) as info:
        predict_tiled(model, np.zeros((300, 5000, 3), "float32"), 256, overlap=0.99)
    assert str(info.value) == (
        "Invalid value for argument `overlap`. Expected an overlap that needs at most 100 "
        "times the tiles of no overlap (40 tiles of 256x256 for a 300x5000 image), such as "
        "0.25 or 0.5. Received: overlap=0.99, which needs 54579 tiles"
    )
    assert model.shapes == []
    predict_tiled(model, np.zeros((300, 1000, 3), "float32"), 256, overlap=0.75)  # 16x: runs


def test_long_predictions_show_a_progress_bar(capsys):
    image = _image((96, 96, 3))
    predict_tiled(_RecordingModel(), image, 32, overlap=0, batch_size=1)  # 9 calls
    assert capsys.readouterr().out == ""
    predict_tiled(_RecordingModel(), image, 32, overlap=0, batch_size=1, verbose=1)
    assert "9/9" in capsys.readouterr().out
    predict_tiled(_RecordingModel(), _image((352, 320, 3)), 32, overlap=0, batch_size=1)
    assert "110/110" in capsys.readouterr().out  # "auto": more than 100 calls


def test_a_tile_below_the_models_two_to_the_depth_is_refused():
    model = UNet(base_filters=4, depth=2)
    image = np.zeros((16, 16, 3), "float32")
    with pytest.raises(ValueError) as error:
        predict_tiled(model, image, tile_size=(8, 3))
    assert str(error.value) == (
        "Invalid value for argument `tile_size`. Expected at least the model's minimum tile "
        "of 4x4 (2**depth): a smaller tile is padded up inside the model, which changes the "
        "masks. Received: tile_size=(8, 3)"
    )
    assert predict_tiled(model, image, tile_size=4).shape == (16, 16, 1)


# --- volumes: the same tiling over three spatial axes ------------------------


def _pointwise_volume_model(channels=1, num_classes=2):
    """A Conv3D model of 1x1x1 kernels: each voxel's output sees that voxel only."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, None, channels))
    x = keras.layers.Conv3D(4, 1, activation="relu")(inputs)
    outputs = keras.layers.Conv3D(num_classes, 1, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_sliding_window_over_a_volume_equals_the_whole_volume_prediction():
    model = _pointwise_volume_model()
    volume = _image((37, 50, 23, 1))
    whole = keras.ops.convert_to_numpy(model.predict_on_batch(volume[None]))[0]
    tiled = predict_tiled(model, volume, tile_size=16, batch_size=3)
    assert tiled.shape == (37, 50, 23, 2)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    both = predict_tiled(model, np.stack([volume, volume[::-1]]), tile_size=(8, 16, 16))
    np.testing.assert_allclose(both[1], whole[::-1], atol=1e-5)


def test_a_volume_goes_through_the_model_a_batch_of_patches_at_a_time():
    recording = _RecordingModel()
    volume = _image((37, 50, 23, 2))
    out = predict_tiled(recording, volume, tile_size=(16, 16, 16), batch_size=4)
    np.testing.assert_allclose(out, volume, atol=1e-6)  # identity: every voxel covered once
    assert set(recording.shapes) == {(4, 16, 16, 16, 2)}
    starts = [_tile_starts(n, 16, 0.25) for n in (37, 50, 23)]
    assert len(recording.shapes) == -(-np.prod([len(s) for s in starts]) // 4)


def test_volume_weight_map_is_the_gaussian_of_each_axis():
    # sigma = 0.125 x the patch's side along each axis, centred, max 1
    for side, profile in zip((16, 8), _weight_profiles((16, 8), "gaussian", 0.125), strict=True):
        gaussian = np.exp(-0.5 * ((np.arange(side) - (side - 1) / 2) / (0.125 * side)) ** 2)
        np.testing.assert_allclose(profile, gaussian / gaussian.max(), rtol=1e-6)
    assert [p.shape for p in _weight_profiles((16, 12, 8), "gaussian", 0.125)] == [
        (16,),
        (12,),
        (8,),
    ]


def test_volume_tta_flips_in_plane_not_along_depth():
    class DepthRamp:  # adds its depth index to each voxel: not symmetric along depth
        def predict_on_batch(self, x):
            return x + np.arange(x.shape[1], dtype="float32")[None, :, None, None, None]

    volume = _image((8, 10, 12, 1))
    expected = volume + np.arange(8, dtype="float32")[:, None, None, None]
    for tta in (False, True):
        out = predict_tiled(DepthRamp(), volume, (8, 16, 16), tta=tta)
        np.testing.assert_allclose(out, expected, atol=1e-5)


def test_a_volume_is_refused_a_scale_and_a_two_axis_tile():
    model = _pointwise_volume_model()
    volume = _image((20, 18, 17, 1))
    with pytest.raises(ValueError, match=r"Invalid value for argument `scale`.*own size"):
        predict_tiled(model, volume, 16, scale=0.5)
    with pytest.raises(ValueError, match=r"Invalid value for argument `tile_size`"):
        predict_tiled(model, volume, (16, 16))
    with pytest.raises(ValueError, match=r"Expected one volume of shape \(depth, height, width"):
        predict_tiled(model, volume[0], 16)
