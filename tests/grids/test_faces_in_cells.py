"""faces_in_cells: cells whose one face the auto layout already found on the whole grid take it;
only the others are searched by the detector."""

from __future__ import annotations

import numpy as np

from fercore.grids.detectors import FaceDetector, faces_in_cells


class _Recorder(FaceDetector):
    """Finds one 10x10 face at (1, 2) in every cell it is asked about, and records the cells' shapes."""

    name = "recorder"

    def __init__(self):
        self.asked: list[tuple[int, ...]] = []

    def detect_cells(self, cells):
        self.asked += [c.shape for c in cells]
        return [np.array([[1, 2, 10, 10]]) for _ in cells]


def test_a_cell_with_one_large_grid_face_is_not_searched_again():
    rgb = np.zeros((100, 200, 3), dtype=np.uint8)
    boxes = [(0, 0, 0, 0, 100, 100), (0, 1, 100, 0, 200, 50), (1, 1, 100, 50, 200, 100)]
    grid = np.array([[20, 10, 60, 70],  # cell 0: one face, 0.7 of the cell: taken, in cell coordinates
                     [110, 5, 12, 12], [150, 10, 30, 30],  # cell 1: two centres: searched
                     [110, 60, 10, 10]])  # cell 2: one face of 0.1 of the cell (under GRID_FACE_MIN): searched
    detector = _Recorder()
    found = faces_in_cells(detector, rgb, boxes, grid)
    assert found[0].tolist() == [[20, 10, 60, 70]]
    assert [f.tolist() for f in found[1:]] == [[[1, 2, 10, 10]], [[1, 2, 10, 10]]]
    assert detector.asked == [(50, 100, 3), (50, 100, 3)]


def test_a_grid_face_reaching_past_its_cell_is_cut_to_it_and_without_grid_faces_every_cell_is_searched():
    rgb = np.zeros((100, 100, 3), dtype=np.uint8)
    boxes = [(0, 0, 0, 0, 50, 100), (0, 1, 50, 0, 100, 100)]
    found = faces_in_cells(_Recorder(), rgb, boxes, np.array([[10, 20, 45, 50]]))  # centre (32.5, 45), 5 px past x = 50
    assert found[0].tolist() == [[10, 20, 40, 50]]
    detector = _Recorder()
    assert len(faces_in_cells(detector, rgb, boxes, None)) == 2 and len(detector.asked) == 2
