"""Renders Keras-style docstrings: the Markdown that Keras docstrings use, as RST.

Keras (and this library, which follows it) writes docstrings with Markdown
habits that reStructuredText reads differently:

- fenced code blocks (three backticks) become `code-block` directives;
- links `[text](https://...)` become RST links;
- the content of an "Example:" or "Reference:" section written flush with its
  header (Keras' habit) is indented, so that napoleon sees a section;
- code glued to a word (`` `tf.Tensor`s ``) gets the escaped space RST needs;
- base classes from Keras' private `keras.src` modules are shown under their
  public name (`keras.Model`, not `keras.src.models.model.Model`), and a
  private base class of this library (`_OverlapLoss`) by its public bases;
- of the members a class inherits, only those written in this library are
  documented (`update_state` of a metric's private base class, say), never
  the hundreds that `keras.Model` brings (the class template asks for
  `:inherited-members:`).

Single backticks need no change: `conf.py` sets `default_role = "py:obj"`, so
`` `ConvBlock` `` renders as code and links when the name is documented.
The docstring hook runs before napoleon's (priority 400 < 500), so napoleon
sees the converted text.
"""

import inspect
import re

_FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)\s*$")
_LINK = re.compile(r"\[([^\[\]]+)\]\((https?://[^\s)]+)\)")
# Inline code spans, leftmost first: ``literal`` or `interpreted`.
_CODE_SPAN = re.compile(r"``.+?``|`[^`]+`")

PACKAGE = "keras_unet_seg"

# Public Keras namespaces searched for the public name of a `keras.src` class.
# The most specific first: `keras.metrics.Metric` rather than its alias `keras.Metric`.
_KERAS_NAMESPACES = (
    "keras.layers",
    "keras.losses",
    "keras.metrics",
    "keras.callbacks",
    "keras.optimizers",
    "keras",
)

# Sections that Keras docstrings write with unindented content (a doctest or a
# list right under "Example:"); napoleon needs the content indented.
_UNINDENTED_SECTIONS = ("Example", "Examples", "Reference", "References")
_SECTION_HEADERS = (
    "Args",
    "Arguments",
    "Call arguments",
    "Input shape",
    "Output shape",
    "Returns",
    "Raises",
    "Yields",
    "Attributes",
    "Note",
    "Notes",
    "Warning",
    *_UNINDENTED_SECTIONS,
)
_HEADER = re.compile(r"^(\s*)(" + "|".join(_SECTION_HEADERS) + r"):\s*$")


def indent_flush_sections(lines):
    """Indents the content of Example/Reference sections written flush with the header."""
    out, section_indent, flush = [], None, None
    for line in lines:
        header = _HEADER.match(line)
        if header:
            section_indent, flush = None, None
            if header.group(2) in _UNINDENTED_SECTIONS:
                section_indent = len(header.group(1))
            out.append(line)
            continue
        if section_indent is not None and line.strip():
            indent = len(line) - len(line.lstrip())
            if flush is None:
                # The first line of content decides: flush with the header or not.
                flush = indent == section_indent
            if indent < section_indent:
                section_indent, flush = None, None  # dedented: the section is over
            elif flush:
                line = "    " + line
        out.append(line)
    return out


def markdown_to_rst(lines):
    """Returns `lines` with Markdown fences and links converted to RST."""
    lines = indent_flush_sections(lines)
    out, fence_indent, in_fence = [], "", False
    for line in lines:
        match = _FENCE.match(line)
        if match and not in_fence:
            in_fence = True
            fence_indent = match.group(1)
            language = match.group(2) or "text"
            if out and out[-1].strip():
                out.append("")
            out += [f"{fence_indent}.. code-block:: {language}", ""]
            continue
        if in_fence:
            if match and match.group(1) == fence_indent and not match.group(2):
                in_fence = False
                out.append("")
                continue
            stripped = line[len(fence_indent) :] if line.startswith(fence_indent) else line
            out.append(f"{fence_indent}   {stripped}" if line.strip() else "")
            continue
        if line.lstrip().startswith((">>>", "...")):
            out.append(line)
            continue
        line = _LINK.sub(r"`\1 <\2>`__", line)
        out.append(_unglue_code_spans(line))
    return out


def _unglue_code_spans(line):
    """`tf.Tensor`s -> `tf.Tensor`\\ s: RST ends inline markup only before a non-word."""
    pieces, last = [], 0
    for match in _CODE_SPAN.finditer(line):
        end = match.end()
        pieces.append(line[last:end])
        following = line[end : end + 1]
        if following.isalnum():
            pieces.append("\\ ")
        last = end
    pieces.append(line[last:])
    return "".join(pieces)


def _process_docstring(app, what, name, obj, options, lines):
    lines[:] = markdown_to_rst(lines)


_public_keras_names = None


def _keras_public_name(cls):
    global _public_keras_names
    if _public_keras_names is None:
        import importlib

        _public_keras_names = {}
        for namespace in _KERAS_NAMESPACES:
            module = importlib.import_module(namespace)
            for attr, value in vars(module).items():
                if isinstance(value, type) and not attr.startswith("_"):
                    _public_keras_names.setdefault(id(value), f"{namespace}.{attr}")
    return _public_keras_names.get(id(cls))


def _public_bases(base):
    """`[base]`, or for a private class its nearest public ancestors."""
    if not isinstance(base, type) or not base.__name__.startswith("_"):
        return [base]
    found = []
    for parent in base.__bases__:
        for public in _public_bases(parent):
            if public not in found and public is not object:
                found.append(public)
    return found


def _process_bases(app, name, obj, options, bases):
    expanded = []
    for base in bases:
        for public in _public_bases(base):
            if public not in expanded:
                expanded.append(public)
    for i, base in enumerate(expanded):
        if isinstance(base, type) and base.__module__.startswith("keras.src"):
            public = _keras_public_name(base)
            if public:
                expanded[i] = f":py:class:`{public}`"
    bases[:] = expanded or bases


def _defining_module(obj):
    target = getattr(obj, "fget", None) or getattr(obj, "__func__", None) or obj
    return getattr(target, "__module__", None) or ""


def _process_signature(app, what, name, obj, options, signature, return_annotation):
    """A Keras class's `__new__(*args, **kwargs)` hides the constructor's arguments."""
    if what == "class" and signature == "(*args, **kwargs)" and "__init__" in vars(obj):
        init = inspect.signature(obj.__init__)
        parameters = [
            p.replace(default=_Named(p.default.__name__))
            if p.default is not p.empty and isinstance(p.default, type)
            else p
            for p in list(init.parameters.values())[1:]  # without self
        ]
        return str(init.replace(parameters=parameters)), return_annotation
    return None


class _Named:
    """A default shown by name (`conv_block=ConvBlock`), not as `<class '...'>`."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


def _skip_member(app, what, name, obj, skip, options):
    """Leaves out members inherited from outside the package (Keras, object)."""
    if what == "class" and not _defining_module(obj).startswith(PACKAGE):
        return True
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)
    app.connect("autodoc-process-bases", _process_bases)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-signature", _process_signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
