"""Every notebook's parameters cell repeats the shared parameters exactly as fercore.studies.parameters declares them."""

import ast

import nbformat
import pytest
from conftest import REPO

from fercore.book.suite import find_notebooks
from fercore.studies.parameters import SHARED, defaults, parameter_line, parameters_cell

NOTEBOOKS = find_notebooks(REPO / "notebooks")


def _parameters_cell(path) -> str:
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_shared_parameters_match_the_declaration(path):
    lines = _parameters_cell(path).splitlines()
    by_name = {line.split("=", 1)[0].strip(): line for line in lines if "=" in line and not line.startswith("#")}
    for parameter in SHARED:
        assert parameter.name in by_name, f"{path.name}: the parameters cell lacks {parameter.name}"
        assert by_name[parameter.name] == parameter_line(parameter), (
            f"{path.name}: {parameter.name} differs from fercore/studies/parameters.py: {by_name[parameter.name]!r}")
    assert lines[:len(SHARED)] == parameters_cell().splitlines(), f"{path.name}: the shared parameters open the cell, in order"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_literal_assignments(path):
    tree = ast.parse(_parameters_cell(path))
    values = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, f"{path.name}: only `name = literal` lines"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    assert {k: values[k] for k in defaults()} == defaults()


#: Code lines (not blank) a notebook may hold outside its parameters cell: narrative and calls; loops live in fercore.studies.
MAX_CODE_LINES = 45


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_hold_calls_not_logic(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    lines = sum(1 for c in code for line in c.source.splitlines() if line.strip())
    assert lines <= MAX_CODE_LINES, f"{path.name}: {lines} code lines; move loops and figure lists into fercore.studies"
    for cell in code:
        loops = [n for n in ast.walk(ast.parse(cell.source.replace(";", ""))) if isinstance(n, (ast.For, ast.While))]
        assert len(loops) <= 1 and not any(isinstance(m, (ast.For, ast.While)) for n in loops for m in ast.walk(n) if m is not n), (
            f"{path.name}: a nested loop belongs in fercore.studies")
