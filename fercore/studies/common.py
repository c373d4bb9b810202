"""Small helpers the study modules share: names for files, number formats, table building, glue."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

import pandas as pd

from fercore.core.present import pvalue

#: Significance level of every test the chapters report (a convention, stated in each chapter).
ALPHA = 0.05


def slug(name: str) -> str:
    """A file-name-safe form of a label: 'fine-tuned on synthetic' -> 'fine-tuned_on_synthetic'."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_").lower()


def pct(x: float) -> str:
    """0.584 -> '58.4%'."""
    return f"{100 * x:.1f}%"


def p_text(p: float) -> str:
    """'p = 0.0123' (three significant digits) or 'p < 0.001', as in the tables (:func:`fercore.core.present.pvalue`)."""
    shown = pvalue(p)
    return f"p {shown}" if shown.startswith("<") else f"p = {shown}"


def frame(rows: Iterable[Any], titles: Mapping[str, str], index: str | list[str] | None = None) -> pd.DataFrame:
    """A display table from dataclass rows: ``titles`` maps field names to column titles (and
    picks the columns, in order). Titles are for reading only; code reads the dataclasses."""
    records = [asdict(r) if is_dataclass(r) else dict(r) for r in rows]
    table = pd.DataFrame([{title: rec[name] for name, title in titles.items()} for rec in records], columns=list(titles.values()))
    if index is not None:
        keys = [index] if isinstance(index, str) else index
        table = table.set_index([titles[k] for k in keys])
    return table


def glue_numbers(numbers: Mapping[str, Any], *, prefix: str = "", show: bool = False) -> dict[str, Any]:
    """Glue each value into the notebook (myst-nb) under ``prefix + key`` for the chapter's prose:
    numbers as numbers (``{glue:text}`key:.3f```), text as Markdown (``{glue:md}`key```).
    Outside a notebook kernel nothing is displayed. Returns the glued keys and values."""
    from IPython.display import Markdown
    from myst_nb import glue

    glued = {}
    for key, value in numbers.items():
        name = f"{prefix}{key}"
        glue(name, Markdown(value) if isinstance(value, str) else value, display=show)
        glued[name] = value
    return glued
