"""Grid layout geometry: a layout's cell edges in source pixels, uniform splits and ``ROWSxCOLS`` text."""

from __future__ import annotations

from dataclasses import dataclass

MAX_CELLS = 12  # the most rows or columns a candidate layout may have


class GridInputError(ValueError):
    """A raw grid folder or image that cannot be extracted; the message names the file and the fix."""


def parse_layout(text: str) -> tuple[int, int]:
    """'6x6' -> (6, 6) as (rows, cols)."""
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"layout {text!r} is not ROWSxCOLS (e.g. 6x6) or 'auto'") from None
    if rows < 1 or cols < 1:
        raise ValueError(f"layout {text!r} needs at least one row and column")
    return rows, cols


def edges(length: int, parts: int) -> list[int]:
    """Exact integer cell edges: ``parts`` cells cover ``0..length``, no pixel lost or doubled."""
    return [round(i * length / parts) for i in range(parts + 1)]


@dataclass
class Layout:
    """Cell edges in source pixels and how they were found."""

    row_edges: list[int]
    col_edges: list[int]
    method: str = "uniform"
    note: str = ""
    evidence: str = ""  # how the layout was chosen: the winning candidate, the runner-up and the margin
    cells: list[tuple[int, int, int, int, int, int]] | None = None  # irregular layouts: (row, col, x0, y0, x1, y1) each
    shape: str = ""  # irregular layouts' name: 'rows 5,7,6' or 'faces 23'

    @property
    def rows(self) -> int:
        return len(self.row_edges) - 1

    @property
    def cols(self) -> int:
        return len(self.col_edges) - 1

    @property
    def name(self) -> str:
        return self.shape or f"{self.rows}x{self.cols}"

    def boxes(self) -> list[tuple[int, int, int, int, int, int]]:
        """(row, col, x0, y0, x1, y1) per cell, row-major."""
        if self.cells is not None:
            return list(self.cells)
        return [
            (r, c, self.col_edges[c], self.row_edges[r], self.col_edges[c + 1], self.row_edges[r + 1])
            for r in range(self.rows)
            for c in range(self.cols)
        ]


def uniform_layout(width: int, height: int, rows: int, cols: int) -> Layout:
    """A ``rows`` x ``cols`` split of a ``width`` x ``height`` image into equal cells (to the pixel)."""
    return Layout(edges(height, rows), edges(width, cols), "uniform")
