"""The documentation builds without warnings and documents every public name.

Builds the Sphinx site (HTML, `-W`) from a copy of `docs/` in a temporary folder,
so that the generated API pages never touch the checkout, then checks that every
name in `keras_unet_seg.__all__`, and every public name of the public submodules,
has its page in the API reference with its docstring's summary line and its
signature's arguments. About 20 seconds; skipped when the `docs` extra
(`pip install -e ".[docs]"`) is not installed.
"""

import html.parser
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("furo")
pytest.importorskip("myst_parser")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import api_reference  # noqa: E402
import keras_docstrings  # noqa: E402

import keras_unet_seg  # noqa: E402

# Sphinx's "smart quotes" and dashes, back to what the docstrings hold.
_TYPOGRAPHY = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


_BLOCKS = {"p", "div", "dt", "dd", "li", "ul", "ol", "pre", "br", "tr", "td", "th", "table"}
_BLOCKS |= {"h1", "h2", "h3", "h4", "section", "blockquote"}


class _TextExtractor(html.parser.HTMLParser):
    """The visible text of a page's main article, without scripts and styles."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip, self._in_article = [], 0, 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "article":
            self._in_article += 1
        if tag in _BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        if tag == "article":
            self._in_article -= 1
        if tag in _BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self._skip and self._in_article:
            self.parts.append(data)


def _normalize(text):
    text = text.translate(_TYPOGRAPHY).replace("\u2026", "...").replace("\u2013", "--")
    text = text.replace("`", "").replace("\\", "").replace("\u00b6", "")
    return re.sub(r"\s+", " ", text).strip()


def _page_text(path):
    parser = _TextExtractor()
    parser.feed(path.read_text(encoding="utf-8"))
    return _normalize("".join(parser.parts))


def _summary_line(obj):
    doc = inspect.getdoc(obj) or ""
    return _normalize(doc.split("\n\n")[0])


def _resolve(qualified_name):
    module_name, _, name = qualified_name.rpartition(".")
    return getattr(importlib.import_module(module_name), name)


def _build_html(tmp_path):
    """Builds the site from a copy of docs/ (and CHANGELOG.md, which it includes)."""
    source = tmp_path / "docs"

    def ignore(folder, names):
        skipped = {"_build", "__pycache__"}
        if Path(folder) == DOCS / "api":
            skipped |= {"generated", "index.rst"}  # written by the build
        return [name for name in names if name in skipped]

    shutil.copytree(DOCS, source, ignore=ignore)
    shutil.copy(ROOT / "CHANGELOG.md", tmp_path / "CHANGELOG.md")
    env = dict(os.environ)
    env.pop("KERAS_UNET_SEG_DOCS_ONLINE", None)  # offline, as in CI
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = tmp_path / "html"
    warning_file = tmp_path / "warnings.txt"
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    result = subprocess.run(
        [*command, "-w", str(warning_file), str(source), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    warnings = warning_file.read_text(encoding="utf-8") if warning_file.exists() else ""
    return result, warnings.strip().splitlines(), out


def test_docs_build_and_document_every_public_name(tmp_path):
    result, warnings, out = _build_html(tmp_path)
    details = "\n".join(warnings) or result.stderr[-3000:]
    assert result.returncode == 0 and not warnings, (
        f"sphinx-build failed (status {result.returncode}):\n{details}"
    )

    entries = dict(api_reference.collect())
    top_level = {f"keras_unet_seg.{name}" for name in keras_unet_seg.__all__}
    missing_from_reference = sorted(top_level - set(entries))
    assert not missing_from_reference, f"not in the API reference: {missing_from_reference}"

    index = _page_text(out / "api" / "index.html")
    problems = []
    for qualified_name in entries:
        obj = _resolve(qualified_name)
        page = out / "api" / "generated" / f"{qualified_name}.html"
        if not page.exists():
            problems.append(f"{qualified_name}: no page {page.name}")
            continue
        if qualified_name not in index:
            problems.append(f"{qualified_name}: not listed on the API index")
        text = _page_text(page)
        summary = _summary_line(obj)
        if not summary:
            problems.append(f"{qualified_name}: no docstring")
        elif summary not in text:
            problems.append(f"{qualified_name}: docstring summary not on its page: {summary!r}")
        if callable(obj) and not inspect.ismodule(obj):
            try:
                parameters = inspect.signature(obj).parameters
            except (TypeError, ValueError):
                parameters = {}
            absent = [p for p in parameters if p not in ("self", "args", "kwargs")]
            absent = [p for p in absent if p not in text]
            if absent:
                problems.append(f"{qualified_name}: arguments not on its page: {absent}")
    assert not problems, "\n".join(problems)


def test_reference_follows_all():
    entries = [name for name, _ in api_reference.collect()]
    assert len(entries) == len(set(entries))
    documented = {name.rsplit(".", 1)[1] for name in entries}
    assert set(keras_unet_seg.__all__) <= documented
    # Each public object once, under the top level when it is exported there.
    for name in keras_unet_seg.__all__:
        assert f"keras_unet_seg.{name}" in entries


def test_markdown_docstrings_become_rst():
    lines = [
        "Summary with `tf.Tensor`s and [a paper](https://arxiv.org/abs/1505.04597).",
        "",
        "```",
        "root/train/images/00000.png",
        "```",
        "",
        "Example:",
        "",
        ">>> 1 + 1",
        "2",
    ]
    converted = keras_docstrings.markdown_to_rst(lines)
    assert converted[0] == (
        "Summary with `tf.Tensor`\\ s and `a paper <https://arxiv.org/abs/1505.04597>`__."
    )
    assert ".. code-block:: text" in converted
    assert "   root/train/images/00000.png" in converted
    assert "    >>> 1 + 1" in converted
