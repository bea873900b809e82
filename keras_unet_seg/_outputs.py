"""Which existing files the library may replace: only those it wrote, never an input.

An output folder (`predict --out`, a run folder, an evaluation report, the folder of
an export) holds `.keras-unet-seg.sha256`: the SHA-256 of each file the library
wrote below it, one line `<sha256>  <relative path>` a file (the format of
`sha256sum -c`; a SavedModel folder's checksum covers its files). Inside
`recording(folder)`, every file `_atomic.atomic_path` writes below `folder` is
recorded, in one appended line, before it replaces the old file: an interruption
never leaves a file of the library unrecorded, and a line it cuts short counts for
nothing (the next line starts on a line of its own).

An existing file counts as the library's when its content is one the list records
under its path; a file the user made, or changed since, is never replaced
(`check_writable`), even with `overwrite=True`. Outputs never overlap an input
(`check_outside_inputs`).
"""

import contextlib
import contextvars
import hashlib
import os

from keras_unet_seg._errors import InvalidArgumentError

MANIFEST = ".keras-unet-seg.sha256"
_SHOWN = 5
_ROOT = contextvars.ContextVar("keras_unet_seg_output_root", default=None)


def checksum(path):
    """The SHA-256 of a file, or of a folder's files (their relative paths and contents)."""
    digest = hashlib.sha256()
    if not os.path.isdir(path):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    for folder, subfolders, names in os.walk(path):
        subfolders.sort()
        for name in sorted(names):
            file = os.path.join(folder, name)
            digest.update(os.path.relpath(file, path).encode() + b"\0")
            digest.update(checksum(file).encode())
    return digest.hexdigest()


@contextlib.contextmanager
def recording(folder):
    """Records in `folder`'s list the files written below it (`record`) in the block."""
    token = _ROOT.set(os.path.abspath(folder))
    try:
        yield
    finally:
        _ROOT.reset(token)


def record(path, content):
    """Records the file (or folder) `content` as written at `path`, if `path` lies
    below the folder of `recording`. `_atomic.atomic_path` calls it before the rename."""
    root = _ROOT.get()
    path = os.path.abspath(path)
    if root is None or not _inside(path, root):
        return
    line = f"{checksum(content)}  {_relative(path, root)}\n".encode()
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT
    descriptor = os.open(os.path.join(root, MANIFEST), flags, 0o666)
    try:
        size = os.fstat(descriptor).st_size
        if size and os.pread(descriptor, 1, size - 1) != b"\n":  # a line cut short
            line = b"\n" + line
        os.write(descriptor, line)  # one write: the line whole, or cut short
    finally:
        os.close(descriptor)


def recorded(root):
    """`{relative path: {sha256, ...}}` of the list of `root` (empty if none)."""
    recorded = {}
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        with open(os.path.join(root, MANIFEST), encoding="utf-8") as f:
            for line in f.read().splitlines():
                digest, separator, name = line.partition("  ")
                if separator and len(digest) == 64:
                    recorded.setdefault(name, set()).add(digest)
    return recorded


def written_by_library(path, root, listed=None):
    """Whether `path` exists with content the library recorded writing there (in the
    list of `root`: `recorded(root)`, read again unless `listed` gives it)."""
    listed = recorded(root) if listed is None else listed
    digests = listed.get(_relative(os.path.abspath(path), os.path.abspath(root)), ())
    return os.path.lexists(path) and checksum(path) in digests


def check_writable(paths, overwrite, root, out, option="output_dir", flag="overwrite=True"):
    """Raises `FileExistsError` unless each of `paths` (below the folder `root`) is
    new, or the library's and `overwrite`. `out` (given as `option`) and `flag` word
    the error."""
    existing = [path for path in paths if os.path.lexists(path)]
    listed = recorded(root) if existing else {}
    foreign = [path for path in existing if not written_by_library(path, root, listed)]
    if foreign:
        they = "it" if len(foreign) == 1 else "they"
        raise FileExistsError(
            f"{option} '{out}': keras-unet-seg did not write {_names(foreign, root)} (or "
            f"{they} changed since), and it never replaces a file it did not write; choose "
            f"another {option}."
        )
    if existing and not overwrite:
        them = "it" if len(existing) == 1 else "them"
        raise FileExistsError(
            f"{option} '{out}': keras-unet-seg wrote {_names(existing, root)} before; pass "
            f"{flag} to replace {them}, or choose another {option}."
        )


def _names(paths, root):
    shown = [f"'{_relative(os.path.abspath(path), os.path.abspath(root))}'" for path in paths]
    more = f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
    return ", ".join(shown[:_SHOWN]) + more


def check_outside_inputs(targets, inputs, out, option="output_dir"):
    """Raises `ValueError` if a path to write (a file, or a folder written into) is an
    input, lies inside an input folder, or holds an input."""
    for target in targets:
        written = os.path.realpath(target)
        for source in inputs:
            read = os.path.realpath(source)
            if written == read:
                raise InvalidArgumentError(
                    f"{option} '{out}' would overwrite the input '{source}'; inputs are never "
                    f"overwritten: choose another {option}."
                )
            if _inside(written, read) or _inside(read, written):
                raise InvalidArgumentError(
                    f"{option} '{out}' would write '{target}', which overlaps the input "
                    f"'{source}'; outputs never go among the inputs: choose another {option}."
                )


def _inside(path, folder):
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _relative(path, root):
    return os.path.relpath(path, root).replace(os.sep, "/")
