"""`keras-unet-seg predict`: files and folders of any size, unreadable files, and on a
multi-class run the training scale, palette masks, legends, and a dataset folder's
masks left alone."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from keras_unet_seg.cli import main
from keras_unet_seg.data import make_synthetic_dataset

from ._helpers import error_line, temporary_files

NAMES = "background,disc,blob"


@pytest.fixture(scope="module")
def resized_run(tmp_path_factory):
    """Three classes, 48x48 files trained at 32x32: a training scale of 2/3."""
    root = tmp_path_factory.mktemp("resized")
    data = make_synthetic_dataset(
        root / "data", num_train=4, num_val=2, image_size=(48, 48), num_classes=3, seed=1
    )
    run = root / "run"
    options = ["--base-filters", "4", "--depth", "2", "--image-size", "32", "--batch-size", "4"]
    args = ["train", "--data", data, "--out", str(run), "--num-classes", "3", *options]
    args += ["--epochs", "1", "--steps-per-epoch", "0", "--no-augment"]
    assert main([*args, "--class-names", NAMES]) == 0
    return data, run


def test_the_run_records_scale_palette_and_names(resized_run):
    data, run = resized_run
    config = json.loads((run / "config.json").read_text())
    assert config["training_scale"] == [pytest.approx(2 / 3, abs=1e-6)] * 2
    with Image.open(os.path.join(data, "train", "masks", "00000.png")) as mask:
        palette = mask.getpalette()[:9]
    assert config["mask_palette"] == [palette[0:3], palette[3:6], palette[6:9]]
    assert config["class_names"] == NAMES.split(",")


def test_predict_a_dataset_folder_at_the_training_scale(resized_run, tmp_path, capsys):
    data, run = resized_run
    out = tmp_path / "out"
    val = os.path.join(data, "val")
    assert main(["predict", val, "--model", str(run / "best.keras"), "--out", str(out)]) == 0
    output = capsys.readouterr().out
    assert "is a dataset folder: predicting its images/, not its masks/" in output
    assert "Resizing images by 0.666667 x 0.666667 (height x width; the run's training" in output
    assert sorted(os.listdir(out / "masks")) == ["00000.png", "00001.png"]
    with Image.open(out / "masks" / "00000.png") as mask:
        assert mask.mode == "P" and mask.size == (48, 48)  # the file's size, not 32
        assert set(np.unique(np.asarray(mask))) <= {0, 1, 2}
        with Image.open(os.path.join(val, "masks", "00000.png")) as truth:
            assert mask.getpalette()[:9] == truth.getpalette()[:9]
    with Image.open(out / "overlays" / "00000.png") as overlay:
        width, height = overlay.size
        assert width == 48 and height > 48  # the legend strip under the image
        strip = np.asarray(overlay.convert("RGB"))[48:]
        assert (strip == 255).mean() > 0.5  # white, with the class colours and names


def test_scale_native_predicts_at_the_files_size(resized_run, tmp_path, capsys):
    data, run = resized_run
    image = os.path.join(data, "val", "images", "00000.png")
    args = ["predict", image, "--model", str(run / "best.keras"), "--out", str(tmp_path)]
    assert main([*args, "--scale", "native"]) == 0
    assert "Resizing" not in capsys.readouterr().out
    assert main([*args, "--scale", "0.5x0.25"]) == 0
    assert "Resizing images by 0.5 x 0.25 (height x width; --scale)" in capsys.readouterr().out
    assert main([*args, "--scale", "big"]) == 2
    assert "expected auto, native, or a factor F or FHxFW" in capsys.readouterr().err


def test_evaluate_names_the_classes_in_its_report(resized_run, tmp_path):
    data, run = resized_run
    report = tmp_path / "report"
    args = ["evaluate", "--model", str(run / "best.keras"), "--data", data]
    assert main([*args, "--report", str(report)]) == 0
    summary = json.loads((report / "summary.json").read_text())
    assert set(summary["classes"]) == {"disc", "blob"}
    assert summary["class_names"] == NAMES.split(",")


@pytest.mark.slow
def test_predict_files_and_folders_of_any_size(trained_run, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    (inputs / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (45, 70, 3), dtype=np.uint8)).save(inputs / "a.png")
    Image.fromarray(rng.integers(0, 255, (20, 24), dtype=np.uint8)).save(inputs / "sub/b.jpg")
    single = tmp_path / "single.png"
    Image.fromarray(rng.integers(0, 255, (33, 31, 3), dtype=np.uint8)).save(single)
    out = tmp_path / "out"

    code = main(
        [
            *("predict", "--model", str(trained_run / "model.keras"), str(inputs), str(single)),
            *("--out", str(out), "--tile-size", "32", "--overlap", "0.5"),
        ]
    )
    assert code == 0
    assert "Wrote 3 masks" in capsys.readouterr().out
    for name, size in (("a", (45, 70)), ("sub/b", (20, 24)), ("single", (33, 31))):
        mask = np.asarray(Image.open(out / "masks" / f"{name}.png"))
        assert mask.shape == size and set(np.unique(mask)) <= {0, 255}
        overlay = np.asarray(Image.open(out / "overlays" / f"{name}.png"))
        assert overlay.shape == (*size, 3)
    assert temporary_files(out) == []


def test_predict_names_the_unreadable_file_among_good_ones(trained_run, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "good.png")
    (folder / "bad.jpg").write_bytes(b"")
    out = tmp_path / "out"
    argv = ["predict", "--model", str(trained_run / "model.keras"), str(folder)]
    assert main([*argv, "--out", str(out)]) == 1
    assert f"File '{folder / 'bad.jpg'}' is empty (0 bytes)." in error_line(capsys)
    assert not out.exists()  # every input is checked before anything is written


def test_the_command_writes_what_predict_directory_writes(trained_run, data_dir, tmp_path, capsys):
    """The command is `predict_directory` with the run's reading: the same files and masks."""
    import keras

    from keras_unet_seg.inference import predict_directory

    images = os.path.join(data_dir, "val", "images")
    model_path = str(trained_run / "model.keras")
    argv = ["predict", images, "--model", model_path, "--out", str(tmp_path / "command")]
    assert main([*argv, "--tile-size", "32", "--no-fold"]) == 0
    assert "Wrote 3 masks to" in capsys.readouterr().out
    written = predict_directory(
        keras.saving.load_model(model_path), images, tmp_path / "python", tile_size=32, verbose=0
    )
    assert [os.path.basename(row["mask"]) for row in written] == sorted(os.listdir(images))
    for row in written:
        name = os.path.basename(row["mask"])
        by_command = np.asarray(Image.open(tmp_path / "command" / "masks" / name))
        np.testing.assert_array_equal(np.asarray(Image.open(row["mask"])), by_command)
        assert Image.open(row["overlay"]).size == Image.open(row["image"]).size
