"""AI-generated grid images: layout, cell detection, quality checks and face extraction.

Modules, lowest first: :mod:`~fercore.grids.layout` (cell edges), :mod:`~fercore.grids.detectors`
(faces in cells and on whole grids), :mod:`~fercore.grids.evidence` (the layout the faces
support), :mod:`~fercore.grids.quality` (reasons to reject a face), :mod:`~fercore.grids.cells`
(crops: in the cell or face-centred with a named framing), :mod:`~fercore.grids.compose` (composites
with known face boxes, for tests and benchmarks, and the null arm's grids of real faces), :mod:`~fercore.grids.records` (folders, records, duplicates, contact sheets) and
:mod:`~fercore.grids.extract` (one grid, every grid), :mod:`~fercore.grids.findings` (extraction outcomes and
layout disagreements per generator and template).
"""

from __future__ import annotations

from fercore.grids.compose import emotion_grids, write_grids
from fercore.grids.extract import ExtractOptions, extract_grids, failed_grids
from fercore.grids.findings import extraction_outcomes, layout_disagreements, layout_mismatches
from fercore.grids.layout import GridInputError, edges, parse_layout
from fercore.grids.quality import QualityThresholds
from fercore.grids.records import GRID_COLUMNS, RESERVED_COLUMNS, grid_columns, summary_table

__all__ = [
    "edges",
    "emotion_grids",
    "extract_grids",
    "extraction_outcomes",
    "failed_grids",
    "grid_columns",
    "GRID_COLUMNS",
    "ExtractOptions",
    "GridInputError",
    "layout_disagreements",
    "layout_mismatches",
    "parse_layout",
    "QualityThresholds",
    "RESERVED_COLUMNS",
    "summary_table",
    "write_grids",
]
