"""The package's modules and functions stay small enough to read.

No module over 600 lines and no function over 80 lines, counted from `def` to
its last line, docstring included. Complexity is ruff's C901 rule
(`pyproject.toml`; `.ci/run` runs ruff).
"""

import ast
from pathlib import Path

import pytest

import keras_unet_seg

PACKAGE = Path(keras_unet_seg.__file__).parent
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _where(path):
    return str(path.relative_to(PACKAGE.parent)) if PACKAGE in path.parents else path.name


def _long_functions(path, limit):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                yield f"{_where(path)}:{node.lineno} {node.name} ({length})"


def test_no_module_over_600_lines():
    lengths = {path: len(path.read_text().splitlines()) for path in _modules()}
    assert len(lengths) > 20
    too_long = [f"{_where(path)} ({n})" for path, n in lengths.items() if n > MAX_MODULE_LINES]
    assert too_long == []


def test_no_function_over_80_lines():
    assert [f for path in _modules() for f in _long_functions(path, MAX_FUNCTION_LINES)] == []


@pytest.mark.parametrize(("limit", "count"), [(3, 1), (4, 0)])
def test_the_function_count_includes_the_docstring(tmp_path, limit, count):
    probe = tmp_path / "probe.py"
    probe.write_text('def f():\n    """Doc\n    string."""\n    return 1\n')
    assert len(list(_long_functions(probe, limit))) == count
