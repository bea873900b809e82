"""`keras_unet_seg._atomic`: writes that leave the old file or the new one, never half;
`keras_unet_seg._outputs`: the list of the files the library wrote."""

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_unet_seg import _atomic, _outputs, save_overlays


def test_written_files_follow_the_umask(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    (path,) = save_overlays(np.zeros((1, 4, 4, 3), "uint8"), np.ones((1, 4, 4, 1)), tmp_path)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    _atomic.write_json(target, {"dice": 1.0})
    with pytest.raises(RuntimeError), _atomic.atomic_path(target) as temporary:
        with open(temporary, "w") as f:
            f.write("{half")
        raise RuntimeError("interrupted")
    assert target.read_text() == '{\n  "dice": 1.0\n}\n'
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "metrics.json"
    _atomic.write_json(path, {"dice": 0.5})

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        _atomic.write_json(path, {"dice": Unserialisable()})  # fails half-way through
    assert json.loads(path.read_text()) == {"dice": 0.5}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_atomic_model_save_leaves_no_temporary_file(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    _atomic.save_model(model, tmp_path / "m.keras")
    assert os.listdir(tmp_path) == ["m.keras"]
    assert (os.stat(tmp_path / "m.keras").st_mode & 0o777) == (
        0o666 & ~_umask()
    )  # the usual permissions, not mkstemp's 0600


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_folder_and_its_siblings_replace_the_old_ones_in_one_step_each(tmp_path):
    for version in ("old", "new"):
        with _atomic.atomic_path(tmp_path / "saved") as temporary:
            os.mkdir(temporary)
            (Path(temporary) / "saved_model.pb").write_text(version)
        with _atomic.atomic_path(tmp_path / "model.xml", siblings=(".bin",)) as temporary:
            Path(temporary).write_text(version)
            Path(temporary).with_suffix(".bin").write_text(version)
    assert sorted(os.listdir(tmp_path)) == ["model.bin", "model.xml", "saved"]
    assert os.listdir(tmp_path / "saved") == ["saved_model.pb"]
    for path in ("saved/saved_model.pb", "model.xml", "model.bin"):
        assert (tmp_path / path).read_text() == "new"


def test_files_written_while_recording_are_listed_before_they_replace_the_old(tmp_path):
    mask = tmp_path / "masks" / "a.png"
    with _outputs.recording(tmp_path):
        _atomic.write_json(mask, {"version": 1})
        with pytest.raises(RuntimeError), _atomic.atomic_path(mask) as temporary:
            Path(temporary).write_text("version 2")
            raise RuntimeError("interrupted")
    _atomic.write_json(tmp_path / "unlisted.json", {})  # outside `recording`
    listed = _outputs.recorded(tmp_path)
    assert list(listed) == ["masks/a.png"]
    assert _outputs.written_by_library(mask, tmp_path)
    assert not _outputs.written_by_library(tmp_path / "unlisted.json", tmp_path)
    # A line cut short by an interruption counts for nothing; the next one does.
    with open(tmp_path / _outputs.MANIFEST, "a") as f:
        f.write("0123abc")
    assert _outputs.recorded(tmp_path) == listed
    with _outputs.recording(tmp_path):
        _atomic.write_json(tmp_path / "b.json", {})
    assert _outputs.written_by_library(tmp_path / "b.json", tmp_path)
    mask.write_text("the user's edit")
    assert not _outputs.written_by_library(mask, tmp_path)
