"""The package's layers point one way, read from the source (every import, including those
inside functions): data, nn, sampling at the bottom, then sim and models, then train, eval,
plan and play, then the CLI and the ROS nodes on top. No module imports a layer above its own,
and no two modules import each other, directly or around a loop."""
import ast
from pathlib import Path

import genie_robot

PACKAGE = Path(genie_robot.__file__).parent
ROS_NODES = PACKAGE.parent / "ros_nodes"
LAYERS = {
    "genie_robot.errors": 0, "genie_robot.io": 0, "genie_robot.extras": 0,
    "genie_robot.media": 1, "genie_robot.data": 1, "genie_robot.nn": 1, "genie_robot.sampling": 1,
    "genie_robot.sim": 2, "genie_robot.models": 2,
    "genie_robot.train": 3, "genie_robot.eval": 3, "genie_robot.plan": 3, "genie_robot.play": 3, "genie_robot.envs": 3,
    "genie_robot.cli": 4, "ros_nodes": 4,
}


def layer(module: str) -> int:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return LAYERS[prefix]
    raise AssertionError(f"{module} belongs to no layer; add its package to LAYERS")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Project modules each module imports (`from pkg import name` counts pkg.name when that is a module)."""
    files = list(PACKAGE.rglob("*.py")) + list(ROS_NODES.rglob("*.py"))
    known = {module_name(f) for f in files}
    graph = {}
    for path in files:
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                          for alias in node.names}
        graph[module_name(path)] = {m for m in found if m in known}
    return graph


def test_no_module_imports_a_layer_above_its_own():
    upward = [f"{importer} (layer {layer(importer)}) imports {imported} (layer {layer(imported)})"
              for importer, targets in imports().items() for imported in targets if layer(imported) > layer(importer)]
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    graph = imports()
    # A package's __init__ re-exporting its own modules is not a circle between them.
    edges = {m: {t for t in targets if not (m.endswith(t) or t.startswith(m + "."))} for m, targets in graph.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str):
        state[module] = 1
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
