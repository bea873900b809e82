"""Validation Dice of int8 exports against their float32 models, on trained models.

    python benchmarks/bench_int8_quality.py                       # demo, nuclei, coins
    python benchmarks/bench_int8_quality.py --models nuclei --keep-float head

Run by hand, never in CI. Each model is trained by the commands with their defaults,
then exported with `keras-unet-seg export --format onnx --quantize int8 --calibration
DATA` (calibrated on the `train` images, checked on the `val` ones; `--max-dice-drop 1`
so that every figure is printed), and the Dice of each against the truth read back
from the export's JSON file:

- `demo`: `keras-unet-seg demo` (synthetic shapes, 8-bit RGB);
- `nuclei`: `keras-unet-seg train --data DIR` on the 16-bit fluorescence tiles of
  `benchmarks/bench_quality.py` (8 train, 8 validate);
- `coins`: the same on the 8-bit coins photograph's tiles.

Prints a Markdown table: Dice of float32 and int8, the drop, the mask pixels that
differ, what stayed in float32, and the load average.
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from bench_quality import DATASETS, _command


def trained(name, work, seed):
    """`(model file, data folder)` of a model trained by the commands' defaults."""
    if name == "demo":
        out = os.path.join(work, "demo")
        _command("demo", "--out", out, "--seed", str(seed))
        return os.path.join(out, "best.keras"), os.path.join(out, "data")
    data = DATASETS[name](os.path.join(work, name, "data"))
    run = os.path.join(work, name, "run")
    _command("train", "--data", data, "--out", run, "--seed", str(seed))
    return os.path.join(run, "best.keras"), data


def quantized(model, data, out, keep_float):
    """The `quantization` entry of the int8 export's JSON file."""
    argv = ["export", "--model", model, "--format", "onnx", "--out", out]
    argv += ["--quantize", "int8", "--calibration", data, "--max-dice-drop", "1"]
    if keep_float:
        argv += ["--keep-float", *keep_float]
    _command(*argv)
    with open(out + ".json") as file:
        return json.load(file)["quantization"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["demo", "nuclei", "coins"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep-float", nargs="*", default=[], help="export --keep-float's layers, or none"
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.models:
            model, data = trained(name, work, args.seed)
            record = quantized(model, data, os.path.join(work, f"{name}.onnx"), args.keep_float)
            quality = record["quality"]
            rows.append(
                f"| {name} | {len(quality['validation_images'])} | {quality['dice_float32']:.4f} "
                f"| {quality['dice_int8']:.4f} | {quality['dice_drop']:+.4f} "
                f"| {quality['mask_pixels_differing_fraction']:.4%} "
                f"| {', '.join(record['kept_in_float32']) or '-'} | {os.getloadavg()[0]:.1f} |"
            )
            print(rows[-1], flush=True)
    print(
        "\n| model | val images | Dice float32 | Dice int8 | drop | mask px differing "
        "| kept in float32 | load |\n|---|---|---|---|---|---|---|---|"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
