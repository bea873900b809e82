"""The `command-help` directive: the `keras-unet-seg` command's `--help`, at build time.

    ```{command-help}
    ```

    ```{command-help} train
    ```

renders the help of the command, or of one subcommand, as `--help` prints it
in an 88-column terminal, from `keras_unet_seg.cli.build_parser()`: the page
cannot drift from the command's real options.
"""

import os

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

COLUMNS = "88"


def _help_text(command=None):
    from keras_unet_seg.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = COLUMNS  # argparse wraps to the terminal's width
    try:
        parser = build_parser()
        if command is None:
            return parser.format_help()
        subparsers = next(
            action for action in parser._actions if hasattr(action, "choices") and action.choices
        )
        if command not in subparsers.choices:
            raise ValueError(
                f"command-help: unknown command {command!r}; known: {sorted(subparsers.choices)}"
            )
        return subparsers.choices[command].format_help()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


class CommandHelp(SphinxDirective):
    optional_arguments = 1
    has_content = False
    option_spec = {"caption": directives.unchanged}

    def run(self):
        command = self.arguments[0] if self.arguments else None
        try:
            text = _help_text(command)
        except ValueError as error:
            return [self.state.document.reporter.warning(str(error), line=self.lineno)]
        block = nodes.literal_block(text.rstrip(), text.rstrip())
        block["language"] = "text"
        return [block]


def setup(app):
    app.add_directive("command-help", CommandHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
