"""The commands' errors, and how `keras_unet_seg.cli.main` words them.

User mistakes raise `UsageError` (exit status 2: a bad option, a bad value, an unknown
name) or `CommandError` (exit status 1: a missing file, an unreadable image, a file
that is not a Keras model); `keras_unet_seg.cli.main` prints them as one line
`keras-unet-seg: error: ...`. Anything else is a bug and keeps its traceback.
"""

import contextlib
import os
import sys

PROG = "keras-unet-seg"
# The data module's arguments as its messages name them, and the options of `train`
# that set them.
_TRAIN_OPTIONS = {
    "on_error='skip'": "--on-error skip",
    "mask_threshold=...": "--mask-threshold T",
    "num_classes=...": "--num-classes N",
}


class CommandError(Exception):
    """A user mistake found while running a command (exit status 1)."""

    exit_code = 1


class Interrupted(CommandError):
    """The user interrupted a command (Ctrl-C); exit status 130 as a shell gives."""

    exit_code = 130


class UsageError(CommandError):
    """A mistake in the command line or a config file (exit status 2)."""

    exit_code = 2


def one_line(message):
    """Joins a possibly multi-line message into one line; the items of a list in it
    (lines indented by two spaces, such as bad files) stay one a line."""
    lines = []
    for line in str(message).splitlines():
        item = line.startswith("  ") and bool(line.strip())
        if item or not lines or lines[-1].startswith("  "):
            lines.append(line.rstrip() if item else " ".join(line.split()))
        else:
            lines[-1] = " ".join(f"{lines[-1]} {line}".split())
    return "\n".join(line for line in lines if line)


@contextlib.contextmanager
def user_errors(*types, suffix=""):
    """Turns the library's errors of `types` (they name the file or argument at fault)
    into a `CommandError` with the same message (and `suffix`)."""
    try:
        yield
    except types as error:
        raise CommandError(f"{error}{suffix}") from None


def require_folder(path, what):
    if not os.path.exists(path):
        raise CommandError(f"{what} '{path}' does not exist.")
    if not os.path.isdir(path):
        raise CommandError(f"{what} '{path}' is not a folder.")


def with_train_options(message):
    """`message` of the data module, naming `train`'s options instead of its arguments."""
    message = str(message)
    for argument, option in _TRAIN_OPTIONS.items():
        message = message.replace(argument, option)
    return message


@contextlib.contextmanager
def train_options_printed():
    """What the data module prints meanwhile names `train`'s options (`with_train_options`)."""
    with contextlib.redirect_stdout(_Rewriting(sys.stdout)):
        yield


class _Rewriting:
    """A text stream that writes to `stream` through `with_train_options`."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        return self.stream.write(with_train_options(text))

    def __getattr__(self, name):
        return getattr(self.stream, name)
