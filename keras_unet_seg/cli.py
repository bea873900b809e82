"""The `keras-unet-seg` command: `demo`, `train`, `predict`, `evaluate`, `export`.

Each subcommand lives in `keras_unet_seg.commands.<name>` as two functions:
`add_arguments(parser)` builds its options and `run(args)` does the work. User
mistakes print one line `keras-unet-seg: error: ...` on stderr and exit with status
2 (command line or config file) or 1 (files, models, images); interrupting a run
(Ctrl-C) exits with status 130. Unexpected errors keep their traceback. TensorFlow's
C++ start-up log is hidden unless `--verbose` is given, by the command's entry point
(`_keras_unet_seg_command`, beside the package: it must set TensorFlow's log level
before `keras_unet_seg` imports Keras, and Keras TensorFlow).

Example:

    keras-unet-seg demo --out demo_out
    keras-unet-seg train --data data --out runs/a --epochs 30
    keras-unet-seg train --out runs/a --resume
    keras-unet-seg predict --model runs/a/model.keras photos/ --out predictions
    keras-unet-seg evaluate --model runs/a/model.keras --data data --json scores.json
    keras-unet-seg export --model runs/a/best.keras --format onnx --out model.onnx
"""

import sys

from keras_unet_seg.commands import COMMANDS
from keras_unet_seg.commands._errors import PROG, CommandError, Interrupted, one_line
from keras_unet_seg.commands._parser import ArgumentParser


def build_parser():
    """The top-level parser, with one subparser per command."""
    from keras_unet_seg._version import __version__

    parser = ArgumentParser(
        prog=PROG,
        description="U-Net semantic segmentation with Keras 3: train, predict, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        doc = module.__doc__.strip()
        summary = doc.splitlines()[0]
        subparser = subparsers.add_parser(module.NAME, help=summary, description=doc)
        module.add_arguments(subparser)
        subparser.add_argument(
            "--verbose",
            action="store_true",
            help="also show TensorFlow's start-up log (hidden by default)",
        )
        subparser.set_defaults(_run=module.run, _parser=subparser)
    return parser


def main(argv=None):
    """Runs the command line `argv` (default `sys.argv[1:]`); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args._argv = argv[argv.index(args.command) + 1 :]
        return args._run(args) or 0
    except Interrupted as interrupted:
        print(f"\n{PROG}: {one_line(interrupted)}", file=sys.stderr)
        return interrupted.exit_code
    except CommandError as error:
        print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
        return error.exit_code
    except SystemExit as exit:  # --help and --version
        return exit.code if isinstance(exit.code, int) else 0
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
