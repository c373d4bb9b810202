"""How numbers read in the book: percentages with one decimal, p-values, intervals in brackets.

Table builders state what each column holds with :func:`declare` (stored in ``frame.attrs``);
:func:`present` turns such a frame into strings for display, merging an estimate and its interval
into one column and leaving the numbers themselves untouched in the CSV that
:meth:`fercore.book.chapter.Chapter.table` writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

KEY = "present"  # frame.attrs key


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def percent(value: Any, digits: int = 1) -> str:
    """A share as a percentage with ``digits`` decimals (0.5549 -> ``55.5``); blank when missing."""
    return "" if _missing(value) else f"{100 * float(value):.{digits}f}"


def points(value: Any, digits: int = 1) -> str:
    """A difference of shares in signed percentage points (0.225 -> ``+22.5``)."""
    return "" if _missing(value) else f"{100 * float(value):+.{digits}f}"


def pvalue(value: Any) -> str:
    """``< 0.001`` below one in a thousand, else three significant digits (``0.0123``, ``0.596``, ``1.00``)."""
    if _missing(value):
        return ""
    value = float(value)
    return "< 0.001" if value < 0.001 else f"{value:#.3g}".rstrip(".")


def number(value: Any, digits: int = 3) -> str:
    """Integers as integers; other numbers with ``digits`` significant digits, never in e-notation
    between 1e-4 and 1e6; text unchanged."""
    if _missing(value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and float(value).is_integer()
                                                 and abs(value) < 1e6):
        return f"{int(value)}"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if value == 0 or 1e-4 <= abs(value) < 1e6:
            decimals = max(digits - 1 - int(math.floor(math.log10(abs(value)))), 0) if value else 0
            return f"{value:.{decimals}f}"
        return f"{value:.{digits - 1}e}"
    return str(value)


def interval(estimate: Any, low: Any, high: Any, fmt=percent) -> str:
    """``55.5 [49.0, 62.5]``: an estimate and its interval, each through ``fmt``."""
    if _missing(estimate):
        return ""
    if _missing(low) or _missing(high):
        return fmt(estimate)
    return f"{fmt(estimate)} [{fmt(low)}, {fmt(high)}]"


def declare(frame: pd.DataFrame, *, percent: Iterable[str] = (), points: Iterable[str] = (), p: Iterable[str] = (),
            ci: Mapping[str, tuple[str, str]] | None = None, spread: Mapping[str, str] | None = None,
            show: Sequence[str] | None = None, titles: Mapping[str, str] | None = None,
            decimals: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Say how ``frame``'s columns read (in place; returns ``frame``).

    ``percent``: shares shown as percentages; ``points``: differences of shares in percentage
    points; ``p``: p-values; ``ci``: ``{estimate: (low, high)}`` merged into ``estimate [low, high]``;
    ``spread``: ``{value: iqr_column}`` merged into ``value (iqr)``; ``show``: the columns
    displayed (default: all; the CSV keeps every column); ``titles``: headers for reading
    (``{column: title}``; the CSV keeps the column names); ``decimals``: ``{column: n}`` numbers
    shown with a fixed number of decimals."""
    spec = {"percent": list(percent), "points": list(points), "p": list(p), "ci": dict(ci or {}),
            "spread": dict(spread or {}), "show": list(show) if show is not None else None, "titles": dict(titles or {}),
            "decimals": dict(decimals or {})}
    columns = set(frame.columns)
    named = [*spec["percent"], *spec["points"], *spec["p"], *spec["ci"], *(c for pair in spec["ci"].values() for c in pair),
             *spec["spread"], *spec["spread"].values(), *(spec["show"] or []), *spec["titles"], *spec["decimals"]]
    unknown = [c for c in named if c not in columns]
    if unknown:
        raise KeyError(f"declare: no such columns {unknown}; the table has {list(frame.columns)}")
    frame.attrs[KEY] = spec
    return frame


def _header(column: Any, suffix: str) -> str:
    return " ".join(f"{column} {suffix}".split())


def present(frame: pd.DataFrame, spec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """``frame`` as strings for reading, following its :func:`declare` spec (or ``spec``);
    undeclared numbers get three significant digits. Headers say the unit: ``(%)``, ``(pp)``,
    ``[95% CI]``."""
    spec = dict(spec if spec is not None else frame.attrs.get(KEY, {}))
    before = list(frame.columns)
    frame = frame.reset_index(drop=True) if isinstance(frame.index, pd.RangeIndex) else frame.reset_index()
    index_columns = [c for c in frame.columns if c not in before]
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [" · ".join(str(part) for part in col if str(part)) for col in frame.columns]
        index_columns = list(frame.columns[:len(index_columns)])
    pct, pts, pvals = set(spec.get("percent", ())), set(spec.get("points", ())), set(spec.get("p", ()))
    ci, spread = dict(spec.get("ci", {})), dict(spec.get("spread", {}))
    merged = {c for pair in ci.values() for c in pair} | set(spread.values())
    show = [*index_columns, *[c for c in (spec.get("show") or frame.columns) if c not in merged and c not in index_columns]]
    titles, fixed = dict(spec.get("titles", {})), dict(spec.get("decimals", {}))
    out = {}
    for column in show:
        values = frame[column]
        title = titles.get(column, column)
        fmt = percent if column in pct else points if column in pts else pvalue if column in pvals else number
        if column in fixed:
            fmt = (lambda digits: (lambda v: "" if _missing(v) else f"{float(v):.{digits}f}"))(fixed[column])
        unit = "(%)" if column in pct else "(pp)" if column in pts else ""
        if column in ci:
            low, high = ci[column]
            out[_header(title, f"{unit} [95% CI]")] = [interval(v, lo, hi, fmt) for v, lo, hi in
                                                        zip(values, frame[low], frame[high], strict=True)]
        elif column in spread:
            iqr = frame[spread[column]]
            out[_header(title, f"{unit} (IQR)")] = [f"{fmt(v)} ({fmt(q)})" if not _missing(v) else ""
                                                     for v, q in zip(values, iqr, strict=True)]
        else:
            out[_header(title, unit)] = [fmt(v) for v in values]
    return pd.DataFrame(out)


def markdown_table(shown: pd.DataFrame) -> str:
    """A pipe table of a frame of strings (``|`` in cells escaped)."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *rows])
