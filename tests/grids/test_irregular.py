"""Layouts that are not a full rectangle, from the faces themselves (fercore.grids.irregular)."""

from __future__ import annotations

import numpy as np

from fercore.grids import irregular as I
from fercore.grids import layout as L


def row_faces(lengths, width=1024, height=1024, fill=0.6, skip=()) -> np.ndarray:
    """Centred x, y, w, h face boxes of rows of the given lengths (cells numbered row-major; ``skip``: missing)."""
    rows, boxes, k = L.edges(height, len(lengths)), [], 0
    for r, n in enumerate(lengths):
        cols = L.edges(width, n)
        for c in range(n):
            if k not in skip:
                w, h = (cols[c + 1] - cols[c]) * fill, (rows[r + 1] - rows[r]) * fill
                boxes.append(((cols[c] + cols[c + 1] - w) / 2, (rows[r] + rows[r + 1] - h) / 2, w, h))
            k += 1
    return np.round(np.array(boxes)).astype(int)


def test_rows_of_unequal_length_replace_the_rectangle():
    faces = row_faces((5, 7, 6, 5, 7), fill=0.5)
    rect = L.uniform_layout(1024, 1024, 5, 7)
    layout = I.refine_layout(rect, faces, 1024, 1024)
    assert layout.name == "rows 5,7,6,5,7" and len(layout.boxes()) == 30
    assert "rows of unequal length" in layout.evidence and "rectangle 5x7 scored" in layout.evidence
    assert I.score_cells(layout.boxes(), faces) > I.score_cells(rect.boxes(), faces) + 3
    for k, (_, _, x0, y0, x1, y1) in enumerate(layout.boxes()):  # each cell holds its face
        x, y, w, h = faces[k]
        assert x0 <= x + w / 2 < x1 and y0 <= y + h / 2 < y1


def test_a_regular_grid_stays_a_rectangle_and_a_missing_face_leaves_its_cell():
    faces = row_faces((6,) * 6)
    rect = L.uniform_layout(1024, 1024, 6, 6)
    assert I.refine_layout(rect, faces, 1024, 1024) is rect
    gap = row_faces((6,) * 6, skip=(8,))  # a face missed in row 1: its cell is kept from the face spacing
    rows = I.row_layout(gap, 1024, 1024)
    assert rows is not None and rows.name == "rows 6,6,6,6,6,6"
    assert I.refine_layout(rect, gap, 1024, 1024) is rect


def test_chaotic_faces_fall_back_to_detection_only():
    rng = np.random.default_rng(1)
    faces = np.column_stack([rng.uniform(0, 900, 14), rng.uniform(0, 900, 14), np.full(14, 110), np.full(14, 110)]).round().astype(int)
    layout = I.refine_layout(L.uniform_layout(1024, 1024, 6, 6), faces, 1024, 1024)
    assert layout.name == "faces 14" and layout.method == "faces (detection only)" and "detection only" in layout.evidence
    for _, _, x0, y0, x1, y1 in layout.boxes():
        assert 0 <= x0 < x1 <= 1024 and 0 <= y0 < y1 <= 1024


def test_one_row_with_a_stray_face_keeps_the_rectangle_and_says_so():
    faces = row_faces((6, 6, 7, 6, 6, 6), fill=0.5)
    rect = L.uniform_layout(1024, 1024, 6, 6)
    layout = I.refine_layout(rect, faces, 1024, 1024)
    assert layout.name == "6x6" and "row 2 holds 7 faces, the others 6" in layout.evidence
