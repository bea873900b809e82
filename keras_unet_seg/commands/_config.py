"""Config files: JSON objects whose keys are the options' names.

A config file accepts exactly what the command line accepts: each value goes through
the option's own type and choices. A run's `config.json` (written by `train`) is such
a file; `predict`, `evaluate` and `export` read it beside the model.
"""

import argparse
import json
import os

from keras_unet_seg.commands._errors import CommandError, UsageError

# Options that act on the command line only, never read from a config file.
_COMMAND_LINE_ONLY = ("config", "resume", "overwrite")
RUN_CONFIG_FILE = "config.json"


def read_json(path, what):
    """The JSON object of `path`; `what` names the file in the errors."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise CommandError(f"{what} '{path}' does not exist.") from None
    except IsADirectoryError:
        raise CommandError(f"{what} '{path}' is a folder, not a JSON file.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"{what} '{path}' cannot be read: {error}.") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{what} '{path}' is not valid JSON: {error}.") from None
    if not isinstance(data, dict):
        raise UsageError(f"{what} '{path}' must hold a JSON object of options.")
    return data


def config_defaults(parser, config, source, ignore=()):
    """Checks and converts a config dict against `parser`'s options.

    Keys are option names with `_` or `-` (`base_filters`, `base-filters`); values go
    through the option's own type and choices, so a config file accepts exactly
    what the command line accepts. Returns a dict by `dest`, for
    `parser.set_defaults`.
    """
    actions = parser.option_actions
    converted = {}
    for key, value in config.items():
        dest = key.replace("-", "_")
        if dest in ignore:
            continue
        action = actions.get(dest)
        if action is None or dest in _COMMAND_LINE_ONLY:
            known = ", ".join(sorted(d for d in actions if d not in _COMMAND_LINE_ONLY))
            raise UsageError(f"{source}: unknown option {key!r}. Known options: {known}.")
        converted[dest] = _convert(action, value, f"{source}: option {key!r}")
    return converted


def _convert(action, value, where):
    if action.nargs == 0:  # store_true, store_false, BooleanOptionalAction
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {value!r}.")
        return value
    if value is None and action.default is None:
        return None
    if action.type is not None:
        value = convert_value(action.type, value, where)
    elif not isinstance(value, str):
        raise UsageError(f"{where}: expected a string, got {value!r}.")
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(repr(c) for c in action.choices)
        raise UsageError(f"{where}: invalid choice {value!r} (choose from {choices}).")
    return value


def convert_value(option_type, value, where):
    """`option_type(value)`; its error becomes a `UsageError` that says `where`."""
    try:
        return option_type(value)
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"{where}: {error}.") from None


def parse_with_defaults(parser, argv, defaults):
    """Parses `argv` with `defaults` layered under it: the command line wins."""
    parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def saved_run_config(model_path):
    """`(path, options)` of the run's `config.json` beside a model file (`{}` if none)."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), RUN_CONFIG_FILE)
    return path, (read_json(path, "run config") if os.path.isfile(path) else {})
