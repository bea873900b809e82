"""The package never needs `safe_mode=False`: no Lambda, eval, exec or pickle."""

import ast
from pathlib import Path

import keras_unet_seg

PACKAGE = Path(keras_unet_seg.__file__).parent
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve"}


def _finding(node):
    """What is unsafe in `node`, or `None`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in UNSAFE_CALLS:
            return f"calls {node.func.id}()"
    if isinstance(node, (ast.Name, ast.Attribute)):
        if (node.id if isinstance(node, ast.Name) else node.attr) == "Lambda":
            return "uses a Lambda layer"
    if isinstance(node, ast.Import):
        unsafe = [a.name for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        return f"imports {', '.join(unsafe)}" if unsafe else None
    if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
        return f"imports from {node.module}"
    if isinstance(node, ast.keyword) and node.arg == "safe_mode":
        if isinstance(node.value, ast.Constant) and node.value.value is False:
            return "passes safe_mode=False"
    return None


def _violations(path, root=PACKAGE.parent):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        finding = _finding(node)
        if finding:
            yield f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')} {finding}"


def test_no_unsafe_constructs_in_the_package():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 5
    found = [v for path in files for v in _violations(path)]
    assert found == []


def test_the_scan_finds_what_it_looks_for(tmp_path):
    # In tmp_path, never in the package, where a parallel test scanning it would see it.
    bad = tmp_path / "probe.py"
    bad.write_text("import pickle\nx = eval('1')\nkeras.layers.Lambda(f)\nload(safe_mode=False)\n")
    found = list(_violations(bad, root=tmp_path))
    assert found == [
        "probe.py:1 imports pickle",
        "probe.py:2 calls eval()",
        "probe.py:3 uses a Lambda layer",
        "probe.py:4 passes safe_mode=False",
    ]
