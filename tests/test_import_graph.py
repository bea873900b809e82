"""The package's import graph goes one way: down, without cycles.

Read from the source (imports inside functions included), not from what an
interpreter happens to have imported.
"""

import ast
import itertools
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_unet_seg"

# Bottom to top, by the name under `keras_unet_seg` ("" is the package's `__init__`, its
# public names). A module imports from its own layer or those below, never above.
LAYERS = (
    ("_errors", "_outputs", "_validation", "_naming", "_arrays", "_lookup", "_sublayers"),
    ("_version",),
    ("_startup", "_atomic", "_overlap", "_model_facts"),
    ("viz", "performance"),
    ("data",),
    ("_types", "layers", "encoders", "losses", "metrics", "testing"),
    ("models",),
    ("inference",),  # arrays (tiling), then the spec, then files
    ("evaluation", "export"),
    ("report", "training"),
    ("",),
    ("inference_spec",),  # the spec's old import path
    ("commands",),
    ("cli", "__main__"),
)


def _modules():
    """`{module name: path}` of every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["keras_unet_seg", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported(name, path, node):
    """The package's modules that one import statement of module `name` imports."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + [base] * bool(base))
        targets = [f"{base}.{alias.name}" for alias in node.names]
    found = set()
    for target in targets:
        if not target.startswith("keras_unet_seg"):
            continue
        while target not in MODULES:  # a name defined in a module: that module
            target = target.rsplit(".", 1)[0]
        found.add(target)
    return found


def _graph():
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))
        graph[name] = set().union(*(_imported(name, path, n) for n in nodes)) - {name}
    return graph


GRAPH = _graph()


def _layer(module):
    first = module.split(".")[1] if "." in module else ""
    for index, names in enumerate(LAYERS):
        if first in names:
            return index
    raise AssertionError(f"{module} is in no layer of LAYERS: add it where it belongs.")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_import_goes_down_or_sideways(module):
    upward = sorted(target for target in GRAPH[module] if _layer(target) > _layer(module))
    assert not upward, f"{module} imports from a layer above it: {upward}"


def test_no_module_imports_the_subpackage_that_holds_it():
    """A subpackage's `__init__` imports its modules, so they import from each other."""
    inward = sorted(
        (module, target)
        for module, targets in GRAPH.items()
        for target in targets
        if "." in target and module.startswith(target + ".")
    )
    assert not inward


def test_the_graph_has_no_cycle():
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])


def test_evaluate_goes_down_from_the_command_to_the_model():
    """`keras-unet-seg evaluate`'s way: command, evaluation, inference, a model's facts."""
    way = [
        "keras_unet_seg.commands.evaluate",
        "keras_unet_seg.evaluation",
        "keras_unet_seg.inference._tiles",
        "keras_unet_seg._model_facts",
    ]
    for upper, lower in itertools.pairwise(way):
        assert lower in GRAPH[upper], f"{upper} does not import {lower}"
        assert _layer(lower) <= _layer(upper)
