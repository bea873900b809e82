"""The commands' argument parser, and the option groups several commands share."""

import argparse

from keras_unet_seg import _types
from keras_unet_seg.commands._errors import PROG, UsageError


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' line breaks and shows every meaningful default (not that
    of a flag: `--no-fold`'s default True means the flag is absent, said by its help)."""

    def _get_help_string(self, action):
        help = action.help or ""
        default = action.default
        if (
            "%(default)" in help
            or not action.option_strings
            or default is None
            or isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
            or default == argparse.SUPPRESS
        ):
            return help
        return f"{help} (default: {_shown(default)})".strip()


def _shown(default):
    if isinstance(default, tuple) and all(isinstance(v, int) for v in default):
        return "x".join(str(v) for v in default)
    if isinstance(default, list):
        return ",".join(str(v) for v in default)
    return str(default)


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` that raises `UsageError` instead of exiting.

    It also keeps the actions of the options it was given (`option_actions`, by
    `dest`), so that a config file can be checked against the same options.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    @property
    def option_actions(self):
        """The actions of the options (groups' and exclusive groups' too), by `dest`."""
        return {
            action.dest: action
            for action in self._actions
            if action.option_strings and action.dest not in ("help", "version")
        }

    def error(self, message):
        command = self.prog[len(PROG) :].strip()
        prefix = f"{command}: " if command else ""
        raise UsageError(f"{prefix}{message} (see `{self.prog} --help`)")


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
        type=_types.jit_compile_choice,
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
        type=_types.intensity_choice,
        default=None,
        metavar="MODE",
        help="intensity normalization: auto, scale, percentile, minmax, standardize or none "
        "(default: the one the model was trained with, from the run's config.json beside "
        "--model; else auto)",
    )


def add_overwrite_argument(parser, what):
    """`--overwrite`: replace `what`, the files of an earlier run of the command."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace {what} (files keras-unet-seg did not write are never replaced)",
    )
