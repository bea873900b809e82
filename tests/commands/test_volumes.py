"""The commands on volumes: `predict` slides a 3D model over NIfTI files and TIFF stacks
and writes masks with their input's header; the user's files never change."""

import os

import keras
import numpy as np
import pytest

from keras_unet_seg import UNet
from keras_unet_seg.cli import main

from ._helpers import checksums, error_line, temporary_files

nibabel = pytest.importorskip("nibabel")
tifffile = pytest.importorskip("tifffile")

# (depth, height, width): odd sides, larger than the 16-voxel patches.
SHAPE = (19, 24, 21)


@pytest.fixture(scope="module")
def volume_model(tmp_path_factory):
    """A saved tiny 3D Keras model (no UNet needed to slide a window): foreground where
    the normalised voxel is above 0.5 (its 3x3x3 kernel weighs the centre and a neighbour)."""
    inputs = keras.Input((None, None, None, 1))
    conv = keras.layers.Conv3D(1, 3, padding="same", activation="sigmoid")
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros((3, 3, 3, 1, 1), "float32")
    kernel[1, 1, 1], kernel[1, 1, 2] = 16.0, 4.0
    conv.set_weights([kernel, np.array([-10.0], "float32")])
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return str(path)


def _scan(seed=0):
    """An int16 volume (depth, height, width) with a bright box, as a CT holds."""
    rng = np.random.default_rng(seed)
    scan = rng.normal(0, 20, SHAPE).astype("int16")
    scan[5:14, 6:18, 4:15] += 300
    return scan


@pytest.fixture()
def scans(tmp_path):
    """A folder of two NIfTI files (oblique affine, anisotropic spacing) and a TIFF stack."""
    folder = tmp_path / "scans"
    folder.mkdir()
    affine = np.array(
        [[0.0, 0.8, 0.0, -90.0], [-0.7, 0.0, 0.1, 40.0], [0.0, 0.0, 2.5, -12.0], [0, 0, 0, 1]]
    )
    for index, suffix in enumerate((".nii.gz", ".nii")):
        image = nibabel.Nifti1Image(_scan(index).transpose(2, 1, 0), affine)  # (x, y, z)
        image.set_qform(affine, code=1)
        image.set_sform(affine, code=2)
        image.header.set_xyzt_units("mm", "sec")
        nibabel.save(image, folder / f"case_{index}{suffix}")
    return folder


def _header_facts(path):
    header = nibabel.load(path).header
    return {
        "shape": header.get_data_shape(),
        "zooms": header.get_zooms(),
        "qform": (header.get_qform(coded=True)[1], header.get_qform().tolist()),
        "sform": (header.get_sform(coded=True)[1], header.get_sform().tolist()),
        "units": header.get_xyzt_units(),
        "dim_info": header.get_dim_info(),
    }


def test_predict_writes_each_volume_mask_with_its_inputs_header(volume_model, scans, tmp_path):
    out = tmp_path / "out"
    before = checksums(scans, volume_model)
    argv = ["predict", "--model", volume_model, str(scans), "--out", str(out)]
    assert main([*argv, "--tile-size", "16", "--no-tta"]) == 0
    assert checksums(scans, volume_model) == before  # nothing the user wrote changes
    for name in ("case_0.nii.gz", "case_1.nii"):
        mask_path = out / "masks" / name
        assert _header_facts(mask_path) == _header_facts(scans / name)
        mask = np.asarray(nibabel.load(mask_path).dataobj).transpose(2, 1, 0)
        assert mask.shape == SHAPE and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1}
        assert (out / "overlays" / f"{name.split('.')[0]}.png").is_file()
    assert temporary_files(out) == []


def test_predict_slides_the_window_as_predict_tiled_does(volume_model, scans, tmp_path):
    from keras_unet_seg.data import normalize_volume, read_volume
    from keras_unet_seg.inference import predict_tiled

    out = tmp_path / "out"
    argv = ["predict", "--model", volume_model, str(scans / "case_0.nii.gz"), "--out", str(out)]
    assert main([*argv, "--tile-size", "8x16x16", "--no-tta", "--threshold", "0.5"]) == 0
    volume = read_volume(scans / "case_0.nii.gz")
    probabilities = predict_tiled(
        keras.saving.load_model(volume_model),
        normalize_volume(volume.array),
        tile_size=(8, 16, 16),
    )
    written = read_volume(out / "masks" / "case_0.nii.gz").array[..., 0]
    np.testing.assert_array_equal(written, probabilities[..., 0] >= 0.5)


def test_predict_reads_tiff_stacks_for_a_volume_model(volume_model, tmp_path):
    stack = tmp_path / "stack.tif"
    scan = _scan().astype("uint16")
    tifffile.imwrite(stack, scan, imagej=True, resolution=(2.0, 2.0), metadata={"axes": "ZYX"})
    out = tmp_path / "out"
    before = checksums(stack)
    assert main(["predict", "--model", volume_model, str(stack), "--out", str(out)]) == 0
    assert checksums(stack) == before
    with tifffile.TiffFile(out / "masks" / "stack.tif") as written:
        assert written.asarray().shape == SHAPE
        assert written.pages[0].tags["XResolution"].value == (2, 1)


def test_predict_refuses_an_out_folder_among_the_volumes(volume_model, scans, capsys):
    argv = ["predict", "--model", volume_model, str(scans), "--out", str(scans / "out")]
    assert main(argv) == 1
    assert "outputs never go among the inputs" in error_line(capsys)
    assert sorted(os.listdir(scans)) == ["case_0.nii.gz", "case_1.nii"]


def _save_nifti(path, array, spacing):
    affine = np.diag([spacing[2], spacing[1], spacing[0], 1.0])  # (x, y, z) zooms
    image = nibabel.Nifti1Image(array.transpose(2, 1, 0), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nibabel.save(image, path)


@pytest.fixture()
def volume_pairs(tmp_path):
    """`val/images` and `val/masks` of two NIfTI pairs of different spacings."""
    root = tmp_path / "volumes"
    for index, spacing in enumerate([(2.5, 0.7, 0.8), (1.0, 1.0, 1.0)]):
        for kind in ("images", "masks"):
            (root / "val" / kind).mkdir(parents=True, exist_ok=True)
        scan = _scan(index)
        _save_nifti(root / "val" / "images" / f"case_{index}.nii.gz", scan, spacing)
        mask = np.zeros(SHAPE, "uint8")
        mask[5:14, 6:18, 3:16] = 1  # the bright box, one voxel wider on each side

        _save_nifti(root / "val" / "masks" / f"case_{index}.nii.gz", mask, spacing)
    return root


def test_evaluate_scores_each_volume_at_its_files_spacing(volume_model, volume_pairs, tmp_path):
    import json

    from keras_unet_seg.data import normalize_volume, read_volume
    from keras_unet_seg.evaluation import segmentation_scores
    from keras_unet_seg.inference import predict_tiled

    before = checksums(volume_pairs, volume_model)
    report, scores = tmp_path / "report", tmp_path / "scores.json"
    argv = ["evaluate", "--model", volume_model, "--data", str(volume_pairs), "--no-tta"]
    argv += ["--tile-size", "16", "--report", str(report), "--json", str(scores)]
    assert main(argv) == 0
    assert checksums(volume_pairs, volume_model) == before
    written = json.loads(scores.read_text())
    assert written["num_images"] == 2
    model = keras.saving.load_model(volume_model)
    for row in written["per_image"]:
        volume = read_volume(row["image"])
        probabilities = predict_tiled(model, normalize_volume(volume.array), 16)
        truth = read_volume(row["mask"]).array[..., 0]
        expected = segmentation_scores(
            truth, (probabilities[..., 0] >= 0.5).astype("uint8"), 2, spacing=volume.spacing
        )
        assert 0 < expected[1]["hd95"] < np.inf
        assert row["classes"]["1"]["hd95"] == pytest.approx(expected[1]["hd95"])
        assert row["classes"]["1"]["dice"] == pytest.approx(expected[1]["dice"])
        if volume.spacing != (1.0, 1.0, 1.0):  # the file's spacing counts, not 1
            at_one = segmentation_scores(truth, probabilities[..., 0] >= 0.5, 2)
            assert at_one[1]["assd"] != pytest.approx(row["classes"]["1"]["assd"])
    html = (report / "report.html").read_text()
    assert html.count("data:image/png") >= 2 * 4  # four thumbnails a volume: middle slices
    assert json.loads((report / "summary.json").read_text())["details"]["spacing"] == "each file's"


def test_train_on_volumes_then_predict_with_the_run(volume_pairs, tmp_path):
    """`--image-size DxHxW` trains a 3D UNet on patches; predict reads the run's options."""
    import json
    import shutil

    shutil.copytree(volume_pairs / "val", volume_pairs / "train")
    before = checksums(volume_pairs)
    run = tmp_path / "run"
    argv = ["train", "--data", str(volume_pairs), "--out", str(run), "--image-size", "8x16x16"]
    argv += ["--base-filters", "4", "--depth", "2", "--batch-size", "2", "--epochs", "1"]
    assert main([*argv, "--steps-per-epoch", "2"]) == 0
    assert checksums(volume_pairs) == before
    model = keras.saving.load_model(run / "model.keras")
    assert model.get_build_config()["input_shape"] == [None, None, None, None, 1]
    config = json.loads((run / "config.json").read_text())
    assert config["image_size"] == [8, 16, 16] and config["input_channels"] == 1
    from keras_unet_seg.cli import build_parser
    from keras_unet_seg.commands import predict

    args = build_parser().parse_args(["predict", "x.nii", "--model", "m", "--out", "o"])
    run_config = (str(run / "config.json"), config)
    assert predict.tile_size(args, model, run_config) == (8, 16, 16)  # the run's patches
    out = tmp_path / "predicted"
    scan = volume_pairs / "val" / "images" / "case_0.nii.gz"
    assert main(["predict", "--model", str(run / "model.keras"), str(scan), "--out", str(out)]) == 0
    assert _header_facts(out / "masks" / "case_0.nii.gz") == _header_facts(scan)


def test_demo_on_volumes_trains_a_3d_unet_and_writes_middle_slices(tmp_path):
    import json

    out = tmp_path / "demo"
    argv = ["demo", "--volumes", "--out", str(out), "--epochs", "1", "--image-size", "16x16x24"]
    argv += ["--num-train", "2", "--num-val", "1", "--base-filters", "4"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_validation_images"] == 1
    assert 0.0 <= metrics["validation"]["dice"] <= 1.0
    assert (out / "overlays" / "case_000.png").is_file()
    assert (out / "report" / "report.html").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["image_size"] == [16, 16, 24]
    assert temporary_files(out) == []


@pytest.fixture(scope="module")
def volume_run(tmp_path_factory):
    """A run's `best.keras`, a 3D UNet (4 filters, depth 2), beside its `config.json`
    (8x16x16 patches).

    Not `volume_model`: tf2onnx writes such a one-convolution model with its output's
    Squeeze left out now and then (an extra leading axis, 2D models too; the export's
    check refuses the file), a UNet's output not in 20 exports of 20.
    """
    import json

    keras.utils.set_random_seed(0)
    model = UNet(base_filters=4, depth=2, num_classes=1)
    model.build((None, None, None, None, 1))
    run = tmp_path_factory.mktemp("run")
    model.save(run / "best.keras")
    config = {"image_size": [8, 16, 16], "input_channels": 1, "intensity": "auto"}
    (run / "config.json").write_text(json.dumps(config))
    return run


def _clear_threshold(model_path, folder):
    """A threshold that no voxel's probability (by `predict`'s tiles and flips) of the
    volumes in `folder` comes within 5e-6 of: the middle of the widest gap between
    them, among the middle half. The masks of two runtimes then agree whatever their
    float32 rounding (at most 4e-7 measured)."""
    from keras_unet_seg.data import normalize_volume, read_volume
    from keras_unet_seg.inference import predict_tiled

    model = keras.saving.load_model(model_path)
    probabilities = np.sort(
        np.concatenate(
            [
                predict_tiled(
                    model, normalize_volume(read_volume(path).array), (8, 16, 16), tta=True
                ).ravel()
                for path in sorted(folder.iterdir())
            ]
        )
    )
    middle = probabilities[len(probabilities) // 4 : 3 * len(probabilities) // 4]
    widest = int(np.argmax(np.diff(middle)))
    assert middle[widest + 1] - middle[widest] > 1e-5
    return f"{(middle[widest] + middle[widest + 1]) / 2:.6f}"


def test_export_a_volume_run_then_predict_and_evaluate_with_the_export(
    volume_run, scans, volume_pairs, tmp_path
):
    """The ONNX export of a volume run, run by `predict` and `evaluate` on NIfTI files,
    writes the masks and scores of the `.keras` file: the same tiles (the run's patches)."""
    import json

    best, onnx = str(volume_run / "best.keras"), tmp_path / "export" / "model.onnx"
    threshold = ["--threshold", _clear_threshold(best, scans)]  # volume_pairs: the same scans
    before = checksums(scans, volume_pairs, volume_run)
    argv = ["export", "--model", best, "--format", "onnx", "--out", str(onnx), *threshold]
    assert main([*argv, "--images", str(scans / "case_0.nii.gz")]) == 0
    written = json.loads((tmp_path / "export" / "model.onnx.json").read_text())
    assert written["input"]["shape"] == [None, None, None, None, 1]
    assert written["inference"]["tile_size"] == [8, 16, 16]  # the run's training patch
    assert written["parity"]["image_sizes"] == [list(SHAPE)]
    assert written["parity"]["mask_pixels_differing"] == 0
    assert temporary_files(tmp_path / "export") == []
    from keras_unet_seg.cli import build_parser
    from keras_unet_seg.commands import _exported, predict

    args = build_parser().parse_args(["predict", "x.nii", "--model", str(onnx), "--out", "o"])
    model, run_config = _exported.load(str(onnx), "onnx")
    assert predict.tile_size(args, model, run_config) == (8, 16, 16)  # as for best.keras

    masks, dice = [], []
    for model in (best, str(onnx)):
        out = tmp_path / f"predicted_{os.path.basename(model)}"
        assert main(["predict", "--model", model, str(scans), "--out", str(out), *threshold]) == 0
        masks.append({os.path.basename(path): sha for path, sha in checksums(out).items()})
        scores = tmp_path / f"scores_{os.path.basename(model)}.json"
        argv = ["evaluate", "--model", model, "--data", str(volume_pairs), *threshold]
        assert main([*argv, "--json", str(scores)]) == 0
        dice.append(
            [row["classes"]["1"]["dice"] for row in json.loads(scores.read_text())["per_image"]]
        )
    assert {"case_0.nii.gz", "case_1.nii"} <= set(masks[0])
    assert masks[1] == masks[0]  # the same voxels and header, byte for byte
    assert dice[1] == dice[0]
    assert checksums(scans, volume_pairs, volume_run) == before  # nothing the user wrote


@pytest.mark.parametrize(
    ("options", "status", "message"),
    [
        (["--format", "litert"], 1, "FlexMaxPool3D, that the LiteRT interpreter cannot run"),
        (["--format", "onnx", "--image-size", "16x24"], 2, "--image-size 16x24 has 2 sides"),
        (
            ["--format", "onnx", "--quantize", "int8", "--calibration", "."],
            2,
            "--quantize int8 is for models built on images",
        ),
    ],
)
def test_export_refuses_what_a_volume_model_cannot_take(
    volume_run, tmp_path, capsys, options, status, message
):
    out = tmp_path / "export"
    out.mkdir()
    argv = ["export", "--model", str(volume_run / "best.keras"), "--out", str(out / "m.onnx")]
    assert main([*argv, *options]) == status
    assert message in error_line(capsys)
    assert os.listdir(out) == []


def test_export_names_an_images_file_of_other_channels(volume_run, tmp_path, capsys):
    import nibabel

    scan = tmp_path / "two_channels.nii.gz"
    data = np.random.default_rng(0).random((20, 24, 16, 2), dtype="float32")
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), scan)
    out = tmp_path / "export"
    out.mkdir()
    argv = ["export", "--model", str(volume_run / "best.keras"), "--format", "onnx"]
    assert main([*argv, "--out", str(out / "m.onnx"), "--images", str(scan)]) == 2
    assert f"--images '{scan}' has 2 channels; the model takes 1" in error_line(capsys)
    assert os.listdir(out) == []
