"""The thesis appendix: a notebook's chapter (figures, tables, findings), the suite runner (papermill),
its runs on disk, and the book build (Jupyter Book)."""

from __future__ import annotations

from fercore.book.build import build_book, toc_files
from fercore.book.chapter import Chapter, MissingPathError, check_chapter, open_chapter, project_folder, resolve_paths
from fercore.book.runs import SuiteError, latest_run
from fercore.book.suite import SuiteParams, run_suite

__all__ = ["Chapter", "MissingPathError", "SuiteError", "SuiteParams", "build_book", "check_chapter", "latest_run", "open_chapter",
           "project_folder", "resolve_paths", "run_suite", "toc_files"]
