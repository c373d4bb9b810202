"""What a thesis notebook writes and shows: parameter checks, figures, tables, findings.

A notebook builds one :class:`Chapter`; every figure goes through :meth:`Chapter.figure` (saved
as a file under ``<output_dir>/<name>/figures/`` and shown from that file, so the book shows
exactly what was saved), every table through :meth:`Chapter.table`, and the closing cell
calls :meth:`Chapter.finish`, which writes ``chapter.json`` (figures, tables, numbers,
findings). The suite runner checks ``chapter.json`` against the files on disk.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from fercore.analysis import heat_table, save
from fercore.book.notes import Note, NoteCollector, collect, notes_markdown, release, summarise
from fercore.core.files import write_csv, write_json
from fercore.core.present import markdown_table, present
from fercore.core.runtime import seed_everything

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
    them (:func:`require_paths`; names in ``files`` must be files), seed everything, open the
    :class:`Chapter` and gather the library's log lines into its notes (:mod:`fercore.book.notes`:
    shown once, at the end, with what each means), not as raw text in the cells. Returns the chapter
    and the resolved paths."""
    root = project_folder()
    resolved = {key: resolve_paths(value, root) for key, value in paths.items()}
    require_paths(resolved, kind={key: "file" for key in files}, params_file=params_file)
    if seed is not None:
        seed_everything(seed)
    chapter = Chapter(Path(resolve_paths(output_dir, root)), name, show=show)
    chapter.collector = collect()
    return chapter, resolved


#: Output metadata key that marks a figure, table or caption for the book (:mod:`fercore.book`).
BOOK_KEY = "fercore"


def label(kind: str, chapter: str, name: str) -> str:
    """The cross-reference label of a figure (``fig``) or table (``tbl``): ``fig-rq1-confusion``."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{chapter}-{name}".lower()).strip("-")
    return f"{kind}-{slug}"


class Label(str):
    """A figure's cross-reference label; shows nothing when it is a notebook cell's last value."""

    def _ipython_display_(self) -> None:
        pass


def _sentence(caption: str, what: str) -> str:
    caption = " ".join(caption.split())
    if not caption:
        raise ValueError(f"{what}: give a caption, one sentence saying what it shows (the book numbers and prints it)")
    return caption if caption[-1] in ".?!)" else caption + "."


@dataclass
class Chapter:
    """Output folder and record of one notebook chapter."""

    output_dir: Path
    name: str
    show: bool = True  # display figures and tables (IPython); off in plain scripts and tests
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)  # models and sample tables used (fercore.core.provenance)
    collector: NoteCollector | None = field(default=None, repr=False)  # the library's log lines while the chapter runs

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        (self.dir / "figures").mkdir(parents=True, exist_ok=True)

    @property
    def dir(self) -> Path:
        return self.output_dir / self.name

    def path(self, *parts: str) -> Path:
        """A path inside the chapter folder (for functions that write their own files)."""
        return self.dir.joinpath(*parts)

    def figure(self, fig: Any, name: str, caption: str) -> str:
        """Save a matplotlib figure as ``figures/<name>.png`` and show it from that file, with
        ``caption`` (a sentence). Returns its label (``fig-<chapter>-<name>``) for ``{numref}``."""
        (written,) = save(fig, self.dir / "figures" / name)
        return self.show_file(written, caption)

    def show_file(self, path: str | Path, caption: str) -> str:
        """Record and show an image file that a fercore function already wrote; returns its label."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"figure {path} was not written")
        caption = _sentence(caption, f"figure {path.name}")
        rel = str(path.resolve().relative_to(self.dir.resolve()))
        if rel not in self.figures:
            self.figures.append(rel)
        name = Label(label("fig", self.name, "-".join(part for part in Path(rel).with_suffix("").parts if part != "figures")))
        if self.show:
            from IPython.display import Image, Markdown, display

            display(Image(filename=str(path)), metadata={BOOK_KEY: {"kind": "figure", "label": name, "caption": caption}})
            display(Markdown(f"*{caption}*"), metadata={BOOK_KEY: {"kind": "caption"}})
        return name

    def table(self, frame: pd.DataFrame, name: str, caption: str, *, index: bool = True) -> pd.DataFrame:
        """Write ``tables/<name>.csv`` (every column, full precision), show the table as it reads
        (:func:`fercore.core.present.present`: percentages, p-values, intervals; the columns its builder
        declared) with ``caption``, and return ``frame``.

        Assign the result in a notebook: a bare last expression would show the table twice.
        """
        caption = _sentence(caption, f"table {name}")
        write_csv(self.dir / "tables" / f"{name}.csv", frame.reset_index() if index else frame)
        self.tables.append(f"tables/{name}.csv")
        if self.show:
            from IPython.display import display

            shown = present(frame if index else frame.reset_index(drop=True))
            tag = label("tbl", self.name, name)
            # a tilde fence: a caption may hold backticks, which a backtick fence's info string cannot
            directive = f"~~~{{table}} {caption}\n:name: {tag}\n\n{markdown_table(shown)}\n~~~"
            html = f"<p><b>Table.</b> {escape(caption)}</p>" + shown.to_html(index=False, escape=True)
            display({"text/html": html, "text/markdown": directive, "text/plain": f"{caption}\n{shown.to_string(index=False)}"},
                    raw=True, metadata={BOOK_KEY: {"kind": "table", "label": tag, "caption": caption}})
        return frame

    def heat_table(self, frame: pd.DataFrame, name: str, caption: str, *, percent: bool = True, cmap: str = "Blues") -> pd.DataFrame:
        """A table of numbers that reads best as colour (per-class recall, distances): written as
        ``tables/<name>.csv`` and shown as an annotated heat map figure; returns ``frame``."""
        write_csv(self.dir / "tables" / f"{name}.csv", frame.reset_index())
        self.tables.append(f"tables/{name}.csv")
        self.figure(heat_table(frame, percent=percent, cmap=cmap), name, caption)
        return frame

    def note(self, text: str) -> None:
        """Show a line of MyST text made by the code (e.g. ``{numref}`` references to figures made in
        a loop); the book renders its roles."""
        if self.show:
            from IPython.display import Markdown, display

            display(Markdown(text), metadata={BOOK_KEY: {"kind": "note"}})

    def remark(self, *lines: str) -> None:
        """A notebook's own status lines (which run was reused, what was skipped): gathered into the chapter's notes."""
        if self.collector is None:
            self.collector = NoteCollector()
        self.collector.notes += [Note("INFO", "notebook", line) for text in lines for line in str(text).splitlines() if line.strip()]

    def notes_section(self) -> str:
        """Show the gathered warnings and status lines as one note (each warning with what it means for the numbers),
        write them to ``notes.json`` and stop gathering; returns the note's Markdown."""
        summary = summarise(self.collector.notes if self.collector is not None else [])
        write_json(self.dir / "notes.json", summary.to_json())
        if self.collector is not None:
            release(self.collector)
        text = notes_markdown(summary)
        self.note(text)
        return text

    def finish(self, findings: Iterable[str], numbers: Mapping[str, Any]) -> None:
        """Write ``chapter.json`` (with the models and sample tables used, :attr:`provenance`, and the chapter's notes),
        show the findings as a list and then the notes (:meth:`notes_section`)."""
        findings = list(findings)
        if self.show:
            from IPython.display import Markdown, display

            display(Markdown("\n".join(f"- {sentence}" for sentence in findings)))
        self.notes_section()
        notes = summarise(self.collector.notes if self.collector is not None else []).to_json()
        write_json(self.dir / "chapter.json", {
            "name": self.name, "figures": self.figures, "tables": self.tables,
            "numbers": dict(numbers), "findings": findings, "provenance": self.provenance, "notes": notes,
        })


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
