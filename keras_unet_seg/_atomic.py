"""Atomic writes: every output goes to a temporary file in its folder, then `os.replace`.

A reader (or a crash) never sees a half-written model, JSON or PNG: the final name
points either to the old complete file or to the new complete one.
"""

import contextlib
import json
import math
import os
import re
import secrets
import shutil

from keras_unet_seg import _outputs


def temporary_name(path):
    """A hidden, unique name next to `path` that keeps its extension (`.keras` needs it)."""
    directory, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    return os.path.join(directory, f".{stem}.{secrets.token_hex(4)}.tmp{extension}")


def is_temporary_name(name):
    """Whether a file name is one `temporary_name` makes (left by an interruption)."""
    return re.fullmatch(r"\..*\.[0-9a-f]{8}\.tmp(\.[^.]*)?", name) is not None


@contextlib.contextmanager
def atomic_path(path, siblings=()):
    """Yields a temporary path to write; on success it replaces `path` in one step.

    The folder of `path` is created if needed. A folder written at the temporary
    path (a SavedModel) replaces the folder `path`. `siblings` are the extensions of
    files the writer puts beside the temporary file (OpenVINO's `.bin` beside its
    `.xml`); they replace those beside `path` first. Each file is recorded (inside
    `_outputs.recording`) before it replaces the old one. On any error (or
    interruption) the temporary files are removed and `path` is left as it was.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = temporary_name(path)
    moves = [
        *((_sibling(temporary, extension), _sibling(path, extension)) for extension in siblings),
        (temporary, path),
    ]
    try:
        yield temporary
        for source, target in moves:
            _fsync(source)
            _outputs.record(target, source)
            _replace(source, target)
    except BaseException:
        for source, _ in moves:
            _remove(source)
        raise


def _sibling(path, extension):
    return os.path.splitext(path)[0] + extension


def _replace(source, target):
    if not os.path.isdir(source):
        os.replace(source, target)
        return
    old = temporary_name(target) if os.path.isdir(target) else None
    if old:  # a folder cannot replace a folder in one step: the old one is moved aside
        os.rename(target, old)
    os.rename(source, target)
    if old:
        shutil.rmtree(old)


def _remove(path):
    with contextlib.suppress(FileNotFoundError):
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _fsync(path):
    files = [path]
    if os.path.isdir(path):
        files = [os.path.join(folder, name) for folder, _, names in os.walk(path) for name in names]
    for file in files:
        with open(file, "rb") as f:
            os.fsync(f.fileno())


def json_safe(value):
    """`value` with non-finite floats as `None` (standard JSON has no Infinity)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, data):
    """Writes `data` as standard JSON (infinite and NaN floats as null), atomically."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        json.dump(json_safe(data), f, indent=2, sort_keys=False, allow_nan=False)
        f.write("\n")


def save_model(model, path):
    with atomic_path(path) as temporary:
        model.save(temporary)


def save_png(path, array):
    """Saves a uint8 `(h, w)`, `(h, w, 1)`, `(h, w, 3)` or `(h, w, 4)` array as PNG."""
    from PIL import Image

    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    with atomic_path(path) as temporary:
        Image.fromarray(array).save(temporary, format="PNG")


def save_figure(path, figure, dpi=100):
    """Saves a matplotlib figure; the format comes from the extension."""
    extension = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=extension, dpi=dpi)
