"""AI-generated grid images: layout, cell detection, quality checks and face extraction."""

from __future__ import annotations

from fercore.grids.extract import (
    ExtractOptions,
    GridInputError,
    QualityThresholds,
    edges,
    extract_grids,
    parse_layout,
    summary_table,
)

__all__ = [
    "edges",
    "extract_grids",
    "ExtractOptions",
    "GridInputError",
    "parse_layout",
    "QualityThresholds",
    "summary_table",
]
