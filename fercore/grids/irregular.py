"""Layouts that are not a full rectangle, found from the faces themselves: rows of their own
length (missing cells and stray faces included) and, when rows and columns are chaotic,
detection-only cells (each detected face is a face).

:func:`refine_layout` takes the rectangle chosen by evidence (:func:`fercore.grids.evidence.choose_layout`)
and the faces found on the whole grid, and keeps it unless rows of faces explain them clearly
better; its evidence line says which and why.
"""

from __future__ import annotations

import numpy as np

from fercore.grids.layout import Layout

Cell = tuple[int, int, int, int, int, int]
ROW_GAP = 0.5  # face centres further apart than this share of the median face height start a new row
ROW_SPREAD = 0.5  # a row whose face centres spread over more than this share of the face height is not a row
MISSING_GAP = 1.6  # a gap of this many times the row's face spacing holds missing cells
ROWS_MARGIN = 0.05  # rows must beat the rectangle's score by this much per face
CHAOTIC_CENTRING = 0.5  # below this mean centring score per face (and no rows): detection-only
FACE_CELL_MARGIN = 0.3  # detection-only: each face's cell is its box grown by this share of its size per side


def score_cells(cells: list[Cell], found: np.ndarray) -> float:
    """How well ``cells`` explain ``found`` ((N, 4) x, y, w, h faces): each face counts the share
    of its box inside the cell holding its centre times (1 - x offset) x (1 - y offset) of its
    centre from the cell's (shares of half the cell); each face beyond the first in a cell costs 1."""
    if not len(found) or not cells:
        return 0.0
    x0, y0 = found[:, 0].astype(float), found[:, 1].astype(float)
    x1, y1 = x0 + found[:, 2], y0 + found[:, 3]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    boxes = np.array([c[2:] for c in cells], dtype=float)
    holds = (boxes[:, None, 0] <= cx) & (cx < boxes[:, None, 2]) & (boxes[:, None, 1] <= cy) & (cy < boxes[:, None, 3])
    score = 0.0
    for k in range(len(found)):
        owners = np.flatnonzero(holds[:, k])
        if not len(owners):
            continue
        a, b, c, d = boxes[owners[0]]
        inside = max(0.0, min(x1[k], c) - max(x0[k], a)) * max(0.0, min(y1[k], d) - max(y0[k], b))
        off_x = min(abs(cx[k] - (a + c) / 2) / ((c - a) / 2), 1.0)
        off_y = min(abs(cy[k] - (b + d) / 2) / ((d - b) / 2), 1.0)
        score += inside / max(found[k, 2] * found[k, 3], 1.0) * (1 - off_x) * (1 - off_y)
    return score - float(np.clip(holds.sum(axis=1) - 1, 0, None).sum())


def _row_cuts(lo: np.ndarray, hi: np.ndarray, length: int) -> list[int]:
    """Edges of the cells along a row: halfway between neighbouring faces (``lo``..``hi`` each, sorted),
    gaps of :data:`MISSING_GAP` x the face spacing split into cells of that spacing (missing cells)."""
    centres = (lo + hi) / 2
    step = float(np.median(np.diff(centres))) if len(centres) > 1 else float(hi[0] - lo[0]) * 1.5
    cuts = [0]
    for i in range(1, len(centres)):
        gap = centres[i] - centres[i - 1]
        parts = int(round(gap / step)) if gap > MISSING_GAP * step else 1
        start, end = (hi[i - 1] + lo[i - 1]) / 2, (hi[i] + lo[i]) / 2
        mid = (hi[i - 1] + lo[i]) / 2 if parts == 1 else None
        cuts += [int(round(mid))] if mid is not None else [int(round(start + (end - start) * (j + 0.5) / parts)) for j in range(parts)]
    return [*cuts, length]


def row_layout(found: np.ndarray, width: int, height: int) -> Layout | None:
    """Rows of the faces found on the grid, each row cut into its own cells between its faces;
    None when the faces do not fall into clean rows (chaotic)."""
    if len(found) < 2:
        return None
    cy = found[:, 1] + found[:, 3] / 2
    size = float(np.median(found[:, 3]))
    order = np.argsort(cy)
    groups = np.split(order, np.flatnonzero(np.diff(cy[order]) > ROW_GAP * size) + 1)
    if any(np.ptp(cy[g]) > ROW_SPREAD * size for g in groups):
        return None
    tops = [float(np.median(found[g, 1])) for g in groups]
    bottoms = [float(np.median(found[g, 1] + found[g, 3])) for g in groups]
    row_edges = [0, *(int(round((b + t) / 2)) for b, t in zip(bottoms[:-1], tops[1:], strict=True)), height]
    if np.any(np.diff(row_edges) <= 0):
        return None
    cells: list[Cell] = []
    lengths = []
    for r, g in enumerate(groups):
        g = g[np.argsort(found[g, 0])]
        cuts = _row_cuts(found[g, 0].astype(float), (found[g, 0] + found[g, 2]).astype(float), width)
        if np.any(np.diff(cuts) <= 0):
            return None
        lengths.append(len(cuts) - 1)
        cells += [(r, c, cuts[c], row_edges[r], cuts[c + 1], row_edges[r + 1]) for c in range(len(cuts) - 1)]
    return Layout(row_edges, [0, width], "rows by faces", cells=cells, shape="rows " + ",".join(map(str, lengths)))


def face_layout(found: np.ndarray, width: int, height: int) -> Layout:
    """Detection-only cells: each face found on the grid, its box grown by :data:`FACE_CELL_MARGIN`
    (clipped to the canvas), in reading order (row: rank from the top, col 0)."""
    order = np.lexsort((found[:, 0], found[:, 1]))
    cells: list[Cell] = []
    for i, k in enumerate(order):
        x, y, w, h = (float(v) for v in found[k])
        grow_x, grow_y = FACE_CELL_MARGIN * w, FACE_CELL_MARGIN * h
        cells.append((i, 0, int(max(0, x - grow_x)), int(max(0, y - grow_y)), int(min(width, x + w + grow_x)),
                      int(min(height, y + h + grow_y))))
    return Layout([0, height], [0, width], "faces (detection only)", cells=cells, shape=f"faces {len(cells)}")


def refine_layout(layout: Layout, found: np.ndarray, width: int, height: int) -> Layout:
    """``layout`` (a rectangle), or rows of their own length when the faces form rows of unequal
    length that explain them better by :data:`ROWS_MARGIN` a face (not when only one row differs
    from the rectangle's: a stray face or a missing one, noted in the evidence), or detection-only cells when
    the faces form no rows and the rectangle centres them poorly (:data:`CHAOTIC_CENTRING`)."""
    if len(found) < 3:
        return layout
    rect = score_cells(layout.boxes(), found)
    rows = row_layout(found, width, height)
    if rows is not None:
        counts = [sum(1 for b in rows.boxes() if b[0] == r) for r in range(rows.rows)]
        odd = [r for r, n in enumerate(counts) if n != layout.cols]
        if len(counts) == layout.rows and len(odd) <= 1:  # the rectangle's rows, one row with a stray or missing face at most
            if odd:
                layout.evidence += (f"{'; ' if layout.evidence else ''}row {odd[0]} holds {counts[odd[0]]} faces, the others "
                                    f"{layout.cols}: a stray or missing face, kept as a {layout.name} cell")
            return layout
        by_rows = score_cells(rows.boxes(), found)
        if len(set(counts)) > 1 and by_rows > rect + ROWS_MARGIN * len(found):
            rows.evidence = (f"{rows.name} by the faces themselves ({len(found)} faces in rows of unequal length, score "
                             f"{by_rows:.1f}); rectangle {layout.name} scored {rect:.1f}" + (f"; {layout.evidence}" if layout.evidence else ""))
            return rows
        return layout
    if rect / len(found) < CHAOTIC_CENTRING:
        faces = face_layout(found, width, height)
        faces.evidence = (f"{faces.name}: detection only: the {len(found)} faces form no rows and the best rectangle "
                          f"{layout.name} centres them poorly ({rect / len(found):.2f} a face)")
        return faces
    return layout
