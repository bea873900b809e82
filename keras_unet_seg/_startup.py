"""A quiet start for the `keras-unet-seg` command.

TensorFlow writes C++ log lines to the terminal when it is imported and when it
first looks for devices (oneDNN notes, CPU features, CUDA probes that fail on a CPU
machine). The command hides them unless `--verbose` is given: the log level is set
and TensorFlow imported with the stderr file descriptor pointed at `/dev/null`,
which must happen before Keras imports TensorFlow, that is when `keras_unet_seg`
itself is imported. A Python exception raised by the import still shows.
"""

import contextlib
import os
import sys


def _is_quiet_command():
    return os.path.basename(sys.argv[0]) == "keras-unet-seg" and "--verbose" not in sys.argv


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


def quiet_command_start():
    """In the command without `--verbose`: TensorFlow's C++ log level 3, a quiet import."""
    if not _is_quiet_command() or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # TensorFlow itself exports "1" to children
    with _stderr_to_devnull(), contextlib.suppress(ImportError):
        import tensorflow  # noqa: F401


quiet_command_start()
