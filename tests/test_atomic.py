"""`keras_unet_seg._atomic`: writes that leave the old file or the new one, never half."""

import json
import os

import keras
import numpy as np
import pytest

from keras_unet_seg import _atomic, save_overlays


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
