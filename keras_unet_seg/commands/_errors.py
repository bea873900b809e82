"""The commands' errors, and how `keras_unet_seg.cli.main` words them.

User mistakes raise `UsageError` (exit status 2: a bad option, a bad value, an unknown
name) or `CommandError` (exit status 1: a missing file, an unreadable image, a file
that is not a Keras model); `keras_unet_seg.cli.main` prints them as one line
`keras-unet-seg: error: ...`. Anything else is a bug and keeps its traceback.
"""

import contextlib
import os

PROG = "keras-unet-seg"


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
    """Turns the library's errors of `types` (they name the file or argument at fault:
    `keras_unet_seg._errors.UserError`, `FileExistsError`, ...) into a `CommandError`
    with the same message (and `suffix`); any other error (a bug) keeps its traceback."""
    try:
        yield
    except types as error:
        raise CommandError(f"{error}{suffix}") from None


def require_folder(path, what):
    if not os.path.exists(path):
        raise CommandError(f"{what} '{path}' does not exist.")
    if not os.path.isdir(path):
        raise CommandError(f"{what} '{path}' is not a folder.")
