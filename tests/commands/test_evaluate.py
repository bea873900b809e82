"""`keras-unet-seg evaluate`: per-image and pooled scores, multi-class runs, and the
command as a shell over `keras_unet_seg.evaluation.evaluate_directory`."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_unet_seg.cli import main

from ._helpers import checksums, error_line, temporary_files


@pytest.mark.slow
def test_evaluate_writes_per_image_and_pooled_scores(trained_run, data_dir, tmp_path, capsys):
    scores = tmp_path / "scores" / "val.json"
    model = str(trained_run / "best.keras")
    argv = ["--model", model, "--tile-size", "32"]
    assert main(["evaluate", *argv, "--data", data_dir, "--json", str(scores)]) == 0
    table = capsys.readouterr().out
    assert "overall (pooled)" in table and "00002.png" in table

    report = json.loads(scores.read_text())
    assert report["subset"] == "val" and report["num_images"] == 3
    assert len(report["per_image"]) == 3
    metrics = ("dice", "iou", "precision", "recall")
    for row in report["per_image"]:
        assert os.path.exists(row["image"]) and os.path.exists(row["mask"])
        assert all(0 <= row[m] <= 1 for m in metrics)

    # The overall scores come from pooled counts: recompute them from predict's masks.
    images = os.path.join(data_dir, "val", "images")
    masks_out = tmp_path / "pred"
    assert main(["predict", *argv, images, "--out", str(masks_out)]) == 0
    tp = fp = fn = 0
    for row in report["per_image"]:
        name = os.path.basename(row["image"])
        truth = np.asarray(Image.open(row["mask"])) > 0
        predicted = np.asarray(Image.open(masks_out / "masks" / name)) > 0
        tp += np.sum(truth & predicted)
        fp += np.sum(~truth & predicted)
        fn += np.sum(truth & ~predicted)
    overall = report["overall"]
    np.testing.assert_allclose(overall["dice"], 2 * tp / (2 * tp + fp + fn), atol=1e-5)
    np.testing.assert_allclose(overall["iou"], tp / (tp + fp + fn), atol=1e-5)
    np.testing.assert_allclose(overall["precision"], tp / (tp + fp), atol=1e-5)
    np.testing.assert_allclose(overall["recall"], tp / (tp + fn), atol=1e-5)
    assert temporary_files(scores.parent) == []
    # Its own scores are replaced with --overwrite only.
    assert main(["evaluate", *argv, "--data", data_dir, "--json", str(scores)]) == 1
    assert error_line(capsys).endswith(
        f"--json '{scores}': keras-unet-seg wrote 'val.json' before; pass --overwrite to "
        "replace it, or choose another --json."
    )
    assert main(["evaluate", *argv, "--data", data_dir, "--json", str(scores), "--overwrite"]) == 0


def test_evaluate_never_writes_among_its_inputs_nor_over_a_users_file(
    trained_run, data_dir, tmp_path, capsys
):
    argv = ["evaluate", "--model", str(trained_run / "best.keras"), "--data", data_dir]
    data = checksums(data_dir)
    report = os.path.join(data_dir, "report")
    assert main([*argv, "--report", report]) == 1
    assert error_line(capsys) == (
        f"keras-unet-seg: error: --report '{report}' would write "
        f"'{os.path.join(report, 'report.html')}', which overlaps the input '{data_dir}'; "
        "outputs never go among the inputs: choose another --report."
    )
    scores = tmp_path / "scores.json"
    scores.write_text('{"my": "scores"}')
    mine = checksums(scores)
    for flags in ([], ["--overwrite"]):
        assert main([*argv, "--json", str(scores), *flags]) == 1
        assert error_line(capsys) == (
            f"keras-unet-seg: error: --json '{scores}': keras-unet-seg did not write "
            "'scores.json' (or it changed since), and it never replaces a file it did not "
            "write; choose another --json."
        )
    assert checksums(data_dir) == data and checksums(scores) == mine


@pytest.mark.slow
def test_multi_class_grayscale_train_predict_evaluate(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for split, count in (("train", 4), ("val", 2)):
        (data / split / "images").mkdir(parents=True)
        (data / split / "masks").mkdir(parents=True)
        for i in range(count):
            mask = np.zeros((24, 40), np.uint8)
            mask[2:12, 3:15], mask[14:22, 20:36] = 1, 2
            image = (rng.random(mask.shape) * 60 + mask * 90).astype(np.uint8)
            Image.fromarray(image).save(data / split / "images" / f"{i}.png")
            Image.fromarray(mask).save(data / split / "masks" / f"{i}.png")
    run, pred, scores = tmp_path / "run", tmp_path / "pred", tmp_path / "scores.json"
    options = ["--num-classes", "3", "--color-mode", "grayscale", "--image-size", "24x40"]
    options += ["--epochs", "1", "--steps-per-epoch", "0", "--base-filters", "4", "--depth", "2"]
    options += ["--loss", "dice"]
    options += ["--no-augment"]
    assert main(["train", "--data", str(data), "--out", str(run), *options]) == 0
    model = str(run / "model.keras")
    # The model's one input channel makes predict and evaluate read grayscale.
    assert (
        main(["predict", "--model", model, str(data / "val" / "images"), "--out", str(pred)]) == 0
    )
    mask = np.asarray(Image.open(pred / "masks" / "0.png"))
    assert mask.shape == (24, 40) and set(np.unique(mask)) <= {0, 1, 2}
    assert main(["evaluate", "--model", model, "--data", str(data), "--json", str(scores)]) == 0
    report = json.loads(scores.read_text())
    assert report["num_images"] == 2 and 0 <= report["overall"]["dice"] <= 1


def test_the_command_prints_and_writes_what_evaluate_directory_returns(
    trained_run, data_dir, tmp_path, capsys
):
    from keras_unet_seg.evaluation import evaluate_directory

    model_path = str(trained_run / "best.keras")
    scores, report = tmp_path / "scores.json", tmp_path / "report"
    argv = ["evaluate", "--model", model_path, "--data", data_dir, "--tile-size", "32"]
    assert main([*argv, "--no-fold", "--json", str(scores), "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    written = json.loads(scores.read_text())
    assert list(written) == [
        *("model", "data", "subset", "threshold", "num_images", "overall", "classes"),
        *("class_names", "per_image"),
    ]
    assert (report / "report.html").is_file() and (report / "per_image.csv").is_file()

    direct = evaluate_directory(
        keras.saving.load_model(model_path), data_dir, tile_size=32, tta=True, verbose=0
    )
    assert (direct["subset"], direct["num_images"]) == (written["subset"], 3)
    for name, value in direct["overall"].items():
        assert written["overall"][name] == pytest.approx(value, abs=1e-6)
        assert f"{value:>9.4f}" in printed.split("overall (pooled)")[1].splitlines()[0]
    for row, by_command in zip(direct["per_image"], written["per_image"], strict=True):
        assert row["image"] == by_command["image"] and row["mask"] == by_command["mask"]
        assert row["dice"] == pytest.approx(by_command["dice"], abs=1e-6)
    # The pooled counts are the sum of the images' confusion matrices.
    assert direct["confusion"].sum() == 3 * 32 * 32
    tp = sum(row["classes"][1]["tp"] for row in direct["per_image"])
    assert direct["confusion"][1, 1] == tp == written["classes"]["1"]["tp"]
