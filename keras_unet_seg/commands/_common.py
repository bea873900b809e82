"""What the commands share: errors, the argument parser, option types, config files.

User mistakes raise `UsageError` (exit status 2: a bad option, a bad value, an unknown
name) or `CommandError` (exit status 1: a missing file, an unreadable image, a file
that is not a Keras model); `keras_unet_seg.cli.main` prints them as one line
`keras-unet-seg: error: ...`. Anything else is a bug and keeps its traceback.
"""

import argparse
import json
import os
from typing import NamedTuple

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


def _named_spec(value):
    """A name, or a config-file dict `{"name": ..., <arguments>}` of a loss or metric."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return dict(value)
    _fail('a name, or in a config file a dict such as {"name": "tversky", "alpha": 0.3}', value)


def loss_spec(value):
    """`--loss`: a name, or in a config file `{"name": ..., <arguments>}`."""
    return _named_spec(value)


loss_spec.__name__ = "loss"


def metric_list(value):
    """`"dice,iou"`, or in a config file a list of names and `{"name": ...}` dicts."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        _fail("a comma-separated list of names", value)
    return [_named_spec(v) for v in value]


metric_list.__name__ = "metrics"


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


def intensity_choice(value):
    """An intensity mode (`none`: values as stored) or, in a config file, a dict.

    Returns the complete spec of `keras_unet_seg.data.intensity_spec`.
    """
    from keras_unet_seg.data.intensity import INTENSITY_MODES, intensity_spec

    if isinstance(value, str) and value.lower() == "none":
        value = None
    try:
        return intensity_spec(value)
    except ValueError:
        names = ", ".join(str(m).lower() for m in INTENSITY_MODES)
        _fail(
            f"one of {names}, or in a config file a dict such as "
            '{"mode": "percentile", "low": 2, "high": 99.5}',
            value,
        )


intensity_choice.__name__ = "intensity"


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


def add_reading_arguments(group):
    """Adds `--color-mode` and `--intensity`: how `image_reading` reads images."""
    group.add_argument(
        "--color-mode",
        choices=("rgb", "grayscale", "rgba", "native"),
        default=None,
        help="how images are read (default: the run's config.json beside --model, else "
        "from the model's input channels)",
    )
    group.add_argument(
        "--intensity",
        type=intensity_choice,
        default=None,
        metavar="MODE",
        help="intensity normalization: auto, scale, percentile, minmax, standardize or none "
        "(default: the one the model was trained with, from the run's config.json beside "
        "--model; else auto)",
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
    return {1: "grayscale", 3: "rgb", 4: "rgba"}.get(channels, "native")


def describe_intensity(spec):
    """`'percentile' (1-99.8)`: an intensity spec in a few words."""
    mode = spec["mode"]
    if mode in ("auto", "percentile"):
        joint = ", per channel" if spec["per_channel"] else ""
        return f"'{mode}' ({spec['low']:g}-{spec['high']:g}{joint})"
    return "none" if mode is None else f"'{mode}'"


class Reading(NamedTuple):
    """How `predict` and `evaluate` read images for a model: as its run was trained."""

    color_mode: str
    intensity: dict
    scale: tuple  # (height, width) resize factor before the model, 1.0 for none
    palette: list | None  # colours of the class ids, from the training masks
    class_names: list | None


def positive_pair(value, expected="a positive number N or a pair NHxNW"):
    """`0.5`, `"0.5x0.25"`, `"0.5,0.25"` or `[0.5, 0.25]` to a `(height, width)` pair."""
    parts = value.lower().replace(",", "x").split("x") if isinstance(value, str) else value
    parts = list(parts) if isinstance(parts, (list, tuple)) else [parts]
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        _fail(expected, value)
    try:
        return tuple(positive_float(part) for part in parts)
    except argparse.ArgumentTypeError:
        _fail(expected, value)


positive_pair.__name__ = "pair"


def scale_choice(value):
    """`auto` (the run's training scale), `native` (1), or a factor `F` or `FHxFW`."""
    if isinstance(value, str) and value.lower() in ("auto", "native"):
        return value.lower()
    return positive_pair(value, "auto, native, or a factor F or FHxFW")


scale_choice.__name__ = "scale"


def saved_run_config(model_path):
    """`(path, options)` of the run's `config.json` beside a model file (`{}` if none)."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.json")
    return path, (read_json(path, "run config") if os.path.isfile(path) else {})


def image_reading(args, model, verbose=1):
    """The `Reading` of images for `model`.

    The command line wins; then the run's `config.json` beside `--model` (a run from
    before intensity options trained with `'scale'`); else the model's input
    channels, `'auto'` and the files' own size. Prints what it reads with and why.
    """
    run_config, saved = saved_run_config(args.model)
    channels = input_channels(model)
    color_mode = args.color_mode or saved.get("color_mode") or color_mode_for(channels)
    if args.intensity is not None:
        intensity, source = args.intensity, "--intensity"
    elif saved:
        where = f"run config '{run_config}'"
        intensity = _convert_value(intensity_choice, saved.get("intensity", "scale"), where)
        source = f"the run's {os.path.basename(run_config)}"
    else:
        intensity, source = intensity_choice("auto"), "the default"
    scale = (1.0, 1.0)
    requested = getattr(args, "scale", "native")
    if isinstance(requested, tuple):
        scale = requested
    elif requested == "auto" and saved.get("training_scale"):
        scale = tuple(float(v) for v in saved["training_scale"])
    if verbose:
        summary = describe_intensity(intensity)
        print(f"Reading images as {color_mode}, intensity {summary} (from {source}).")
        if scale != (1.0, 1.0):
            why = "--scale" if isinstance(requested, tuple) else "the run's training scale"
            print(
                f"Resizing images by {scale[0]:g} x {scale[1]:g} (height x width; {why}) "
                "before the model, and the predictions back; --scale native to predict "
                "at the files' own size."
            )
    return Reading(
        color_mode, intensity, scale, saved.get("mask_palette"), saved.get("class_names")
    )


def _convert_value(option_type, value, where):
    try:
        return option_type(value)
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"{where}: {error}.") from None


def _build_named(module, spec, where, kind):
    """An instance of `spec`: a name for `module.get`, or `{"name": ..., <arguments>}`.

    Arguments go to the library's class of that name, or to a Keras class given by
    its class name (`BinaryFocalCrossentropy`), and are checked by the class itself.
    """
    import keras

    if isinstance(spec, str):
        return module.get(spec)
    name, arguments = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    by_name = getattr(module, "_BY_NAME", {})
    if name not in by_name and not name[:1].isupper():
        raise UsageError(
            f"{where}: {kind} {name!r} with arguments: give a {kind} of this library "
            f"({', '.join(sorted(k for k in by_name if k.islower()))}) or a Keras class "
            "name such as BinaryFocalCrossentropy."
        )
    try:
        if name in by_name:
            return by_name[name](**arguments)
        getter = keras.losses.get if kind == "loss" else keras.metrics.get
        return getter({"class_name": name, "config": arguments})
    except (TypeError, ValueError) as error:
        raise UsageError(f"{where}: {kind} {spec}: {one_line(error)}") from None


def get_loss(name, where):
    """The loss of `--loss` (a name or a dict with arguments), or a `UsageError`."""
    from keras_unet_seg import losses

    try:
        return _build_named(losses, name, where, "loss")
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
        metric = _build_named(metrics, name, where, "metric")
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
