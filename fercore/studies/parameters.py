"""The notebook parameters every chapter shares, declared once.

Papermill reads each notebook's cell tagged ``parameters``, which must hold literal assignments;
so the four notebooks repeat these lines, and ``tests/studies/test_parameters.py`` fails when a
notebook's line differs from :func:`parameter_line` (name, default and comment). Edit a shared
parameter here first, then paste :func:`parameters_cell`'s lines into every notebook.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Parameter:
    """A notebook parameter: its name, its default (a literal) and the comment after it."""

    name: str
    default: Any
    comment: str = ""


SHARED: tuple[Parameter, ...] = (
    Parameter("real_roots", {"demo-real": "data/demo/real"}, "name -> folder with <split>/<emotion>/ images (FER2013, AffectNet ...)"),
    Parameter("real_test_split", "test"),
    Parameter("synthetic_root", "data/demo/synthetic/processed",
              "extracted faces: manifest.csv (fercore extract) or <split>/<emotion>/"),
    Parameter("synthetic_test_split", "test"),
    Parameter("models", None,
              "the models compared: {name: {weights, arch, image_size, trust_pickle, backbone}}; None: the single model below"),
    Parameter("weights", "results/demo/latest/resnet10t/checkpoint.pt",
              "single-model shorthand: fercore checkpoint or HSEmotion / state-dict file"),
    Parameter("trust_pickle", False, "True only for a pickled checkpoint you trust (HSEmotion enet_*.pt)"),
    Parameter("arch", "resnet10t", "b0 | b2 | any timm name; used when the weights file does not name its architecture"),
    Parameter("image_size", None, "input size in pixels (None: the checkpoint's, else the architecture's: B0 224, B2 260)"),
    Parameter("batch_size", 64),
    Parameter("max_per_class", 50, "test images per emotion and test set (None: all)"),
    Parameter("seed", 0),
    Parameter("workers", 2, "DataLoader worker processes"),
    Parameter("device", "auto", "auto | cpu | cuda"),
    Parameter("progress", True, "progress bars (the suite runner turns them off)"),
    Parameter("output_dir", "results/suite/interactive", "the suite runner sets this to its run folder"),
    Parameter("label_sheet", None, "filled label sheet (fercore label-sheet; docs/label-sheet.md); None: synthetic labels unchecked"),
    Parameter("label_key", None, "its key file (None: <sheet folder>-key/label_key.csv)"),
    Parameter("null_arm", True, "real faces no model saw, composed into grids and extracted like the synthetic faces; False: off"),
    Parameter("null_grids", None, "null grids in all (None: as many per emotion as the synthetic grids the chapter scores)"),
)


def literal(value: Any) -> str:
    """The Python literal of a default as the notebooks write it (strings in double quotes)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return repr(value)


def parameter_line(parameter: Parameter) -> str:
    """``name = default  # comment``: the line a notebook's parameters cell holds."""
    line = f"{parameter.name} = {literal(parameter.default)}"
    return f"{line}  # {parameter.comment}" if parameter.comment else line


def parameters_cell() -> str:
    """The shared lines, in order, that open every notebook's parameters cell."""
    return "\n".join(parameter_line(p) for p in SHARED)


def defaults() -> dict[str, Any]:
    """``{name: default}`` of the shared parameters."""
    return {p.name: p.default for p in SHARED}
