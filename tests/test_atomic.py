import os

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
