"""`evaluate --report`: the HTML page, the CSV and the JSON, opened in headless Chromium."""

import csv
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from keras_unet_seg.cli import main
from keras_unet_seg.data import make_synthetic_dataset
from keras_unet_seg.evaluation import confusion_matrix, segmentation_scores, summarize
from keras_unet_seg.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Headless Chromium on a machine without network: no background connections.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _records():
    rng = np.random.default_rng(0)
    records = []
    for index, shift in enumerate((0, 2, 6)):
        truth = np.zeros((24, 24), np.int64)
        truth[4:12, 4:12], truth[14:20, 10:20] = 1, 2
        prediction = np.roll(truth, shift, axis=1)
        if index == 2:
            prediction[prediction == 2] = 0  # class 2 missed: an infinite HD95
        records.append(
            {
                "name": f"img{index}.png",
                "image": rng.random((24, 24, 3)).astype(np.float32),
                "truth": truth,
                "prediction": prediction,
                "scores": segmentation_scores(truth, prediction, 3),
            }
        )
    return records


def test_write_report_writes_the_page_csv_and_json(tmp_path):
    records = _records()
    confusion = sum(confusion_matrix(r["truth"], r["prediction"], 3) for r in records)
    summary = summarize([r["scores"] for r in records])
    paths = write_report(
        tmp_path, records, summary, confusion, class_names=["bg", "cell", "nucleus"]
    )
    with open(paths["csv"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [row["image"] for row in rows] == ["img0.png", "img1.png", "img2.png"]
    assert float(rows[0]["dice_cell"]) == pytest.approx(1.0)
    assert rows[2]["hd95_nucleus"] == "inf"
    with open(paths["json"], encoding="utf-8") as f:
        document = json.load(f)  # standard JSON: the infinite HD95 is null
    assert document["classes"]["nucleus"]["infinite"] == 1
    assert document["confusion_matrix"] == confusion.tolist()
    page = open(paths["html"], encoding="utf-8").read()
    assert page.count("data:image/png;base64,") == 4 * len(records)
    assert "http" not in page.replace("http-equiv", "")  # nothing from the network
    assert '<table id="images" data-initial="2">' in page


@pytest.fixture(scope="module")
def three_class_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("three")
    data = make_synthetic_dataset(
        root / "data", num_train=8, num_val=3, image_size=(32, 32), num_classes=3, seed=0
    )
    run = root / "run"
    options = ["--base-filters", "4", "--depth", "2", "--image-size", "32", "--batch-size", "4"]
    args = ["train", "--data", data, "--out", str(run), "--num-classes", "3", *options]
    assert main([*args, "--epochs", "1", "--steps-per-epoch", "0", "--no-augment"]) == 0
    return data, run


def test_evaluate_report_through_the_command(three_class_run, tmp_path, capsys):
    data, run = three_class_run
    report = tmp_path / "report"
    scores = tmp_path / "scores.json"
    args = ["evaluate", "--model", str(run / "best.keras"), "--data", data]
    assert main([*args, "--report", str(report), "--spacing", "0.5", "--json", str(scores)]) == 0
    output = capsys.readouterr().out
    assert re.search(r"^1\s+[0-9.]+\s+[0-9.]+", output, re.M)  # the per-class table
    assert sorted(os.listdir(report)) == [
        ".keras-unet-seg.sha256",  # what the command wrote there, and may replace
        "per_image.csv",
        "report.html",
        "summary.json",
    ]
    with open(report / "summary.json", encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["num_images"] == 3 and set(summary["classes"]) == {"class 1", "class 2"}
    assert summary["details"]["spacing"] == "0.5x0.5"
    with open(scores, encoding="utf-8") as f:
        assert set(json.load(f)["classes"]) == {"1", "2"}


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium)")
def test_report_opens_in_headless_chromium(three_class_run, tmp_path):
    data, run = three_class_run
    report = tmp_path / "report"
    args = ["evaluate", "--model", str(run / "best.keras"), "--data", data]
    assert main([*args, "--report", str(report)]) == 0
    url = (report / "report.html").as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, *profile, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    # The script ran: the image table is sorted by mean Dice, ascending (worst first).
    assert re.search(r'<th data-sortable="" class="sorted">dice \(mean\)</th>', dom), dom[:2000]
    body = dom[dom.index('<table id="images"') :]
    means = [float(v) for v in re.findall(r'<td class="mean" data-value="([0-9.]+)">', body)]
    assert len(means) == 3 and means == sorted(means)
    assert dom.count('src="data:image/png;base64,') == 12
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, *profile, f"--screenshot={screenshot}",
         "--window-size=1280,1600", url],
        capture_output=True,
        timeout=120,
        check=True,
    )  # fmt: skip
    from PIL import Image

    pixels = np.asarray(Image.open(screenshot).convert("RGB"))
    assert pixels.shape[:2] == (1600, 1280)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text, tables, thumbnails
    # The page fits a 1280-pixel window (its image table, of 3 classes, was 3236 wide).
    probe = report / "probe.html"
    probe.write_text(
        (report / "report.html")
        .read_text(encoding="utf-8")
        .replace("</body>", "<script>document.title = document.body.scrollWidth;</script></body>"),
        encoding="utf-8",
    )
    dom = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, *profile, "--window-size=1280,1600", "--dump-dom",
         probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout  # fmt: skip
    assert int(re.search(r"<title>(\d+)</title>", dom).group(1)) <= 1280
