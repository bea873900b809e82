"""The error of a run that cannot start or go on."""


class TrainingError(Exception):
    """A run that cannot start or go on: its folder, its data, a diverged loss, a full disk.

    The message names the file or argument at fault and what to do. It names
    arguments as Python does (`resume=True`); the `train` command shows the
    same message with its flags (`--resume`).
    """
