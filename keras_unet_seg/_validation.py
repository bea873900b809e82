"""Argument checks of the whole package, and their one message format.

Every refused argument raises an `InvalidArgumentError`, the `ValueError` that Keras
raises:
"Invalid value for argument `name`. Expected <what>. Received: name=<value>".
The checks return the value they accept, standardized where they say so, so a
constructor reads `self.smooth = check_non_negative("smooth", smooth)`.
"""

import math
import numbers
import warnings

from keras_unet_seg._errors import InvalidArgumentError


def invalid_value(name, expected, value=None, *, received=None):
    """Returns the `InvalidArgumentError` (a `ValueError`) for argument `name`, worded the
    way Keras words it.

    `name` may be a list of the arguments that disagree; `received` describes what was
    given (`"image.shape=(4, 4, 2)"`) where `name=value` would not say it.
    """
    if isinstance(name, (list, tuple)):
        quoted = [f"`{n}`" for n in name]
        arguments = f"arguments {', '.join(quoted[:-1])} and {quoted[-1]}"
    else:
        arguments = f"argument `{name}`"
    if received is None:
        received = f"{name}={value!r}"
    return InvalidArgumentError(
        f"Invalid value for {arguments}. Expected {expected}. Received: {received}"
    )


class Shaped:
    """Shows a tensor in an error message by its shape: `<tensor of shape (2, 8)>`."""

    def __init__(self, tensor):
        self.shape = tuple(tensor.shape)

    def __repr__(self):
        return f"<tensor of shape {self.shape}>"


class Summary:
    """Shows a value in an error message by a description: `<3 values outside it>`."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return f"<{self.text}>"


def is_int(value):
    """Whether `value` is an integer (NumPy's included), and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value):
    """Whether `value` is a finite real number, and not a bool."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def check_bool(name, value):
    if not isinstance(value, bool):
        raise invalid_value(name, "a boolean (True or False)", value)
    return value


def check_optional_bool(name, value, none_means="detect from the shapes"):
    if value is not None and not isinstance(value, bool):
        raise invalid_value(name, f"None ({none_means}), True or False", value)
    return value


def check_positive_int(name, value):
    if not is_int(value) or value < 1:
        raise invalid_value(name, "a positive integer", value)
    return int(value)


def check_non_negative_int(name, value):
    if not is_int(value) or value < 0:
        raise invalid_value(name, "an integer >= 0", value)
    return int(value)


def check_optional_int(name, value, what="an integer class id"):
    if value is not None and not is_int(value):
        raise invalid_value(name, f"None or {what}", value)
    return None if value is None else int(value)


def check_positive(name, value):
    if not is_real(value) or value <= 0:
        raise invalid_value(name, "a finite number > 0", value)
    return float(value)


def check_non_negative(name, value):
    if not is_real(value) or value < 0:
        raise invalid_value(name, "a finite number >= 0", value)
    return float(value)


def check_rate(name, value):
    """Accepts a fraction in [0, 1)."""
    if not is_real(value) or not 0 <= value < 1:
        raise invalid_value(name, "a float in [0, 1)", value)
    return float(value)


def check_choice(name, value, choices):
    if value not in choices:
        expected = "one of " + ", ".join(repr(c) for c in choices)
        raise invalid_value(name, expected, value)
    return value


def check_size(name, value, allow_none=False, rank=2):
    """Accepts an int or a sequence of `rank` positive ints; returns them as a tuple
    (`(height, width)` by default, `(depth, height, width)` at `rank=3`)."""
    if value is None and allow_none:
        return None
    sizes = (value,) * rank if is_int(value) else value
    if (
        not isinstance(sizes, (tuple, list))
        or len(sizes) != rank
        or not all(is_int(v) and v >= 1 for v in sizes)
    ):
        axes = "(height, width) pair" if rank == 2 else f"sequence of {rank} (one an axis)"
        expected = f"a positive integer or a {axes} of positive integers"
        raise invalid_value(name, ("None or " if allow_none else "") + expected, value)
    return tuple(int(v) for v in sizes)


def is_pair(value, accepts):
    """Whether `value` is a tuple or list of two items, each accepted by `accepts`."""
    return isinstance(value, (tuple, list)) and len(value) == 2 and all(accepts(v) for v in value)


def check_unit_interval(name, value):
    """Accepts a fraction (or probability) in [0, 1]."""
    if not is_real(value) or not 0 <= value <= 1:
        raise invalid_value(name, "a float in [0, 1]", value)
    return float(value)


def renamed_argument(old_name, old_value, new_name, new_value, default=None):
    """The value of an argument renamed from `old_name` to `new_name`.

    Warns with a `DeprecationWarning` naming `new_name` when the old argument
    is given (it is not `default`), and refuses both at once.
    """
    if old_value is default:
        return new_value
    if new_value is not default:
        raise InvalidArgumentError(
            f"Arguments `{old_name}` and `{new_name}` are the same argument: pass only "
            f"`{new_name}`. Received: {old_name}={old_value!r}, {new_name}={new_value!r}"
        )
    warnings.warn(
        f"The argument `{old_name}` is deprecated and will be removed in the next release; "
        f"use `{new_name}` instead.",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value


def check_built_model(model):
    """Accepts a built Keras model (or layer)."""
    if not model.built:
        expected = "a built model (call it on a batch or `build` it first)"
        raise invalid_value("model", expected, model)  # <UNet name=unet, built=False>
    return model


def check_scale(name, value):
    """Accepts `None` (1), a positive factor or a `(height, width)` pair of them."""
    if value is None:
        return (1.0, 1.0)
    pair = (value, value) if is_real(value) else value
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(is_real(v) and v > 0 for v in pair)
    ):
        raise invalid_value(name, "None, a positive number or a (height, width) pair", value)
    return float(pair[0]), float(pair[1])
