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
