"""Tests for `keras_unet_seg.export.exporting` and `.runtimes`: ONNX, LiteRT, SavedModel
(and OpenVINO).

Exports are run in their own runtimes at 64x64 and 100x75 (not a multiple of
2**depth), binary and multi-class; the ONNX Runtime program of
docs/guide/deploying.md runs in tests/test_one_answer.py. Models: base
filters 4, depth 2 or 3, with random batch statistics so that folding matters.
"""

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from _export_test_models import small_unet as _unet
from PIL import Image

from keras_unet_seg import InferenceSpec
from keras_unet_seg.cli import main
from keras_unet_seg.export import export_model, load_exported

# --------------------------------------------------------------------------- export

_FORMATS = {"onnx": "model.onnx", "litert": "model.tflite", "saved_model": "saved_model"}


@pytest.mark.parametrize(
    ("format", "num_classes"),
    # ONNX binary runs in the command's test, LiteRT multi-class in the fixed-size one.
    [("onnx", 3), ("litert", 1), ("saved_model", 1)],
)
def test_export_round_trip(tmp_path, format, num_classes):
    model = _unet(num_classes=num_classes, depth=3)
    path = str(tmp_path / _FORMATS[format])
    metadata = export_model(model, path, format, spec=InferenceSpec(threshold=0.4), verbose=False)

    assert metadata["parity"]["image_sizes"] == [[64, 64], [100, 75]]
    assert metadata["parity"]["max_abs_difference"] < 1e-5
    assert metadata["parity"]["mask_pixels_differing"] == 0
    assert json.loads(Path(path + ".json").read_text()) == json.loads(json.dumps(metadata))
    assert metadata["input"]["shape"] == [None, None, None, 3]
    assert metadata["output"]["activation"] == ("sigmoid" if num_classes == 1 else "softmax")
    assert len(metadata["classes"]) == max(2, num_classes)

    run = load_exported(path, format)
    for height, width in [(64, 64), (100, 75)]:  # 100x75: not a multiple of 2**3
        x = np.random.default_rng(height).random((2, height, width, 3), dtype="float32")
        expected = np.asarray(model(x, training=False))
        received = run(x)
        assert received.shape == (2, height, width, num_classes)
        np.testing.assert_allclose(received, expected, atol=1e-5, rtol=0)
        if num_classes == 1:
            np.testing.assert_array_equal(received >= 0.4, expected >= 0.4)
        else:
            np.testing.assert_array_equal(received.argmax(-1), expected.argmax(-1))


def test_export_openvino(tmp_path):
    pytest.importorskip("openvino", reason="openvino is not in the test extra")
    model = _unet()
    path = str(tmp_path / "model.xml")
    metadata = export_model(model, path, "openvino", verbose=False)
    assert metadata["parity"]["max_abs_difference"] < 1e-5
    x = np.random.default_rng(5).random((1, 100, 75, 3), dtype="float32")
    np.testing.assert_allclose(load_exported(path, "openvino")(x), model(x), atol=1e-5, rtol=0)


def test_export_fixed_size_and_float16(tmp_path):
    model = _unet(num_classes=2)
    path = str(tmp_path / "model.tflite")
    metadata = export_model(
        model, path, "litert", image_size=(100, 75), precision="float16", verbose=False
    )
    assert metadata["input"]["shape"] == [None, 100, 75, 3]
    assert metadata["parity"]["image_sizes"] == [[100, 75]]
    assert 0 < metadata["parity"]["max_abs_difference"] < 1e-2
    # Check images of another size are tiled to the fixed size, as predict tiles them.
    other = np.random.default_rng(1).random((1, 64, 130, 3), dtype="float32")
    again = export_model(
        model,
        path,
        "litert",
        image_size=(100, 75),
        precision="float16",
        check_images=other,
        overwrite=True,
        verbose=False,
    )
    assert again["parity"]["image_sizes"] == [[64, 130]]
    with pytest.raises(ValueError, match=re.escape("Expected float arrays (n, height, width, 3)")):
        export_model(model, path, "litert", image_size=(100, 75), check_images=np.zeros((64, 3)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "tflite"}, "Invalid value for argument `format`. Expected one of"),
        ({"precision": "float16"}, "Expected 'float32' for format 'onnx'"),
        ({"precision": "int8"}, "Invalid value for argument `precision`"),
        ({"image_size": (0, 8)}, "Invalid value for argument `image_size`"),
        ({"spec": InferenceSpec(channels=1)}, "Expected the model's 3 input channels"),
        ({"spec": "auto"}, "Expected an InferenceSpec or None"),
    ],
)
def test_export_refuses_bad_arguments(tmp_path, kwargs, message):
    model = _unet()
    with pytest.raises(ValueError, match=re.escape(message)):
        export_model(model, str(tmp_path / "m.onnx"), **kwargs)


# --------------------------------------------------------------------------- command and docs


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory):
    """A saved model with a run config (percentile intensity), exported by the command."""
    root = tmp_path_factory.mktemp("export")
    model = _unet(num_classes=1, depth=3, seed=6)
    model.save(root / "best.keras")
    intensity = {"mode": "percentile", "low": 2.0, "high": 99.5, "per_channel": False}
    config = {"intensity": {**intensity, "epsilon": 1e-6}, "color_mode": "rgb"}
    (root / "config.json").write_text(json.dumps({**config, "input_channels": 3}))
    pixels = np.random.default_rng(7).integers(0, 256, (75, 100, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "photo.png")
    argv = ["export", "--model", str(root / "best.keras"), "--format", "onnx"]
    code = main([*argv, "--out", str(root / "model.onnx"), "--images", str(root / "photo.png")])
    assert code == 0
    return root


def test_export_command_writes_the_run_intensity(exported_run, capsys):
    metadata = json.loads((exported_run / "model.onnx.json").read_text())
    assert metadata["intensity"]["mode"] == "percentile"
    assert (metadata["intensity"]["low"], metadata["intensity"]["high"]) == (2.0, 99.5)
    assert "percentile" in metadata["intensity"]["formula"]
    assert metadata["parity"]["image_sizes"] == [[75, 100]]
    assert metadata["batch_normalization_folded"] is True
    # predict's default flip test-time augmentation, or --no-tta's one pass.
    assert metadata["inference"]["tta"] == ["horizontal", "vertical", "both"]
    assert (
        "average the outputs of the tile flipped horizontal, vertical, both"
        in (metadata["steps"][4])
    )
    argv = ["export", "--model", str(exported_run / "best.keras"), "--format", "onnx"]
    assert main([*argv, "--out", str(exported_run / "one_pass.onnx"), "--no-tta"]) == 0
    one_pass = json.loads((exported_run / "one_pass.onnx.json").read_text())
    assert one_pass["inference"]["tta"] == [] and "flipped" not in one_pass["steps"][4]
    code = main(
        [
            *("export", "--model", str(exported_run / "best.keras"), "--format", "onnx"),
            *("--out", str(exported_run / "x.onnx"), "--precision", "float16"),
        ]
    )
    assert code == 1
    assert "Expected 'float32' for format 'onnx'" in capsys.readouterr().err


@pytest.fixture
def run_copy(exported_run, tmp_path):
    """A copy of the exported run, its list of the files the library wrote included."""
    return shutil.copytree(exported_run, tmp_path / "run")


def _sha256(*paths):
    return [hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in paths]


def test_export_never_overwrites_its_model(run_copy, capsys):
    model = run_copy / "best.keras"
    before = _sha256(model)
    # The same file, named another way.
    for out in (model, os.path.join(run_copy, "..", run_copy.name, "best.keras")):
        for flags in ([], ["--overwrite"]):
            argv = ["export", "--model", str(model), "--format", "onnx", "--out", str(out)]
            assert main([*argv, *flags]) == 1
            assert capsys.readouterr().err.strip() == (
                f"keras-unet-seg: error: --out '{out}' would overwrite the input '{model}'; "
                "inputs are never overwritten: choose another --out."
            )
    assert _sha256(model) == before


def test_export_never_replaces_a_users_files(run_copy, capsys):
    notes = run_copy / "notes.onnx"
    notes.write_bytes(b"the user's notes")
    Path(f"{notes}.json").write_text('{"exported_by": "keras-unet-seg, by hand"}')
    before = _sha256(notes, f"{notes}.json")
    argv = ["export", "--model", str(run_copy / "best.keras"), "--format", "onnx"]
    for flags in ([], ["--overwrite"]):
        assert main([*argv, "--out", str(notes), *flags]) == 1
        assert capsys.readouterr().err.strip() == (
            f"keras-unet-seg: error: --out '{notes}': keras-unet-seg did not write "
            "'notes.onnx', 'notes.onnx.json' (or they changed since), and it never replaces a "
            "file it did not write; choose another --out."
        )
    assert _sha256(notes, f"{notes}.json") == before


def test_a_failed_export_leaves_the_old_export_as_it_was(run_copy, monkeypatch, capsys):
    out = run_copy / "model.onnx"
    before, files = _sha256(out, f"{out}.json"), sorted(os.listdir(run_copy))
    argv = ["export", "--model", str(run_copy / "best.keras"), "--format", "onnx"]
    argv += ["--out", str(out)]
    assert main(argv) == 1
    assert capsys.readouterr().err.strip() == (
        f"keras-unet-seg: error: --out '{out}': keras-unet-seg wrote 'model.onnx', "
        "'model.onnx.json' before; pass --overwrite to replace them, or choose another --out."
    )

    def fail(model, filepath, **kwargs):
        Path(filepath).write_bytes(b"half an ONNX file")
        raise ValueError("the converter failed")

    monkeypatch.setattr(keras.Model, "export", fail)
    assert main([*argv, "--overwrite"]) == 1
    assert capsys.readouterr().err.strip() == "keras-unet-seg: error: the converter failed"
    assert _sha256(out, f"{out}.json") == before
    assert sorted(os.listdir(run_copy)) == files  # no temporary file left

    monkeypatch.undo()
    assert main([*argv, "--overwrite"]) == 0  # an earlier export is replaced
    assert json.loads(Path(f"{out}.json").read_text())["file"] == "model.onnx"


def test_predict_folds_by_default_and_no_fold_gives_the_same_masks(exported_run, capsys):
    masks = {}
    for flags in ([], ["--no-fold"]):
        out = exported_run / ("unfolded" if flags else "folded")
        # One pass: the mean of the flips of this untrained model stays below 0.5.
        argv = ["predict", str(exported_run / "photo.png"), "--no-tta", "--model"]
        code = main([*argv, str(exported_run / "best.keras"), "--out", str(out), *flags])
        assert code == 0
        folded_line = "Batch normalization folded into the convolutions" in capsys.readouterr().out
        assert folded_line is not bool(flags)
        masks[bool(flags)] = np.asarray(Image.open(out / "masks" / "photo.png"))
    np.testing.assert_array_equal(masks[False], masks[True])
    assert 0 < np.mean(masks[False] == 255) < 1


def test_export_model_intensity_color_mode_and_threshold_are_deprecated_for_spec(tmp_path):
    model = _unet()
    with pytest.warns(DeprecationWarning, match=r"pass `spec=InferenceSpec\(...\)` instead"):
        written = export_model(model, str(tmp_path / "m.onnx"), threshold=0.3, verbose=False)
    assert written["inference"]["threshold"] == written["threshold"] == 0.3
    with pytest.raises(ValueError, match="are the same settings: pass only `spec`"):
        export_model(model, str(tmp_path / "m.onnx"), threshold=0.3, spec=InferenceSpec())


def test_export_package_re_exports_every_public_name():
    from keras_unet_seg import export
    from keras_unet_seg.export import exporting, folding, runtimes

    assert export.export_model is exporting.export_model
    assert export.fold_batch_normalization is folding.fold_batch_normalization
    assert export.load_exported is runtimes.load_exported
    assert export.ExportedModel is runtimes.ExportedModel
    assert export.EXPORT_FORMATS == ("onnx", "litert", "saved_model", "openvino")
