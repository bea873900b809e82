"""What the command tests share: a small model's options and the checks of a run."""

import hashlib
import os

from keras_unet_seg._outputs import MANIFEST

# A tiny UNet on 32x32 images: seconds per epoch on two CPU cores.
SMALL_MODEL = ["--base-filters", "4", "--depth", "2", "--image-size", "32", "--batch-size", "4"]
# One pass over the tests' few images an epoch (the default is 25 steps, whatever the images).
SMALL_MODEL += ["--steps-per-epoch", "0"]


def error_line(capsys):
    """The single line the command printed on stderr for a user mistake."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("keras-unet-seg: error: "), lines[0]
    return lines[0]


def temporary_files(folder):
    """Temporary and hidden files left in `folder` (but the list of the files the
    library wrote): none may outlive a command."""
    return [
        os.path.join(dirpath, name)
        for dirpath, _, names in os.walk(folder)
        for name in names
        if ".tmp" in name or (name.startswith(".") and name != MANIFEST)
    ]


def checksums(*paths):
    """`{path: SHA-256}` of the files `paths` and of every file in the folders `paths`."""
    files = []
    for path in map(str, paths):
        if os.path.isdir(path):
            files += [os.path.join(d, name) for d, _, names in os.walk(path) for name in names]
        else:
            files.append(path)
    return {path: hashlib.sha256(open(path, "rb").read()).hexdigest() for path in sorted(files)}


def train_namespace(argv):
    """`train`'s parsed options of `argv`, as `keras_unet_seg.cli.main` gives them."""
    from keras_unet_seg.cli import build_parser

    args = build_parser().parse_args(["train", *argv])
    args._argv = argv
    return args
