"""The error of a run that cannot start or go on."""


class TrainingError(Exception):
    """A run that cannot start or go on: its folder, its data, a diverged loss, a full disk.

    The message names the file or argument at fault and what to do; arguments
    are written in backticks (`` `resume=True` ``), which the `train` command
    shows as its flags (`--resume`).
    """
