"""One `get` per kind: the losses and metrics of this package by name, then Keras'.

Private: `keras_unet_seg.losses.get` and `keras_unet_seg.metrics.get` are built on it.
"""

import inspect

import keras

from keras_unet_seg._errors import InvalidArgumentError

# The package name under which the losses and metrics are registered
# (`keras_unet_seg>DiceLoss`): it is in every saved config, so it never changes.
PACKAGE = "keras_unet_seg"

_KERAS_MODULES = {"loss": "losses", "metric": "metrics"}
# What a class must implement to be a loss or a metric, and the base class that does not.
_ABSTRACT = {"loss": ("Loss", ("call",)), "metric": ("Metric", ("update_state", "result"))}


def name_table(entries, leave_to_keras=()):
    """`{name: class}` from `(class, snake_case_name, *aliases)` entries.

    Each class is found by its class name, its registered name
    (`"keras_unet_seg>Precision"`), its snake_case name and its aliases; the names
    in `leave_to_keras` are left out, for Keras' `get` to find its own.
    """
    table = {}
    for cls, *names in entries:
        table[cls.__name__] = cls
        table[keras.saving.get_registered_name(cls)] = cls
        table.update(dict.fromkeys(names, cls))
    for name in leave_to_keras:
        del table[name]
    return table


def _build(cls, name, kind):
    try:
        inspect.signature(cls).bind()
    except TypeError:
        raise InvalidArgumentError(
            f"Could not build the {kind} {name!r} from its name: `{cls.__name__}` has "
            "required arguments. Build it in Python or give its config dict."
        ) from None
    return cls()


def lookup(identifier, table, keras_get, kind):
    """Resolves `identifier` with `table` first, then with `keras_get`.

    Args:
        identifier: a name, a serialised config dict, an instance or a
            function, or `None`.
        table: `{name: class}` of this package (see `name_table`); a name
            found there gives an instance with default arguments.
        keras_get: `keras.losses.get` or `keras.metrics.get`.
        kind: `"loss"` or `"metric"`, for the error message.

    Returns:
        The instance or function, or `None` for `None`.

    Raises:
        ValueError: if the identifier cannot be interpreted, names a class
            with required arguments, or names an abstract base class (Keras'
            `Loss` or `Metric` itself).
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if not isinstance(identifier, str):
        return keras_get(identifier)
    if identifier in table:
        return _build(table[identifier], identifier, kind)
    ours = ", ".join(sorted(name for name in table if name.islower()))
    expected = (
        f"Expected a {kind} of keras_unet_seg ({ours}, or a class name) or a name that "
        f"`keras.{_KERAS_MODULES[kind]}.get` knows."
    )
    try:
        found = keras_get(identifier)
    except ValueError:
        raise InvalidArgumentError(
            f"Could not interpret {kind} identifier: {identifier!r}. {expected}"
        ) from None
    except TypeError:  # Keras called a class that has required arguments
        raise InvalidArgumentError(
            f"Could not build the {kind} {identifier!r} from its name: `{identifier}` has "
            f"required arguments. Build it in Python or give its config dict. {expected}"
        ) from None
    base_name, methods = _ABSTRACT[kind]
    base = getattr(getattr(keras, _KERAS_MODULES[kind]), base_name)
    if isinstance(found, base) and any(
        getattr(type(found), method) is getattr(base, method) for method in methods
    ):
        raise InvalidArgumentError(
            f"Could not use the {kind} identifier {identifier!r}: `{type(found).__name__}` "
            f"is an abstract base class to subclass (it leaves `{'` and `'.join(methods)}` "
            f"to subclasses), not a {kind}. {expected}"
        )
    return found
