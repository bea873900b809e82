"""What the commands share: errors, the argument parser, option types, config files.

User mistakes raise `UsageError` (exit status 2: a bad option, a bad value, an unknown
name) or `CommandError` (exit status 1: a missing file, an unreadable image, a file
that is not a Keras model); `keras_unet_seg.cli.main` prints them as one line
`keras-unet-seg: error: ...`. Anything else is a bug and keeps its traceback.
"""

import argparse
import json
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
    """Joins a possibly multi-line message into one line."""
    return " ".join(str(message).split())


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' line breaks and shows every meaningful default."""

    def _get_help_string(self, action):
        help = action.help or ""
        default = action.default
        if (
            "%(default)" in help
            or not action.option_strings
            or default is None
            or default is False
            or default == argparse.SUPPRESS
        ):
            return help
        if isinstance(default, tuple) and all(isinstance(v, int) for v in default):
            shown = "x".join(str(v) for v in default)
        elif isinstance(default, list):
            shown = ",".join(str(v) for v in default)
        else:
            shown = str(default)
        return f"{help} (default: {shown})".strip()


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` that raises `UsageError` instead of exiting.

    It also keeps the actions of the options it was given (`option_actions`, by
    `dest`), so that a config file can be checked against the same options.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.option_actions = {}

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        if action.option_strings and action.dest != "help":
            self.option_actions[action.dest] = action
        return action

    def add_argument_group(self, *args, **kwargs):
        group = super().add_argument_group(*args, **kwargs)
        parser = self
        original = group.add_argument

        def add_argument(*a, **k):
            action = original(*a, **k)
            if action.option_strings:
                parser.option_actions[action.dest] = action
            return action

        group.add_argument = add_argument
        return group

    def error(self, message):
        command = self.prog[len(PROG) :].strip()
        prefix = f"{command}: " if command else ""
        raise UsageError(f"{prefix}{message} (see `{self.prog} --help`)")


# --- Option types: each accepts a command-line string or a config-file value. ---


def _fail(expected, value):
    raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")


def _parse(value, parse, expected):
    """`parse(value)` for a command-line string; a config value is checked as it is."""
    if isinstance(value, str):
        try:
            return parse(value)
        except ValueError:
            _fail(expected, value)
    return value


def _integer(value, expected, minimum):
    number = _parse(value, int, expected)
    if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
        _fail(expected, value)
    return number


def positive_int(value):
    return _integer(value, "a positive integer", 1)


def non_negative_int(value):
    return _integer(value, "an integer >= 0", 0)


def _float(value, expected, accept):
    number = _parse(value, float, expected)
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not accept(number):
        _fail(expected, value)
    return float(number)


def positive_float(value):
    return _float(value, "a positive number", lambda x: 0 < x < float("inf"))


def fraction(value):
    """A float in [0, 1)."""
    return _float(value, "a number in [0, 1)", lambda x: 0 <= x < 1)


def probability(value):
    """A float in [0, 1]."""
    return _float(value, "a number in [0, 1]", lambda x: 0 <= x <= 1)


def image_size(value):
    """`64`, `"64"`, `"64x48"`, `"64,48"` or `[64, 48]` to a `(height, width)` tuple."""
    expected = "a size N or HxW (positive integers)"
    if isinstance(value, str):
        parts = value.lower().replace(",", "x").split("x")
        try:
            value = [int(p) for p in parts]
        except ValueError:
            _fail(expected, value)
        if len(value) == 1:
            value = value[0]
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            _fail(expected, value)
        return tuple(_size_part(v, expected, value) for v in value)
    return (_size_part(value, expected, value),) * 2


def _size_part(part, expected, value):
    if isinstance(part, bool) or not isinstance(part, int) or part < 1:
        _fail(expected, value)
    return part


def name_list(value):
    """`"dice,iou"` or `["dice", "iou"]` to a list of names."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        _fail("a comma-separated list of names", value)
    return list(value)


def optional_choice(*choices):
    """A choice among `choices` where `"none"` (or JSON null) means `None`."""

    def convert(value):
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        if value not in choices:
            _fail("one of " + ", ".join(repr(c) for c in (*choices, "none")), value)
        return value

    convert.__name__ = "choice"
    return convert


def jit_compile_choice(value):
    """`"auto"`, or `True`/`False` from `on`/`off` (`true`/`false`, or a JSON boolean)."""
    if isinstance(value, bool) or value == "auto":
        return value
    if isinstance(value, str) and value.lower() in ("on", "true", "off", "false"):
        return value.lower() in ("on", "true")
    _fail("auto, on or off", value)


jit_compile_choice.__name__ = "choice"


# --- Speed: precision and XLA (keras_unet_seg.performance). ---


def add_speed_arguments(group, training):
    """Adds `--precision` and `--jit-compile` to an argument group."""
    from keras_unet_seg.performance import PRECISIONS

    purpose = "training" if training else "inference"
    group.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help=f"dtype policy for {purpose}; auto: mixed_bfloat16 on CPUs with AVX512-BF16 "
        "or AMX (TensorFlow, 16 base filters or more) and on GPUs of compute capability "
        "8.0 or more, mixed_float16 on 7.x GPUs, float32 otherwise",
    )
    group.add_argument(
        "--jit-compile",
        type=jit_compile_choice,
        default="auto",
        metavar="{auto,on,off}",
        help="compile the steps (XLA; torch.compile on PyTorch); auto: on for JAX and for "
        "TensorFlow on GPUs and TPUs, off on TensorFlow's CPU (measured slower there)"
        + (" and under --strategy mirrored" if training else "")
        + ", off on PyTorch",
    )


def speed_summary(policy, jit_compile, num_replicas=1):
    """One line that says how a command computes, such as `float32, XLA off, 1 device`."""
    devices = "1 device" if num_replicas == 1 else f"{num_replicas} devices"
    return f"{policy}, XLA {'on' if jit_compile else 'off'}, {devices}"


# --- Config files: JSON objects whose keys are the options' names. ---


def read_json(path, what):
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


# Options that act on the command line only, never read from a config file.
_COMMAND_LINE_ONLY = ("config", "resume", "overwrite")


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
    try:
        if action.type is not None:
            value = action.type(value)
        elif not isinstance(value, str):
            raise argparse.ArgumentTypeError(f"expected a string, got {value!r}")
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"{where}: {error}.") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(repr(c) for c in action.choices)
        raise UsageError(f"{where}: invalid choice {value!r} (choose from {choices}).")
    return value


def parse_with_defaults(parser, argv, defaults):
    """Parses `argv` with `defaults` layered under it: the command line wins."""
    parser.set_defaults(**defaults)
    return parser.parse_args(argv)


# --- Files and models ---


def require_folder(path, what):
    if not os.path.exists(path):
        raise CommandError(f"{what} '{path}' does not exist.")
    if not os.path.isdir(path):
        raise CommandError(f"{what} '{path}' is not a folder.")


def check_data_files(folder, what):
    """Raises `CommandError` for a file in `folder` that the data pipeline cannot read.

    A name that is not valid UTF-8 cannot become a TensorFlow string, and reading a
    pipe (or a socket, a device) would block or read nothing: both are named here,
    before any data is read.
    """
    for root, folders, files in os.walk(folder):
        folders.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise CommandError(
                    f"{what} file {path!r} has a name that is not valid UTF-8 (shown with "
                    "\\udcXX escapes), which TensorFlow cannot read; rename it."
                ) from None
            if os.path.exists(path) and not os.path.isfile(path):
                raise CommandError(
                    f"{what} file '{path}' is not a regular file (a pipe, socket or device)."
                )


def check_model_file(path):
    """Raises `CommandError` unless `path` looks like a `.keras` file (cheap, no loading)."""
    import zipfile

    if not os.path.exists(path):
        raise CommandError(f"model file '{path}' does not exist.")
    if os.path.isdir(path):
        raise CommandError(f"model file '{path}' is a folder, not a .keras file.")
    if not os.path.isfile(path):  # reading a FIFO would wait for a writer forever
        raise CommandError(
            f"model file '{path}' is not a regular file (a pipe, socket or device): "
            "expected a .keras file."
        )
    stem, extension = os.path.splitext(path)
    if extension.lower() == ".keras" and extension != ".keras":
        raise CommandError(
            f"model file '{path}' ends in '{extension}': Keras reads only the lower-case "
            f"extension, so rename it to '{stem}.keras'."
        )
    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        raise CommandError(
            f"model file '{path}' is not a Keras model: expected a .keras file written "
            "by model.save() or by `keras-unet-seg train`."
        )


def load_model(path):
    """Loads a `.keras` model (safe mode) or raises `CommandError` naming the file."""
    import keras

    import keras_unet_seg  # noqa: F401  (registers the library's classes)

    check_model_file(path)
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # Keras raises many types for bad archives.
        raise CommandError(
            f"model file '{path}' cannot be loaded: {type(error).__name__}: {one_line(error)}"
        ) from None


def input_channels(model):
    """The number of input channels a built model expects, or `None` if unknown."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        shape = None
    if isinstance(shape, tuple) and shape and isinstance(shape[-1], int):
        return shape[-1]
    for weight in model.weights:  # the first kernel of a convolutional model
        if len(weight.shape) == 4:
            return int(weight.shape[2])
    return None


def color_mode_for(channels):
    return {1: "grayscale", 3: "rgb", 4: "rgba"}.get(channels, "rgb")


def get_loss(name, where):
    """`keras_unet_seg.losses.get(name)`, or a `UsageError` that lists the known names."""
    from keras_unet_seg import losses

    try:
        return losses.get(name)
    except ValueError:
        known = ", ".join(sorted(k for k in getattr(losses, "_BY_NAME", {}) if k.islower()))
        raise UsageError(
            f"{where}: unknown loss {name!r}. Use one of {known}, or the name of a Keras "
            "loss such as binary_crossentropy."
        ) from None


def get_metric(name, where, num_classes=1, threshold=None):
    """`keras_unet_seg.metrics.get(name)` for `num_classes` classes (and `threshold`)."""
    import keras

    from keras_unet_seg import metrics

    try:
        metric = metrics.get(name)
    except ValueError:
        known = ", ".join(sorted(k for k in getattr(metrics, "_BY_NAME", {}) if k.islower()))
        raise UsageError(
            f"{where}: unknown metric {name!r}. Use one of {known}, or the name of a Keras "
            "metric such as binary_accuracy."
        ) from None
    if isinstance(metric, keras.metrics.Metric):
        config = metric.get_config()
        changes = {}
        if "num_classes" in config and config["num_classes"] != num_classes:
            changes["num_classes"] = num_classes
        if threshold is not None and "threshold" in config:
            changes["threshold"] = threshold
        if changes:
            metric = type(metric).from_config({**config, **changes})
    return metric


def metric_name(metric):
    return getattr(metric, "name", None) or getattr(metric, "__name__", str(metric))
