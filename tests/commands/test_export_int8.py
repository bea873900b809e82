"""`keras-unet-seg export --quantize int8`: the quality bound, and nothing written past it."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from keras_unet_seg.cli import main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _sha256(*folders):
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted(Path(folder).rglob("*"))
        if path.is_file()
    }


def test_export_int8_refuses_a_dice_drop_beyond_the_bound_and_writes_nothing(
    trained_run, data_dir, tmp_path, capsys
):
    before = _sha256(trained_run, data_dir)
    out = tmp_path / "int8.onnx"
    argv = ["export", "--model", str(trained_run / "best.keras"), "--format", "onnx"]
    argv += ["--out", str(out), "--quantize", "int8", "--calibration", str(data_dir)]
    # An impossible bound: the int8 model would have to score higher by 1.
    assert main([*argv, "--max-dice-drop", "-1"]) == 1
    error = capsys.readouterr().err
    assert "on 3 validation images against" in error and "it was not written" in error
    assert os.listdir(tmp_path) == []
    assert _sha256(trained_run, data_dir) == before

    assert main([*argv, "--max-dice-drop", "1", "--num-calibration", "2"]) == 0
    assert "int8 on 3 validation images: Dice" in capsys.readouterr().out
    written = json.loads(Path(f"{out}.json").read_text())
    assert written["quantization"]["calibration_images"] == ["00000.png", "00007.png"]
    assert written["quantization"]["quality"]["dice_drop"] <= 1
    assert sorted(os.listdir(tmp_path)) == [".keras-unet-seg.sha256", "int8.onnx", "int8.onnx.json"]
    assert _sha256(trained_run, data_dir) == before


def test_export_quantization_options_go_together(trained_run, tmp_path, capsys):
    argv = ["export", "--model", str(trained_run / "best.keras"), "--format", "onnx"]
    argv += ["--out", str(tmp_path / "m.onnx")]
    assert main([*argv, "--quantize", "int8"]) == 2
    assert "--quantize int8 needs --calibration DIR" in capsys.readouterr().err
    assert main([*argv, "--calibration", str(tmp_path), "--keep-float", "head"]) == 2
    assert "--calibration, --keep-float apply with --quantize int8 only" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_predict_needs_the_json_file_beside_an_exported_model(data_dir, tmp_path, capsys):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"an ONNX file without its JSON file")
    argv = ["predict", str(Path(data_dir) / "val" / "images"), "--model", str(model)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    assert "has no readable 'model.onnx.json' beside it" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "out"), "--runtime", "keras"]) == 1
    assert "is not a Keras model: expected a .keras file" in capsys.readouterr().err
