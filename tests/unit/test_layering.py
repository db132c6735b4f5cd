"""The house rules, checked: every layer imports only downwards, no import cycle (lazy imports included),
no source file over 400 lines, no function over 80, and no test module imported as a library.

The layers (docs/architecture.md): programs -> http -> {runtime, cluster, webhooks, auth} -> media -> store ->
(settings, states, errors, ...). A rule broken here is a room that no longer shows the architecture.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers.stack import REPO

SERVICE = REPO / "service"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80

# Which packages each package may import (besides itself and the shared top-level modules).
ALLOWED = {
    "store": set(),
    "media": {"store"},
    "auth": {"store"},
    "webhooks": {"store", "auth"},
    "cluster": {"store", "runtime"},
    "runtime": {"store", "cluster", "webhooks", "media"},
    "http": {"store", "auth", "webhooks", "runtime", "cluster", "media", "programs.supervision", "programs.orphans"},
    "mcp": {"store", "auth", "http"},  # above http: the MCP server calls the API, the http layer knows only its door
    "programs": {"store", "auth", "webhooks", "runtime", "cluster", "http", "media", "mcp"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in SERVICE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every service module ``name`` imports, at the top or inside a function (lazy imports count)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _layer(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts or len(parts) == 1 and not (SERVICE / parts[0]).is_dir():
        return ""  # service itself or a shared top-level module
    return parts[0]


def test_no_import_cycle():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_every_layer_imports_only_downwards():
    wrong = []
    for module, imports in _graph().items():
        layer = _layer(module)
        if layer == "":
            # The shared top-level modules: settings reads the leaf helpers of some layers to check values
            # (webhook addresses, the governor's policy, the store's URL redaction); the others import nothing.
            continue
        for target in imports:
            target_layer = _layer(target)
            if target_layer in ("", layer):
                continue
            sub = ".".join(target.split(".")[1:3])
            if target_layer not in ALLOWED.get(layer, set()) and sub not in ALLOWED.get(layer, set()):
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def _sources() -> list[Path]:
    roots = [SERVICE, REPO / "clients" / "python" / "src", REPO / "bench", REPO / "tests"]
    python = [p for root in roots for p in root.rglob("*.py")]
    node = [p for sub in ("src", "lib", "emulator", "test") for p in (REPO / "node_worker" / sub).rglob("*.js")]
    return python + node


def test_no_source_file_is_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in _sources() if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert long == {}


def test_no_python_function_is_over_80_lines():
    long = {}
    for path in _sources():
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO)}:{node.lineno} {node.name}"] = lines
    assert long == {}


@pytest.mark.parametrize("root", ["tests", "bench"])
def test_no_test_module_is_imported_as_a_library(root):
    imported = []
    for path in (REPO / root).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(part.startswith("test_") for name in names if name.startswith("tests") for part in name.split(".")):
                imported.append(f"{path.relative_to(REPO)}: {node.lineno}")
    assert imported == []
