"""The package's shape: layers that import only downwards, no import cycle, trust and faults
reached only through their public surfaces, and no function or module too long to read.

The import graph comes from grimp (import-linter's engine), which reads every import statement,
those inside functions and under TYPE_CHECKING included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "semichat"
# Top to bottom; a module may import its own layer's modules and any layer below.
TOP_LAYERS: list[tuple[str, ...]] = [
    ("semichat.__main__", "semichat.cli"),
    ("semichat.model",),
    ("semichat.harness",),
    ("semichat.deploy",),
    ("semichat.server",),
    ("semichat.backends",),
    ("semichat.emulator",),
    ("semichat.aws",),
    ("semichat.settings", "semichat.heap", "semichat.ports", "semichat.processes"),
]
# Inside `semichat.server`, top to bottom. Siblings in a tuple marked independent may not
# import each other.
SERVER_LAYERS: list[tuple[tuple[str, ...], bool]] = [
    (("process", "provisioning"), True),
    (("api",), False),
    (("trust", "faults"), True),
    (("chat",), False),
    (("delivery",), False),
    (("errors", "metrics", "identity", "locks"), False),
]
PUBLIC_ONLY = ("semichat.server.trust", "semichat.server.faults")
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 450


def _owner(module: str, names: Iterable[str]) -> str | None:
    """The longest of `names` that is `module` or a package containing it."""
    found = [n for n in names if module == n or module.startswith(n + ".")]
    return max(found, key=len) if found else None


def layer_violations(edges: Iterable[tuple[str, str]]) -> list[str]:
    """Every import (importer, imported) that runs up a layer, between independent siblings,
    or into the inside of a package reachable only through its `__init__`."""
    top = {name: i for i, layer in enumerate(TOP_LAYERS) for name in layer}
    server = {
        f"semichat.server.{name}": (i, independent)
        for i, (layer, independent) in enumerate(SERVER_LAYERS)
        for name in layer
    }
    found = []
    for importer, imported in edges:
        a, b = _owner(importer, top), _owner(imported, top)
        if a and b and top[a] > top[b]:
            found.append(f"{importer} -> {imported}: {a} is below {b}")
        sa, sb = _owner(importer, server), _owner(imported, server)
        if sa and sb and sa != sb:
            (ia, independent), (ib, _) = server[sa], server[sb]
            if ia > ib:
                found.append(f"{importer} -> {imported}: {sa} is below {sb}")
            elif ia == ib and independent:
                found.append(f"{importer} -> {imported}: {sa} and {sb} are independent")
        surface = _owner(imported, PUBLIC_ONLY)
        if surface and imported != surface and _owner(importer, PUBLIC_ONLY) != surface:
            found.append(f"{importer} -> {imported}: use {surface}, its public surface")
    return sorted(found)


def cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def edges() -> list[tuple[str, str]]:
    graph = grimp.build_graph("semichat")
    return [
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
    ]


def test_layers_import_only_downwards_and_trust_and_faults_through_their_surface(
    edges: list[tuple[str, str]],
) -> None:
    assert layer_violations(edges) == []


def test_the_import_graph_has_no_cycle(edges: list[tuple[str, str]]) -> None:
    assert cycles(edges) == []


def test_the_layer_check_catches_an_import_up_and_one_past_a_surface() -> None:
    """The check itself: the imports a careless change would add are caught."""
    up = ("semichat.server.delivery.sqs", "semichat.server.api.app")
    inside = ("semichat.server.api.app", "semichat.server.trust.auth")
    sideways = ("semichat.server.trust.limits", "semichat.server.faults")
    below = ("semichat.aws.clients", "semichat.server.errors")
    fine = ("semichat.server.api.app", "semichat.server.trust")
    found = layer_violations([up, inside, sideways, below, fine])
    assert len(found) == 4
    assert any("delivery.sqs -> semichat.server.api.app" in f for f in found)
    assert any("use semichat.server.trust, its public surface" in f for f in found)
    assert any("are independent" in f for f in found)
    assert any("semichat.aws is below semichat.server" in f for f in found)
    assert cycles([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == [["a", "b", "c"]]


def test_every_subpackage_says_its_role() -> None:
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"{init.relative_to(PACKAGE.parent)} needs a docstring"


def test_no_function_or_module_is_too_long_to_read() -> None:
    long: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        name = path.relative_to(PACKAGE.parent)
        if (lines := len(source.splitlines())) > MAX_MODULE_LINES:
            long.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if (length := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:  # type: ignore[operator]
                    long.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    assert long == []
