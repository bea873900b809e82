"""One answer everywhere: a trained run's masks from `predict`, `evaluate`, the Python API
and the docs' ONNX Runtime program (docs/guide/deploying.md) are the same.

The run is trained once (base filters 4, depth 2, 1 epoch) at 32x32 from 64x64 files,
so its training scale is 0.5: every path must resize as `predict` does. Compared on
the validation images and on a 1000x700 photo: 0 pixels differ in float32; under
bfloat16 a pixel may differ only within `BFLOAT16_TOLERANCE` of the threshold. An
encoder model built under `mixed_bfloat16` converts to float32 entirely and exports.
"""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet_seg import InferenceSpec, UNet, predict_tiled
from keras_unet_seg.cli import main
from keras_unet_seg.data import make_synthetic_dataset, read_image
from keras_unet_seg.export import export_model, fold_batch_normalization
from keras_unet_seg.inference import predict_directory
from keras_unet_seg.performance import resolve_precision

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

ROOT = Path(__file__).resolve().parents[1]
# The docs' and the export check's bound: bfloat16 moves a pixel across the threshold
# only where its float32 probability is this close to it.
BFLOAT16_TOLERANCE = 3e-2
# What predict computes in by default for the run (float32 on CPUs: 4 base filters).
DEFAULT_PRECISION = resolve_precision("auto", base_filters=4, training=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run trained at 32x32 from 64x64 files, exported to ONNX, and a 1000x700 photo."""
    root = tmp_path_factory.mktemp("one_answer")
    data = make_synthetic_dataset(root / "data", num_train=4, num_val=2, image_size=(64, 64))
    small = ["--base-filters", "4", "--depth", "2", "--image-size", "32", "--batch-size", "4"]
    small += ["--steps-per-epoch", "0"]
    argv = ["train", "--data", data, "--out", str(root / "run"), *small, "--epochs", "1"]
    assert main([*argv, "--no-augment"]) == 0
    onnx = ["--format", "onnx", "--out", str(root / "model.onnx")]
    assert main(["export", "--model", str(root / "run" / "best.keras"), *onnx]) == 0
    val = Image.open(os.path.join(data, "val", "images", "00000.png")).convert("RGB")
    noise = np.random.default_rng(0).integers(-20, 21, (700, 1000, 3))
    photo = np.asarray(val.resize((1000, 700), Image.BILINEAR)).astype(int) + noise
    Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(root / "photo.png")
    return root, data


def _images(root, data):
    """`{name: path}` of the photo and the validation images."""
    folder = os.path.join(data, "val", "images")
    paths = {name[:-4]: os.path.join(folder, name) for name in sorted(os.listdir(folder))}
    return {"photo": str(root / "photo.png"), **paths}


def _docs_program_masks(root, images, model="model.onnx"):
    """The masks of the docs' ONNX Runtime program, run without Keras on each image (on
    `root/model` as `model.onnx`)."""
    page = (ROOT / "docs" / "guide" / "deploying.md").read_text(encoding="utf-8")
    (program,) = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "onnxruntime" in b]
    check = (
        "\nimport sys\nassert not {'keras', 'tensorflow', 'keras_unet_seg'} & set(sys.modules)\n"
    )
    loop = "import shutil, sys\nfor name in sys.argv[1:]:\n"
    loop += "    shutil.copy(name + '.in.png', 'photo.png')\n"
    body = "\n".join("    " + line for line in program.splitlines())
    body += "\n    shutil.move('mask.png', name + '.mask.png')\n"
    work = root / f"docs_program_{model}"
    work.mkdir(exist_ok=True)
    for suffix in ("", ".json"):
        shutil.copy(root / f"{model}{suffix}", work / f"model.onnx{suffix}")
    for name, path in images.items():
        shutil.copy(path, work / f"{name}.in.png")
    script = loop + body + check
    subprocess.run([sys.executable, "-c", script, *images], cwd=work, check=True, timeout=120)
    return {name: np.asarray(Image.open(work / f"{name}.mask.png")) for name in images}


def _predict_masks(root, images, out, *flags, model="run/best.keras"):
    argv = ["predict", *images.values(), "--model", str(root / model)]
    assert main([*argv, "--out", str(out), *flags]) == 0
    return {name: np.asarray(Image.open(out / "masks" / f"{name}.png")) for name in images}


def _counts(truth, prediction):
    """`(tp, fp, fn)` of the foreground."""
    truth, prediction = truth > 0, prediction > 0
    return (
        int(np.sum(truth & prediction)),
        int(np.sum(~truth & prediction)),
        int(np.sum(truth & ~prediction)),
    )


def test_the_export_records_the_runs_spec_and_checks_against_predict(run):
    root, _ = run
    written = json.loads((root / "model.onnx.json").read_text())
    spec = InferenceSpec.from_run(root / "run")
    assert spec.scale == (0.5, 0.5) and spec.channels == 3
    assert written["inference"] == spec.get_config()
    assert InferenceSpec.from_config(written["inference"]) == spec
    assert "round(height * scale[0])" in written["steps"][2]
    parity = written["parity"]
    assert parity["compared_with"] == f"keras-unet-seg predict, in {DEFAULT_PRECISION}"
    assert parity["mask_pixels_beyond_tolerance"] == 0


def test_docs_program_predict_evaluate_and_the_python_api_agree_in_float32(run, tmp_path):
    if DEFAULT_PRECISION != "float32":  # a GPU's bfloat16: the next test's bound
        pytest.skip(f"predict computes in {DEFAULT_PRECISION} here")
    root, data = run
    images = _images(root, data)
    docs = _docs_program_masks(root, images)
    predicted = _predict_masks(root, images, tmp_path / "predict")
    spec = InferenceSpec.from_run(root / "run")
    model = fold_batch_normalization(keras.saving.load_model(root / "run" / "best.keras"))
    differing = {}
    for name, path in images.items():
        image = read_image(path, spec.color_mode, spec.intensity)
        api = predict_tiled(model, image, **spec.tiled_arguments())[..., 0] >= spec.threshold
        differing[name] = (
            int(np.sum(docs[name] != predicted[name])),
            int(np.sum((predicted[name] == 255) != api)),
        )
    assert differing == {name: (0, 0) for name in images}
    assert 0 < np.mean(predicted["photo"] == 255) < 1  # both values: the test means something
    written = predict_directory(model, list(images.values()), tmp_path / "api", spec=spec)
    for name, paths in zip(images, written, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(paths["mask"])), predicted[name])
    scores = tmp_path / "scores.json"
    argv = ["evaluate", "--model", str(root / "run" / "best.keras"), "--data", data]
    assert main([*argv, "--json", str(scores)]) == 0
    for row in json.loads(scores.read_text())["per_image"]:
        name = os.path.basename(row["image"])[:-4]
        truth = np.asarray(Image.open(row["mask"]))
        want = _counts(truth, predicted[name])
        assert (
            row["classes"]["1"]["tp"],
            row["classes"]["1"]["fp"],
            row["classes"]["1"]["fn"],
        ) == want


@pytest.mark.parametrize("model", ["model.onnx", "int8.onnx"])
def test_predict_and_evaluate_run_an_onnx_export_as_the_docs_program_does(run, tmp_path, model):
    root, data = run
    if model == "int8.onnx":
        argv = ["export", "--model", str(root / "run" / "best.keras"), "--format", "onnx"]
        argv += ["--out", str(root / model), "--quantize", "int8", "--calibration", data]
        assert main([*argv, "--max-dice-drop", "1"]) == 0
    images = _images(root, data)
    docs = _docs_program_masks(root, images, model)
    predicted = _predict_masks(root, images, tmp_path / "predict", model=model)
    assert {name: int(np.sum(docs[name] != predicted[name])) for name in images} == {
        name: 0 for name in images
    }
    assert 0 < np.mean(predicted["photo"] == 255) < 1
    scores = tmp_path / "scores.json"
    argv = ["evaluate", "--model", str(root / model), "--data", data, "--json", str(scores)]
    assert main(argv) == 0
    for row in json.loads(scores.read_text())["per_image"]:
        counts = [row["classes"]["1"][key] for key in ("tp", "fp", "fn")]
        truth = np.asarray(Image.open(row["mask"]))
        assert tuple(counts) == _counts(truth, predicted[os.path.basename(row["image"])[:-4]])


def test_bfloat16_moves_pixels_only_near_the_threshold(run, tmp_path):
    root, _ = run
    images = {"photo": str(root / "photo.png")}
    argv = ("--precision", "mixed_bfloat16")
    bfloat16 = _predict_masks(root, images, tmp_path / "bf16", *argv)["photo"] == 255
    spec = InferenceSpec.from_run(root / "run")
    model = keras.saving.load_model(root / "run" / "best.keras")
    image = read_image(images["photo"], spec.color_mode, spec.intensity)
    folded = fold_batch_normalization(model)
    probabilities = predict_tiled(folded, image, **spec.tiled_arguments())[..., 0]
    differ = (probabilities >= spec.threshold) != bfloat16  # float32 (as above) vs bfloat16
    near = np.abs(probabilities - spec.threshold) <= BFLOAT16_TOLERANCE
    assert not np.any(differ & ~near), f"{int(differ.sum())} pixels differ"
    # The export's check allows exactly those pixels where predict computes in bfloat16.
    bf16_spec = dataclasses.replace(spec, precision="mixed_bfloat16")
    parity = export_model(model, str(tmp_path / "m.onnx"), spec=bf16_spec, verbose=False)["parity"]
    assert parity["compared_with"] == "keras-unet-seg predict, in mixed_bfloat16"
    assert parity["mask_tolerance"] == BFLOAT16_TOLERANCE
    assert parity["mask_pixels_beyond_tolerance"] == 0


def test_an_encoder_model_of_mixed_bfloat16_converts_every_layer_and_exports(tmp_path):
    from keras_unet_seg.commands._models import inference_model

    model = UNet(
        encoder="mobilenetv3small", decoder_filters=[4, 4, 8, 8, 8], dtype="mixed_bfloat16"
    )
    model.build((None, None, None, 3))
    assert any("bfloat16" in layer.dtype_policy.name for layer in model.encoder.backbone.layers)
    # predict's and evaluate's --precision float32 (export's float32 copy is the same call).
    copy = inference_model(model, "float32", fold=False, verbose=0)
    assert {layer.dtype_policy.name for layer in copy._flatten_layers()} == {"float32"}
    spec = InferenceSpec(scale=0.5, precision="float32")
    parity = export_model(model, str(tmp_path / "model.onnx"), spec=spec, verbose=False)["parity"]
    assert parity["compared_with"] == "keras-unet-seg predict, in float32"
    assert parity["mask_pixels_differing"] == 0
