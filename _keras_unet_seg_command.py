"""The entry point of the `keras-unet-seg` command: a quiet start, then `keras_unet_seg.cli`.

TensorFlow writes C++ log lines to the terminal when it is imported and when it
first looks for devices (CUDA probes that fail on a CPU machine, CPU features).
The command hides them unless `--verbose` is given: TensorFlow's C++ log level is
set to 3 and TensorFlow imported with the stderr file descriptor pointed at
`/dev/null`, before Keras imports it. Importing `keras_unet_seg` imports Keras, so
this module sits beside the package rather than in it; importing the library
changes nothing. A Python exception raised by the import still shows.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def _stderr_to_devnull():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _quiet_start():
    """TensorFlow's C++ log level 3, and its import with stderr silenced."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # TensorFlow itself exports "1" to children
    with _stderr_to_devnull(), contextlib.suppress(ImportError):
        import tensorflow  # noqa: F401


def main(argv=None):
    """Runs the command line `argv` (default `sys.argv[1:]`); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--verbose" not in argv and "tensorflow" not in sys.modules:
        _quiet_start()
    from keras_unet_seg.cli import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
