"""What a thesis notebook writes and shows: parameter checks, figures, tables, findings.

A notebook builds one :class:`Chapter`; every figure goes through :meth:`Chapter.figure` (saved
as a file under ``<output_dir>/<name>/figures/`` and shown from that file, so the book shows
exactly what was saved), every table through :meth:`Chapter.table`, and the closing cell
calls :meth:`Chapter.finish`, which writes ``chapter.json`` (figures, tables, numbers,
findings). The suite runner checks ``chapter.json`` against the files on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .fileio import write_csv, write_json
from .plots import save

log = logging.getLogger(__name__)


class MissingPathError(FileNotFoundError):
    """A notebook parameter points at a file or folder that does not exist."""


def project_folder(start: str | Path | None = None) -> Path:
    """The project folder: the nearest folder at or above ``start`` (default: the current one)
    that holds ``_toc.yml`` and ``notebooks/``; else the current folder.

    JupyterLab starts a kernel in the notebook's folder (``notebooks/``), papermill in the
    project folder: relative parameter paths are resolved against this folder in both, without
    changing the working directory."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "notebooks").is_dir():
            return folder
    return Path.cwd().resolve()


def resolve_paths(value: Any, root: str | Path) -> Any:
    """``value`` (a path, a list of paths, a ``{name: path}`` dict or None) with relative paths
    made absolute against ``root``."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: resolve_paths(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve_paths(v, root) for v in value]
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else Path(root) / path)


def require_paths(parameters: Mapping[str, Any], *, kind: Mapping[str, str] | None = None, params_file: str | None = None) -> None:
    """Fail early, naming the parameter to set, when a path parameter does not exist.

    ``parameters`` maps parameter names to a path, a list of paths, a ``{name: path}`` dict or
    None (not used: skipped). ``kind`` says which must be files (``"file"``) rather than folders.
    """
    kind = kind or {}
    where = params_file or "the notebook's parameters cell (or the suite's parameter file)"
    problems = []
    for name, value in parameters.items():
        if value is None:
            continue
        items = value.items() if isinstance(value, Mapping) else ((None, v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        for key, item in items:
            path = Path(str(item))
            label = f"{name}[{key!r}]" if key is not None else name
            want = kind.get(name, "folder")
            ok = path.is_file() if want == "file" else path.is_dir()
            if not ok:
                state = "is a folder, not a file" if path.is_dir() else ("is a file, not a folder" if path.exists() else "does not exist")
                problems.append(f"  {label} = {str(item)!r}: this {want} {state} (resolved: {path.resolve()})")
    if problems:
        raise MissingPathError(
            "these parameters point at missing data; set them in " + where + ":\n" + "\n".join(problems)
        )


def open_chapter(
    name: str,
    output_dir: str | Path,
    *,
    paths: Mapping[str, Any],
    files: Iterable[str] = (),
    seed: int | None = None,
    params_file: str | None = None,
    show: bool = True,
) -> tuple[Chapter, dict[str, Any]]:
    """A notebook's first cell: resolve the path parameters against the project folder and check
    them (:func:`require_paths`; names in ``files`` must be files), seed everything, show the
    library's log lines in the notebook, and open the :class:`Chapter`. Returns the chapter and
    the resolved paths."""
    from .runtime import seed_everything, show_library_logs

    root = project_folder()
    resolved = {key: resolve_paths(value, root) for key, value in paths.items()}
    require_paths(resolved, kind={key: "file" for key in files}, params_file=params_file)
    if seed is not None:
        seed_everything(seed)
    show_library_logs()
    return Chapter(Path(resolve_paths(output_dir, root)), name, show=show), resolved


@dataclass
class Chapter:
    """Output folder and record of one notebook chapter."""

    output_dir: Path
    name: str
    show: bool = True  # display figures and tables (IPython); off in plain scripts and tests
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        (self.dir / "figures").mkdir(parents=True, exist_ok=True)

    @property
    def dir(self) -> Path:
        return self.output_dir / self.name

    def path(self, *parts: str) -> Path:
        """A path inside the chapter folder (for functions that write their own files)."""
        return self.dir.joinpath(*parts)

    def figure(self, fig: Any, name: str, caption: str = "") -> None:
        """Save a matplotlib figure as ``figures/<name>.png`` and show it from that file."""
        (written,) = save(fig, self.dir / "figures" / name)
        self.show_file(written, caption)

    def show_file(self, path: str | Path, caption: str = "") -> None:
        """Record and show an image file that a fercore function already wrote."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"figure {path} was not written")
        rel = str(path.resolve().relative_to(self.dir.resolve()))
        if rel not in self.figures:
            self.figures.append(rel)
        if self.show:
            from IPython.display import Image, Markdown, display

            display(Image(filename=str(path)))
            if caption:
                display(Markdown(f"*{caption}*"))

    def table(self, frame: pd.DataFrame, name: str, *, index: bool = True, precision: int = 3) -> pd.DataFrame:
        """Write ``tables/<name>.csv``, show the table (floats rounded for reading only) and return it.

        Assign the result in a notebook: a bare last expression would show the table twice.
        """
        write_csv(self.dir / "tables" / f"{name}.csv", frame.reset_index() if index else frame)
        self.tables.append(f"tables/{name}.csv")
        if self.show:
            from IPython.display import display

            # a plain DataFrame renders as an HTML table in the book and as text in the PDF
            with pd.option_context("display.precision", precision, "display.max_columns", 60, "display.width", 250):
                display(frame)
        return frame

    def finish(self, findings: Iterable[str], numbers: Mapping[str, Any]) -> None:
        """Write ``chapter.json`` and show the findings as a list."""
        findings = list(findings)
        write_json(self.dir / "chapter.json", {
            "name": self.name, "figures": self.figures, "tables": self.tables,
            "numbers": dict(numbers), "findings": findings,
        })
        if self.show:
            from IPython.display import Markdown, display

            display(Markdown("\n".join(f"- {sentence}" for sentence in findings)))


def check_chapter(chapter_dir: str | Path) -> list[str]:
    """Problems with a finished chapter folder: missing ``chapter.json``, figures or tables."""
    import json

    chapter_dir = Path(chapter_dir)
    record = chapter_dir / "chapter.json"
    if not record.is_file():
        return [f"{record} is missing (the notebook did not reach Chapter.finish)"]
    data = json.loads(record.read_text())
    problems = []
    if not data.get("figures"):
        problems.append(f"{record}: no figures recorded")
    if not data.get("findings"):
        problems.append(f"{record}: no findings recorded")
    for rel in data.get("figures", []) + data.get("tables", []):
        target = chapter_dir / rel
        if not target.is_file() or target.stat().st_size == 0:
            problems.append(f"{target} is missing or empty")
    return problems
