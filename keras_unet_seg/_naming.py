"""How a message names an option: a Python argument, or the command's flag.

The library's messages say `` `overwrite=True` ``; inside `as_flags()`, which the
commands enter, the same message says `--overwrite`. The switch is process-wide,
so that messages made in the library's worker threads (the checks of the files)
follow it too.
"""

import contextlib

_flags = False
_NO_VALUE = object()


@contextlib.contextmanager
def as_flags():
    """Messages made in this block name options as command-line flags."""
    global _flags
    before, _flags = _flags, True
    try:
        yield
    finally:
        _flags = before


def option(name, value=_NO_VALUE):
    """`name` (with `value`) as a message names it: `` `name=value` `` or `--name value`.

    A value of `True` is the flag alone (`--resume`); `...` stands for any value.

    >>> option("overwrite", True), option("on_error", "skip"), option("epochs", ...)
    ('`overwrite=True`', "`on_error='skip'`", '`epochs=...`')
    >>> with as_flags():
    ...     option("overwrite", True), option("on_error", "skip"), option("epochs", ...)
    ('--overwrite', '--on-error skip', '--epochs ...')
    """
    shown = "..." if value is ... else value
    if not _flags:
        if value is _NO_VALUE:
            return f"`{name}`"
        return f"`{name}={shown if value is ... else repr(value)}`"
    flag = "--" + name.replace("_", "-")
    return flag if value is _NO_VALUE or value is True else f"{flag} {shown}"
