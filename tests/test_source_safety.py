"""The package never needs `safe_mode=False`: no Lambda, eval, exec or pickle."""

import ast
from pathlib import Path

import keras_unet_seg

PACKAGE = Path(keras_unet_seg.__file__).parent
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve"}


def _violations(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in UNSAFE_CALLS:
                yield f"{where} calls {node.func.id}()"
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name == "Lambda":
                yield f"{where} uses a Lambda layer"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in UNSAFE_MODULES:
                    yield f"{where} imports {alias.name}"
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            yield f"{where} imports from {node.module}"
        if isinstance(node, ast.keyword) and node.arg == "safe_mode":
            if isinstance(node.value, ast.Constant) and node.value.value is False:
                yield f"{where} passes safe_mode=False"


def test_no_unsafe_constructs_in_the_package():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 5
    found = [v for path in files for v in _violations(path)]
    assert found == []


def test_the_scan_finds_what_it_looks_for(tmp_path):
    bad = PACKAGE / "_scan_probe_tmp.py"
    try:
        bad.write_text(
            "import pickle\nx = eval('1')\nkeras.layers.Lambda(f)\nload(safe_mode=False)\n"
        )
        found = list(_violations(bad))
    finally:
        bad.unlink()
    assert len(found) == 4
