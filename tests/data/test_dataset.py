"""SegmentationDataset: arguments, arrays, the deprecated argument, model.fit on every backend."""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from _data_files import (
    SIZE,
    epoch_ids,
    from_dir,
    id_image,
    id_mask,
    save,
    write_id_pairs,
)

from keras_unet_seg.data import SegmentationDataset, make_synthetic_volumes


def test_from_arrays_scales_and_pairs():
    images = np.stack([id_image(i) for i in range(7)])
    masks = np.stack([id_mask(i) for i in range(7)])
    dataset = SegmentationDataset.from_arrays(images, masks, batch_size=3, seed=0)
    assert sorted(epoch_ids(dataset)) == list(range(7))
    batch_images, batch_masks = next(iter(dataset))
    assert batch_images.dtype == tf.float32 and batch_masks.shape == (3, SIZE, SIZE, 1)
    sixteen = SegmentationDataset.from_arrays(
        np.full((2, 8, 8), 65535, np.uint16),
        np.ones((2, 8, 8, 1), bool),
        shuffle=False,
        intensity="scale",
    )
    images16, masks16 = next(iter(sixteen))
    assert images16.shape == (2, 8, 8, 1) and float(tf.reduce_min(images16)) == 1.0
    assert float(tf.reduce_min(masks16)) == 1.0


def test_from_arrays_errors():
    images = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "expected masks of shape (3, 8, 8) (or (3, 8, 8, 1)) for images of shape (3, 8, "
            "8, 3). Received: masks.shape=(3, 8, 9)"
        ),
    ):
        SegmentationDataset.from_arrays(images, np.zeros((3, 8, 9), np.uint8))
    masks = np.zeros((3, 8, 8), np.uint8)
    masks[2, 0, :3] = (1, 3, 255)
    with pytest.raises(ValueError, match=r"Mask 'masks\[2\]' is not binary"):
        SegmentationDataset.from_arrays(images, masks)
    with pytest.raises(
        ValueError, match=r"Mask 'masks\[2\]' holds values \(3, 255\) that are not class ids"
    ):
        SegmentationDataset.from_arrays(images, masks, num_classes=3)
    with pytest.raises(
        ValueError, match=r"Invalid value for argument `images`\. Expected an array"
    ):
        SegmentationDataset.from_arrays(np.zeros((3, 8)), masks)


def test_standardize_gives_zero_mean_unit_variance(tmp_path):
    rng = np.random.default_rng(0)
    save(tmp_path / "images" / "a.png", rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    save(tmp_path / "masks" / "a.png", id_mask(3))
    images, _ = next(iter(from_dir(tmp_path, intensity="standardize")))
    assert abs(float(tf.reduce_mean(images))) < 1e-4
    assert abs(float(tf.math.reduce_std(images)) - 1.0) < 1e-3
    with pytest.warns(DeprecationWarning, match=r"Use intensity='standardize' instead"):
        former, _ = next(iter(from_dir(tmp_path, normalization="standardize")))
    np.testing.assert_array_equal(former.numpy(), images.numpy())


def test_deprecated_normalization_names_intensity_and_the_callers_line(tmp_path):
    write_id_pairs(tmp_path, 2)
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    masks = np.zeros((2, 8, 8), np.uint8)
    for build in (
        lambda **kw: SegmentationDataset.from_directory(tmp_path, verbose=False, **kw),
        lambda **kw: SegmentationDataset.from_arrays(images, masks, **kw),
    ):
        with pytest.warns(DeprecationWarning, match=r"`normalization`.*intensity=") as record:
            former = build(normalization="scale", shuffle=False)
        assert record[0].filename == __file__
        current = build(intensity="scale", shuffle=False)
        np.testing.assert_array_equal(next(iter(former))[0], next(iter(current))[0])
    with pytest.raises(ValueError, match=r"argument `normalization`\. Expected one of 'scale'"):
        SegmentationDataset.from_arrays(images, masks, normalization="percentile")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"image_size": (32,)},
            (
                "Invalid value for argument `image_size`. Expected a tuple `(height, width)` of "
                "positive ints or None. Received: image_size=(32,)"
            ),
        ),
        (
            {"batch_size": 0},
            (
                "Invalid value for argument `batch_size`. Expected a positive int or None. "
                "Received: batch_size=0"
            ),
        ),
        (
            {"color_mode": "rgbx"},
            (
                "Invalid value for argument `color_mode`. Expected one of 'grayscale', 'rgb', "
                "'rgba', 'native'. Received: color_mode='rgbx'"
            ),
        ),
        (
            {"num_classes": 0},
            (
                "Invalid value for argument `num_classes`. Expected an int >= 1 (1 for binary "
                "masks). Received: num_classes=0"
            ),
        ),
        (
            {"num_classes": 3, "mask_threshold": 0.5},
            "Invalid value for argument `mask_threshold`. Expected None when num_classes > 1",
        ),
        (
            {"ignore_class": 255},
            (
                "Invalid value for argument `ignore_class`. Expected None when num_classes=1. "
                "Received: ignore_class=255"
            ),
        ),
        (
            {"intensity": "robust"},
            (
                "Invalid value for argument `intensity`. Expected one of ('auto', 'scale', "
                "'percentile', 'minmax', 'standardize', 'window', None) or a dict"
            ),
        ),
        ({"interpolation": "cubic"}, "Invalid value for argument `interpolation`"),
        (
            {"crop_to_aspect_ratio": True, "pad_to_aspect_ratio": True},
            "Only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be True",
        ),
        (
            {"on_error": "ignore"},
            (
                "Invalid value for argument `on_error`. Expected one of 'raise', 'skip'. "
                "Received: on_error='ignore'"
            ),
        ),
        ({"augment": "yes"}, "Invalid value for argument `augment`"),
        (
            {"seed": 1.5},
            "Invalid value for argument `seed`. Expected an int or None. Received: seed=1.5",
        ),
    ],
)
def test_argument_errors(tmp_path, kwargs, message):
    write_id_pairs(tmp_path, 2)
    with pytest.raises(ValueError, match=re.escape(message)):
        from_dir(tmp_path, **kwargs)


def test_missing_directory(tmp_path):
    with pytest.raises(
        ValueError, match=r"Invalid value for argument `directory`\. Expected an existing folder"
    ):
        from_dir(tmp_path / "nope")


def _batches(dataset):
    return [(image.numpy(), mask.numpy()) for image, mask in dataset]


def _same(a, b):
    pairs = zip(a, b, strict=False)
    return len(a) == len(b) and all(np.array_equal(x[0], y[0]) for x, y in pairs)


def test_an_instance_holds_the_options_and_makes_train_and_validation(tmp_path):
    write_id_pairs(tmp_path / "train", 6)
    write_id_pairs(tmp_path / "val", 3)

    def brighten(images, masks):
        return images + 1.0, masks

    options = dict(image_size=(SIZE, SIZE), batch_size=2, seed=0, augment=brighten, verbose=False)
    data = SegmentationDataset(tmp_path, **options)
    assert repr(data).startswith(f"SegmentationDataset({str(tmp_path)!r}, image_size=")
    train = SegmentationDataset.from_directory(tmp_path, "train", **options)
    assert _same(_batches(data.train()), _batches(train))
    in_order = {**options, "augment": None, "shuffle": False}
    val = SegmentationDataset.from_directory(tmp_path, "val", **in_order)
    assert _same(_batches(data.validation()), _batches(val))  # in order, not augmented
    with pytest.raises(TypeError, match="image_sise"):
        SegmentationDataset(tmp_path, image_sise=(8, 8))


def test_an_instance_caches_train_and_validation_in_files_of_their_own(tmp_path):
    write_id_pairs(tmp_path / "train", 4)
    write_id_pairs(tmp_path / "val", 2)
    cache = tmp_path / "cache"
    options = dict(image_size=(SIZE, SIZE), batch_size=1, verbose=False, cache=cache)
    data = SegmentationDataset(tmp_path, **options)
    assert len(_batches(data.train())) == 4  # fills the training set's cache files
    in_order = {**options, "cache": False, "shuffle": False}
    plain = SegmentationDataset.from_directory(tmp_path, "val", **in_order)
    validation = _batches(data.validation())
    assert _same(validation, _batches(plain))  # not the training set's cache
    assert {name.split(".")[0] for name in os.listdir(tmp_path) if "cache" in name} == {
        "cache_train",
        "cache_validation",
    }


def test_an_instance_splits_a_flat_folder_and_reads_volumes(tmp_path):
    write_id_pairs(tmp_path / "flat", 5)
    data = SegmentationDataset(tmp_path / "flat", validation_split=0.4, seed=0, verbose=False)
    assert len(data.train().image_paths) == 3 and len(data.validation().image_paths) == 2
    make_synthetic_volumes(tmp_path / "volumes", num_train=1, num_val=1, shape=(8, 20, 16))
    volumes = SegmentationDataset(
        tmp_path / "volumes", patch_size=(8, 16, 16), batch_size=1, augment=True, verbose=False
    )
    assert len(_batches(volumes.train())) == 1
    assert len(_batches(volumes.validation())) == 2  # the grid: 1 x 2 x 1 patches


def _tiny_model(num_classes=1):
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    activation = "sigmoid" if num_classes == 1 else "softmax"
    outputs = keras.layers.Conv2D(num_classes, 1, activation=activation)(x)
    return keras.Model(inputs, outputs)


def test_model_fit_accepts_the_dataset(tmp_path):
    write_id_pairs(tmp_path / "train", 6)
    write_id_pairs(tmp_path / "val", 2)
    train = from_dir(tmp_path, subset="train", augment=True, cache=True)
    val = from_dir(tmp_path, subset="val", shuffle=False)
    model = _tiny_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["val_loss"]))


_BACKEND_SCRIPT = """
import numpy as np, keras
from keras_unet_seg.data import SegmentationDataset
from keras_unet_seg.losses import DiceLoss
assert keras.backend.backend() == {backend!r}
ds = SegmentationDataset.from_directory(
    {root!r}, image_size=(32, 32), batch_size=2, seed=0, augment=True, num_classes=2
)
inputs = keras.Input((32, 32, 3))
outputs = keras.layers.Conv2D(2, 1, activation="softmax")(inputs)
model = keras.Model(inputs, outputs)
# DiceLoss reads the int32 class-id masks; (Keras' own sparse categorical crossentropy
# fails on 4-D inputs under torch 2.13 with "grad_input must be contiguous", data or not.)
model.compile(optimizer="adam", loss=DiceLoss())
history = model.fit(ds, epochs=1, verbose=0)
assert np.isfinite(history.history["loss"][-1])
print("OK")
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_model_fit_on_other_backends(tmp_path, backend):
    pytest.importorskip(backend)
    for index in range(4):
        save(tmp_path / "images" / f"{index}.png", id_image(index))
        save(tmp_path / "masks" / f"{index}.png", (id_mask(index) > 0).astype(np.uint8))
    script = _BACKEND_SCRIPT.format(backend=backend, root=str(tmp_path))
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]
