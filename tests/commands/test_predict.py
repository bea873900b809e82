"""`keras-unet-seg predict`: files and folders of any size, unreadable files, and on a
multi-class run the training scale, palette masks, legends, and a dataset folder's
masks left alone; the user's files (inputs, files in --out) never overwritten."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from keras_unet_seg.cli import main
from keras_unet_seg.data import make_synthetic_dataset

from ._helpers import checksums, error_line, temporary_files

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
    assert main([*args, "--scale", "0.5x0.25", "--overwrite"]) == 0
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
        keras.saving.load_model(model_path),
        images,
        tmp_path / "python",
        tile_size=32,
        tta=True,
        verbose=0,
    )
    assert [os.path.basename(row["mask"]) for row in written] == sorted(os.listdir(images))
    for row in written:
        name = os.path.basename(row["mask"])
        by_command = np.asarray(Image.open(tmp_path / "command" / "masks" / name))
        np.testing.assert_array_equal(np.asarray(Image.open(row["mask"])), by_command)
        assert Image.open(row["overlay"]).size == Image.open(row["image"]).size


def test_predict_and_evaluate_flip_by_default_and_no_tta_turns_it_off(
    trained_run, data_dir, tmp_path, monkeypatch
):
    """Flip test-time augmentation is the default (the Model quality page's figures)."""
    from keras_unet_seg.inference import _tiles as inference

    flips = []
    predict_with_flips = inference._predict_with_flips

    def recording(model, batch, tta):
        flips.append(tta)
        return predict_with_flips(model, batch, tta)

    monkeypatch.setattr(inference, "_predict_with_flips", recording)
    image = os.path.join(data_dir, "val", "images", "00000.png")
    model = str(trained_run / "best.keras")
    for command in ("predict", "evaluate"):
        argv = [command, "--model", model, "--tile-size", "32"]
        argv += [image, "--out", str(tmp_path / "p")] if command == "predict" else []
        argv += ["--data", data_dir] if command == "evaluate" else []
        for no_tta in ([], ["--no-tta"]):
            flips.clear()
            assert main([*argv, *no_tta, "--overwrite"]) == 0
            assert set(flips) == {() if no_tta else ("horizontal", "vertical", "both")}


# --------------------------------------------------------------------------- the user's files


@pytest.fixture
def dataset(data_dir, tmp_path):
    """A copy of the validation pairs: a dataset folder holding images/ and masks/."""
    return shutil.copytree(os.path.join(data_dir, "val"), tmp_path / "dataset")


@pytest.mark.parametrize("out", [".", "masks", "predictions"])
def test_predict_never_writes_inside_a_dataset_folder(trained_run, dataset, out, capsys):
    before = checksums(dataset)
    argv = ["predict", str(dataset), "--model", str(trained_run / "model.keras")]
    assert main([*argv, "--out", str(dataset / out), "--overwrite"]) == 1
    written = dataset / out / "masks"
    assert error_line(capsys) == (
        f"keras-unet-seg: error: --out '{dataset / out}' would write '{written}', which overlaps "
        f"the input '{dataset}'; outputs never go among the inputs: choose another --out."
    )
    assert checksums(dataset) == before


def test_predict_never_replaces_a_file_it_did_not_write(trained_run, dataset, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "masks").mkdir(parents=True)
    shutil.copy(dataset / "masks" / "00001.png", out / "masks" / "00001.png")  # the user's
    before = checksums(out)
    argv = ["predict", str(dataset / "images"), "--model", str(trained_run / "model.keras")]
    for flags in ([], ["--overwrite"]):
        assert main([*argv, "--out", str(out), *flags]) == 1
        assert error_line(capsys) == (
            f"keras-unet-seg: error: --out '{out}': keras-unet-seg did not write "
            "'masks/00001.png' (or it changed since), and it never replaces a file it did not "
            "write; choose another --out."
        )
        assert checksums(out) == before


def test_predict_overwrite_replaces_only_what_predict_wrote(trained_run, dataset, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["predict", str(dataset / "images" / "00000.png"), "--out", str(out)]
    argv += ["--model", str(trained_run / "model.keras"), "--tile-size", "32"]
    assert main(argv) == 0
    (out / "notes.txt").write_text("the user's notes")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(out / "masks" / "mine.png")
    users = checksums(out / "notes.txt", out / "masks" / "mine.png")
    capsys.readouterr()
    assert main(argv) == 1
    assert error_line(capsys) == (
        f"keras-unet-seg: error: --out '{out}': keras-unet-seg wrote 'masks/00000.png', "
        "'overlays/00000.png' before; pass --overwrite to replace them, or choose another --out."
    )
    assert main([*argv, "--overwrite"]) == 0
    assert checksums(out / "notes.txt", out / "masks" / "mine.png") == users

    # A mask the user corrected by hand is theirs now: never replaced.
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(out / "masks" / "00000.png")
    corrected = checksums(out)
    capsys.readouterr()
    assert main([*argv, "--overwrite"]) == 1
    assert "did not write 'masks/00000.png' (or it changed since)" in error_line(capsys)
    assert checksums(out) == corrected


def test_a_tile_below_the_models_minimum_is_refused(trained_run, tmp_path, capsys):
    """The run's depth 2 needs tiles of 4 pixels or more; smaller ones were padded up
    inside the model and changed the masks."""
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    model = str(trained_run / "model.keras")
    for command in (
        ["predict", str(image), "--out", str(tmp_path / "out")],
        ["evaluate", "--data", str(trained_run)],
    ):
        argv = [*command, "--model", model, "--tile-size", "3x8"]
        assert main(argv) == 2
        assert error_line(capsys) == (
            f"keras-unet-seg: error: {command[0]}: --tile-size 3x8 is below the model's minimum "
            "tile of 4x4 (2**depth): a smaller tile is padded up inside the model, which "
            "changes the masks. Give --tile-size 4 or more."
        )
    assert not (tmp_path / "out").exists()


def test_a_scale_beyond_the_size_limit_is_refused(trained_run, tmp_path, capsys, monkeypatch):
    """--scale 300 on a 100x75 image asked for 22500x30000 pixels (2 GB as 8 bits, 8 GB as
    float32); the rescaled size meets the files' limit (lowered here: 10,000 pixels)."""
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((75, 100, 3), np.uint8)).save(image)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    out = tmp_path / "out"
    argv = ["predict", str(image), "--model", str(trained_run / "model.keras"), "--out", str(out)]
    assert main([*argv, "--scale", "3"]) == 1
    assert error_line(capsys) == (
        "keras-unet-seg: error: Invalid value for argument `scale` (--scale): 3 x 3 would "
        f"resize '{image}' (75x100) to 225x300 pixels x 3 channels x 1 byte = 202,500 bytes, "
        "more than the limit of 10,000 pixels and 30,000 bytes (PIL.Image.MAX_IMAGE_PIXELS "
        "and 3 bytes a pixel of it), the limit of the files read. Give a smaller scale "
        "(native: the files' own size)."
    )
    assert main([*argv, "--scale", "1.1"]) == 0
