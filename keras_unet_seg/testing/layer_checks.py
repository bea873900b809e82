"""`check_layer`: the checks every keras-unet-seg layer passes, for users' layers too."""

import json
import os
import tempfile

import keras
import numpy as np

_MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def check_layer(
    layer_cls,
    init_kwargs,
    input_shape,
    expected_output_shape=None,
    *,
    run_training=True,
    run_mixed_precision=True,
    run_saving=True,
    seed=0,
):
    """Runs the standard checks on a layer class, raising `AssertionError` on failure.

    The checks: every constructor argument is in `get_config`; config and
    JSON round trips give the same config; `build` creates the weights and
    marks the layer built; a symbolic call and an eager call give the shape
    `compute_output_shape` announces, with finite values; one `fit` step of
    a model around the layer runs and changes its weights; under
    `mixed_float16` and `mixed_bfloat16` the weights stay float32 and the
    outputs are finite; a model holding the layer survives
    `model.save("m.keras")` and `keras.models.load_model` (with
    `safe_mode=True`) with identical outputs.

    Use it in a test of your own block before passing the block to `UNet`.

    Args:
        layer_cls: the layer class (registered with
            `keras.saving.register_keras_serializable`).
        init_kwargs: dict of constructor arguments.
        input_shape: the input shape with its batch size, such as
            `(2, 32, 32, 3)` (`(2, 8, 16, 16, 1)` for a block on volumes), or a
            list of shapes for a layer called on a list.
        expected_output_shape: shape (or tuple of shapes for several
            outputs) the call must return. Defaults to `None`: only
            agreement with `compute_output_shape` is checked.
        run_training: bool, whether to run the `fit` step. Defaults to `True`.
        run_mixed_precision: bool, whether to run the mixed precision
            checks. Defaults to `True`.
        run_saving: bool, whether to run the `.keras` round trip. Defaults to
            `True`.
        seed: int, seed of the random inputs. Defaults to `0`.

    Raises:
        AssertionError: naming the check that failed.

    Example:

    >>> from keras_unet_seg import ConvBlock
    >>> check_layer(ConvBlock, {"filters": 4}, (2, 8, 8, 3), (2, 8, 8, 4),
    ...             run_training=False, run_mixed_precision=False, run_saving=False)
    """
    rng = np.random.default_rng(seed)
    inputs = _random_inputs(input_shape, rng)

    layer = layer_cls(**init_kwargs)
    _check_config(layer_cls, layer, init_kwargs)

    _check_shapes(layer, input_shape, inputs, expected_output_shape)
    if run_training:
        _check_fit_step(layer_cls, init_kwargs, input_shape, inputs, rng)
    if run_mixed_precision:
        for policy in _MIXED_POLICIES:
            _check_mixed_precision(layer_cls, init_kwargs, input_shape, inputs, policy)
    if run_saving:
        _check_saving(layer_cls, init_kwargs, input_shape, inputs)


def _check_shapes(layer, input_shape, inputs, expected_output_shape):
    """`build`, `compute_output_shape`, a symbolic and an eager call agree."""
    layer.build(_shapes(input_shape))
    _expect(layer.built, f"{type(layer).__name__}.build() did not mark the layer built")
    _expect(layer.weights or not layer.trainable, "build() created no weights")
    announced = _as_list_of_shapes(layer.compute_output_shape(_shapes(input_shape)))
    if expected_output_shape is not None:
        expected = _as_list_of_shapes(expected_output_shape)
        _expect(
            announced == expected, f"compute_output_shape gave {announced}, expected {expected}"
        )

    symbolic = keras.tree.flatten(layer(_symbolic_inputs(input_shape)))
    _expect(
        [tuple(s.shape) for s in symbolic] == announced,
        f"symbolic call gave {[tuple(s.shape) for s in symbolic]}, expected {announced}",
    )
    eager = [keras.ops.convert_to_numpy(y) for y in keras.tree.flatten(layer(inputs))]
    _expect([y.shape for y in eager] == announced, f"eager call gave {[y.shape for y in eager]}")
    _expect(all(np.isfinite(y).all() for y in eager), "eager call gave NaN or Inf")


def _expect(condition, message):
    if not condition:
        raise AssertionError(message)


def _is_multi(input_shape):
    return isinstance(input_shape, list) and all(isinstance(s, (list, tuple)) for s in input_shape)


def _shapes(input_shape):
    return [tuple(s) for s in input_shape] if _is_multi(input_shape) else tuple(input_shape)


def _as_list_of_shapes(shapes):
    if isinstance(shapes, (list, tuple)) and shapes and isinstance(shapes[0], (list, tuple)):
        return [tuple(s) for s in shapes]
    return [tuple(shapes)]


def _random_inputs(input_shape, rng):
    if _is_multi(input_shape):
        return [rng.standard_normal(s).astype("float32") for s in input_shape]
    return rng.standard_normal(input_shape).astype("float32")


def _symbolic_inputs(input_shape):
    if _is_multi(input_shape):
        return [keras.KerasTensor(s) for s in input_shape]
    return keras.KerasTensor(input_shape)


def _keras_inputs(input_shape):
    if _is_multi(input_shape):
        return [keras.Input(batch_shape=tuple(s)) for s in input_shape]
    return keras.Input(batch_shape=tuple(input_shape))


def _check_config(layer_cls, layer, init_kwargs):
    config = layer.get_config()
    missing = sorted(set(init_kwargs) - set(config))
    _expect(not missing, f"get_config() lacks constructor arguments {missing}")
    revived = layer_cls.from_config(config)
    _expect(revived.get_config() == config, "from_config(get_config()) changed the config")
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    from_json = keras.saving.deserialize_keras_object(serialized)
    _expect(type(from_json) is layer_cls, f"JSON round trip gave a {type(from_json).__name__}")
    _expect(from_json.get_config() == config, "JSON round trip changed the config")


def _wrap(layer, input_shape):
    inputs = _keras_inputs(input_shape)
    return keras.Model(inputs, keras.tree.flatten(layer(inputs)))


def _check_fit_step(layer_cls, init_kwargs, input_shape, inputs, rng):
    model = _wrap(layer_cls(**init_kwargs), input_shape)
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    targets = [rng.standard_normal(tuple(o.shape)).astype("float32") for o in model.outputs]
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=["mse"] * len(targets))
    model.optimizer.build(model.trainable_variables)  # else TensorFlow traces `fit` twice
    history = model.fit(inputs, targets, batch_size=len(targets[0]), epochs=1, verbose=0)
    _expect(np.isfinite(history.history["loss"][0]), "fit step gave a non-finite loss")
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    changed = any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    _expect(changed or not before, "fit step changed no trainable weight")


def _check_mixed_precision(layer_cls, init_kwargs, input_shape, inputs, policy):
    layer = layer_cls(**{**init_kwargs, "dtype": policy})
    outputs = keras.tree.flatten(layer(inputs))
    wrong = [w.path for w in layer.weights if w.dtype != "float32"]
    _expect(not wrong, f"under {policy}, weights {wrong} are not float32")
    values = [keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")) for y in outputs]
    _expect(all(np.isfinite(v).all() for v in values), f"under {policy}, NaN or Inf in outputs")


def _check_saving(layer_cls, init_kwargs, input_shape, inputs):
    model = _wrap(layer_cls(**init_kwargs), input_shape)
    expected = [keras.ops.convert_to_numpy(y) for y in keras.tree.flatten(model(inputs))]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
    actual = [keras.ops.convert_to_numpy(y) for y in keras.tree.flatten(loaded(inputs))]
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6, err_msg="outputs changed on reload")
