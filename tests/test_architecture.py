"""The package design, checked from the source: no import cycle, lower layers never import higher
ones, every package has a door (``__all__``), and no module or function grows past its size limit."""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "fercore"

#: Lowest first: a package may import only packages before it (and itself).
LAYERS = ["core", "data", "models", "faces", "analysis", "inference", "grids", "synthetic", "explain", "training",
          "demo", "book", "studies", "cli"]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
#: Exceptions to the size limits, each with its reason ("path" or "path:qualname").
ALLOWED_SIZE: dict[str, str] = {}


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the package folder ``root``."""
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _target(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_edges(root: Path) -> dict[str, set[str]]:
    """Module -> modules it imports, from the source. Imports inside functions count; ``from . import x``
    is an edge to ``x`` (a module) and not to the package; importing ``pkg.mod`` from outside ``pkg``
    is also an edge to ``pkg`` (its ``__init__`` runs first)."""
    modules = module_names(root)
    top = root.name
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                wanted = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                          for alias in node.names]
            else:
                continue
            for full in wanted:
                if full != top and not full.startswith(top + "."):
                    continue
                target = _target(full, modules)
                if target is None or target == name:
                    continue
                edges[name].add(target)
                parts = target.split(".")
                for depth in range(2, len(parts)):  # the packages above the target run first
                    parent = ".".join(parts[:depth])
                    if not name.startswith(parent + ".") and parent != name:
                        edges[name].add(parent)
    return edges


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in list(edges):
        if node not in index:
            visit(node)
    return cycles


def test_fercore_has_no_import_cycle():
    assert find_cycles(import_edges(PACKAGE)) == []


def test_the_cycle_check_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / "fercore"
    (pkg / "low").mkdir(parents=True)
    (pkg / "high").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("from fercore.low.a import f\n")
    (pkg / "low" / "a.py").write_text("def f():\n    from fercore.high.b import g  # lazy: still an edge\n    return g\n")
    (pkg / "high" / "__init__.py").write_text("")
    (pkg / "high" / "b.py").write_text("from fercore.low import a\n\ndef g():\n    return a\n")
    (pkg / "high" / "c.py").write_text("from . import b\n")  # an edge to b, not to the package
    edges = import_edges(pkg)
    assert edges["fercore.high.c"] == {"fercore.high.b"}
    assert find_cycles(edges) == [["fercore.high.b", "fercore.low", "fercore.low.a"]]
    (pkg / "low" / "a.py").write_text("def f():\n    return 1\n")
    assert find_cycles(import_edges(pkg)) == []


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_lower_layers_never_import_higher_ones():
    wrong = []
    for source, targets in import_edges(PACKAGE).items():
        here = _layer(source)
        for target in targets:
            there = _layer(target)
            if here and there and LAYERS.index(there) > LAYERS.index(here):
                wrong.append(f"{source} -> {target}")
    assert wrong == [], "a lower package imports a higher one:\n" + "\n".join(wrong)
    assert sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()) == sorted(LAYERS)


def test_library_imports_are_at_module_top():
    """Only the CLI imports fercore lazily (start-up time); a lazy import elsewhere would hide a cycle."""
    lazy = []
    for name, path in module_names(PACKAGE).items():
        if name == "fercore.cli" or name.startswith("fercore.cli."):
            continue
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(func):
                    if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("fercore")):
                        lazy.append(f"{name}.{func.name}: from {node.module}")
    assert lazy == [], "\n".join(lazy)


@pytest.mark.parametrize("package", LAYERS)
def test_each_package_has_a_door(package):
    """``__init__`` names the public door in ``__all__``; every name there exists."""
    door = importlib.import_module(f"fercore.{package}")
    assert door.__doc__ and len(door.__doc__) > 40
    assert door.__all__, f"fercore.{package}.__all__ is empty"
    missing = [name for name in door.__all__ if not hasattr(door, name)]
    assert missing == []


def test_other_packages_come_in_through_the_door():
    """A module imports another package's names from its door (``from fercore.faces import detect_faces``)
    or a module the door lists in ``__all__`` (``from fercore.analysis import plots``); core's modules
    are its door."""
    doors = {p: set(importlib.import_module(f"fercore.{p}").__all__) for p in LAYERS}
    around = []
    for name, path in module_names(PACKAGE).items():
        here = _layer(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("fercore."):
                continue
            parts = node.module.split(".")
            there = parts[1]
            if there == here or there == "core" or there not in LAYERS:
                continue
            if len(parts) > 2 or any(alias.name not in doors[there] for alias in node.names):
                around.append(f"{name}: from {node.module} import {', '.join(a.name for a in node.names)}")
    assert around == [], "\n".join(around)


def _long_functions(path: Path) -> list[tuple[str, int]]:
    found = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualname = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    length = child.end_lineno - child.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        found.append((qualname, length))
                walk(child, qualname + ".")

    walk(ast.parse(path.read_text()), "")
    return found


def test_modules_and_functions_stay_small():
    """No module over 500 lines and no function over 80, except those in ALLOWED_SIZE (with a reason)."""
    too_big = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(REPO))
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES and rel not in ALLOWED_SIZE:
            too_big.append(f"{rel}: {lines} lines")
        too_big += [f"{rel}:{name}: {n} lines" for name, n in _long_functions(path) if f"{rel}:{name}" not in ALLOWED_SIZE]
    assert too_big == [], "\n".join(too_big)
    assert all(len(reason) > 10 for reason in ALLOWED_SIZE.values())


def test_the_size_check_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(f"class A:\n    def long(self):\n    {body.replace(chr(10), chr(10) + '    ')}\n")
    assert _long_functions(tmp_path / "m.py") == [("A.long", MAX_FUNCTION_LINES + 1)]
