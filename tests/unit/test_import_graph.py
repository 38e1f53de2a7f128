"""The package's import graph, read from the source: no circles, and the layers kept apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "bitbucket_signin"
ROOT = Path(__file__).parent.parent.parent / PACKAGE
# The rules: pure code that neither Flask's wiring, nor the Bitbucket client, nor the emulator
# reaches into (a module of a listed package counts as part of it).
RULES = (
    "catalog",
    "resolvers",
    "redirects",
    "profile",
    "errors",
    "config",
    "identity_keys",
    "server_profile",
    "server_resolvers",
    "identity_token",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the package's modules it imports, at any depth of its
    source (so an import inside a function or under ``TYPE_CHECKING`` counts too)."""
    paths = {module_name(path): path for path in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in paths else base)
        graph[name] = {target for target in targets if target in paths and target != name}
    return graph


def in_rules(name: str) -> bool:
    return any(
        name == f"{PACKAGE}.{rule}" or name.startswith(f"{PACKAGE}.{rule}.") for rule in RULES
    )


def test_the_graph_is_read_from_the_source() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.views" in graph[f"{PACKAGE}.extension"]
    assert f"{PACKAGE}.errors" in graph[f"{PACKAGE}.config"]
    assert f"{PACKAGE}.emulator.faults" in graph[f"{PACKAGE}.emulator"]


def test_no_import_circles() -> None:
    graph = import_graph()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            pytest.fail("import circle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, (*path, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


def test_the_rules_import_only_rules() -> None:
    graph = import_graph()
    rules = [name for name in graph if in_rules(name)]
    assert len(rules) >= len(RULES)
    for name in rules:
        outside = sorted(target for target in graph[name] if not in_rules(target))
        assert not outside, f"{name} imports {outside}"


def test_the_emulator_imports_nothing_of_the_product() -> None:
    graph = import_graph()
    emulator = [name for name in graph if name.startswith(f"{PACKAGE}.emulator")]
    assert emulator
    for name in emulator:
        product = sorted(t for t in graph[name] if not t.startswith(f"{PACKAGE}.emulator"))
        assert not product, f"{name} imports {product}"


def test_no_function_local_imports() -> None:
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                local = [
                    inner.lineno
                    for inner in ast.walk(node)
                    if isinstance(inner, ast.Import | ast.ImportFrom)
                ]
                assert not local, f"{path.name}:{local} imports inside {node.name}()"
