"""The errors the library raises for a user's mistake.

Each names the argument or the file at fault. All are `ValueError`s, so code that
catches `ValueError` keeps working; the `keras-unet-seg` command shows them as one
line, and any other exception (a bug) with its traceback.
"""


class UserError(ValueError):
    """A user's mistake: an argument or a file that the library cannot use."""

    # The constructor `ValueError` shares with `Exception`, named so: TensorFlow's
    # autograph re-raises an error with this one as its own type (others of a
    # function it converts, such as `JointAugmentation.call`, as a `StagingError`).
    __init__ = Exception.__init__


class InvalidArgumentError(UserError):
    """An argument the library refuses (`_validation.invalid_value` words it as Keras does)."""


class DataError(UserError):
    """Files or folders the library cannot use: missing, empty, unreadable or mismatched."""
