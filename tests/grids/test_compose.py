"""The grid composer (fercore.grids.compose): canvases of any shape, rows of their own length,
faces filling part of their cell off-centre, and the true face boxes it records."""

from __future__ import annotations

import numpy as np
import pytest

from fercore.grids import compose as C


def squares(n: int, side: int = 48) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (side, side, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("kind, shape, cells", [("wide_16x9", (768, 1344, 3), 18), ("tall_9x16", (1344, 768, 3), 18),
                                                ("uneven_rows", (1024, 1024, 3), 30), ("regular", (768, 768, 3), 16)])
def test_kinds_have_their_canvas_and_cells(kind, shape, cells):
    composite = C.compose_kind(kind, squares(40))
    assert composite.image.shape == shape and len(composite.cells) == cells
    for (x0, y0, x1, y1), (a, b, c, d) in zip(composite.cells, composite.faces, strict=True):
        assert x0 <= a < c <= x1 and y0 <= b < d <= y1  # each face inside its cell
    assert composite.true_faces == composite.faces  # no face boxes given: the pasted squares are the truth


def test_rows_of_their_own_length():
    composite = C.compose_kind("uneven_rows", squares(40))
    assert composite.row_lengths == (5, 7, 6, 5, 7) and composite.name == "rows 5,7,6,5,7"
    tops = sorted({cell[1] for cell in composite.cells})
    assert [sum(cell[1] == top for cell in composite.cells) for top in tops] == [5, 7, 6, 5, 7]


def test_small_faces_sit_off_centre_at_55_to_70_percent_of_the_cell():
    composite = C.compose_kind("small_off_centre", squares(16), seed=3)
    fills, offsets = [], []
    for (x0, y0, x1, y1), (a, b, c, d) in zip(composite.cells, composite.faces, strict=True):
        fills.append((c - a) / min(x1 - x0, y1 - y0))
        offsets.append(abs((a + c) / 2 - (x0 + x1) / 2) / (x1 - x0))
    assert 0.54 <= min(fills) and max(fills) <= 0.71
    assert max(offsets) > 0.08 and np.median(offsets) > 0.03  # off-centre, background around


def test_true_face_boxes_map_each_faces_own_box_into_its_square():
    boxes = [(0.1, -0.05, 0.9, 1.05)] * 16
    composite = C.compose_kind("regular", squares(16), face_boxes=boxes)
    (a, b, c, _), (p, q, r, s) = composite.faces[0], composite.truth[0]
    side = c - a
    assert (p, q, r, s) == (round(a + 0.1 * side), round(b - 0.05 * side), round(a + 0.9 * side), round(b + 1.05 * side))
    assert C.located(composite, [composite.truth[0]]) == [True] + [False] * 15


def test_old_composites_are_unchanged():
    """The composer keeps the random draws of the test helper it grew from (seeded composites stay the same)."""
    one = C.compose_portraits(squares(36), 6, 6, fill=0.85, fill_jitter=0.1, offset=8, edge_jitter=0.1, blank=(3,), seed=2)
    two = C.compose_portraits(squares(36), 6, 6, fill=0.85, fill_jitter=0.1, offset=8, edge_jitter=0.1, blank=(3,), seed=2)
    assert np.array_equal(one.image, two.image) and one.kinds[3] == "blank" and one.faces[3] is None
    assert one.cells[0] == (0, 0, one.cells[1][0], one.cells[6][1])
