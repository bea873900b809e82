"""Each script of examples/ runs to the end in its fast mode (a subprocess each)."""

import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

# Script: files it must write into --out.
EXPECTED = {
    "train_binary.py": ["model.keras", "curves.png", "overlays/00000.png", "overlays/00001.png"],
    "custom_block.py": ["se_unet.keras"],
    "predict_large_image.py": ["large_image.png", "large_mask.png", "large_overlay.png"],
}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs_in_fast_mode(script, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, script), "--fast", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for name in EXPECTED[script]:
        assert (out / name).is_file(), f"{script} did not write {name}"
