"""`keras-unet-seg demo`: the whole pipeline on synthetic data, through the functions;
a rerun replaces the demo's own files, never the user's."""

import json
import os

import keras
import pytest

from keras_unet_seg.cli import main

from ._helpers import checksums, error_line, temporary_files


@pytest.mark.slow
def test_demo_writes_model_metrics_overlays_and_curves(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--epochs", "1", "--image-size", "32"]
    argv += ["--num-train", "4", "--num-val", "2", "--base-filters", "4", "--batch-size", "4"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Demo finished" in printed and str(out / "metrics.json") in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["validation"]) == {"dice", "iou", "precision", "recall"}
    assert len(metrics["per_image"]) == 2
    assert sorted(os.listdir(out / "overlays")) == ["00000.png", "00001.png"]
    for name in ("model.keras", "best.keras", "curves.png", "predictions.png", "log.csv"):
        assert (out / name).is_file(), name
    keras.saving.load_model(out / "model.keras")
    assert temporary_files(out) == []
    # The evaluation report of `evaluate --report`, and the scores it printed.
    assert (out / "report" / "report.html").is_file()
    assert "overall (pooled)" in printed and "Scoring" in printed
    assert metrics["validation"]["dice"] == pytest.approx(metrics["classes"]["1"]["dice"], abs=1e-4)

    # A rerun replaces what the demo wrote, and nothing else.
    (out / "notes.txt").write_text("the user's notes")
    notes = checksums(out / "notes.txt")
    assert main(argv) == 0
    assert checksums(out / "notes.txt") == notes


def test_demo_never_replaces_a_users_file(tmp_path, capsys):
    out = tmp_path / "demo"
    (out / "data" / "train" / "images").mkdir(parents=True)
    (out / "metrics.json").write_text('{"my": "metrics"}')
    (out / "data" / "train" / "images" / "00000.png").write_bytes(b"the user's image")
    before = checksums(out)
    assert main(["demo", "--out", str(out)]) == 1
    assert error_line(capsys) == (
        f"keras-unet-seg: error: --out '{out}': keras-unet-seg did not write 'metrics.json' "
        "(or it changed since), and it never replaces a file it did not write; choose "
        "another --out."
    )
    (out / "metrics.json").unlink()
    del before[str(out / "metrics.json")]
    assert main(["demo", "--out", str(out)]) == 1
    assert error_line(capsys).startswith(
        f"keras-unet-seg: error: Folder '{out / 'data'}' holds files that "
        "make_synthetic_dataset did not write where it writes (such as "
    )
    assert checksums(out) == before
