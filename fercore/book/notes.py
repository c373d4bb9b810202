"""A chapter's notes: the library's warnings and status lines gathered while a notebook runs, instead of raw log text
in the cells, and shown once at the end as one readable note that says what each means for the numbers.

:class:`NoteCollector` is a :class:`logging.Handler` on the ``fercore`` logger while a chapter is open (records at
INFO and up); :meth:`fercore.book.chapter.Chapter.remark` adds a notebook's own status lines. :func:`notes_markdown`
groups identical messages (counted), puts each warning with its meaning (:data:`MEANINGS`, else a general one), and
lists the status lines apart; every line is also kept in ``<chapter>/notes.json``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field

from fercore.core.runtime import LIBRARY_LOGS

#: (pattern of a library warning, what it means for the chapter's numbers). The first that matches is used.
MEANINGS: tuple[tuple[str, str], ...] = (
    (r"selection split has no images of", "The epoch was selected on the other classes only; the reported test numbers "
     "still cover every class, but the selected weights may be worse for the classes named than a full selection split would give."),
    (r"training data has no images of", "The model never learnt the classes named: its recall on them is 0 and its "
     "balanced accuracy is lower by construction, not because those faces are hard."),
    (r"training data has only one class", "This run's accuracy and F1 mean nothing: one class can be predicted without looking."),
    (r"unreadable or truncated image|could not be read", "Those images are in no number of this chapter; the counts (n) "
     "in the tables are without them."),
    (r"was trained at .* px; feeding it", "The model sees images at another size than it was trained on; its accuracy may be "
     "lower than at its own size, the same for every test set."),
    (r"only \d+ folds are possible", "Fewer cross-validation folds than asked: the spread over folds rests on fewer numbers."),
    (r"no face landmarks|framing of .* unknown", "Faces without landmarks are left out of the framing figures, and the matched "
     "arm cannot crop them to the real set's framing: the matched comparison is format-only for them."),
    (r"not found \(RQ2 trains it", "A training regime is missing from this run: its rows are absent from the tables."),
    (r"this pass runs on PyTorch", "The numbers are the same (ONNX Runtime and PyTorch agree within the parity check); only speed differs."),
    (r"facenet-pytorch is not installed", "Faces are found without landmarks: the framing table and the matched arm are "
     "less precise."),
    (r"started on fercore .* goes on with", "The chapters of this run were computed by two code versions; the run page lists both."),
    (r"inference cache .* unreadable|hash cache|face cache", "A cache was recomputed: the numbers are unaffected."),
)
GENERAL = "Not one of the known cases: read it as a caveat on this chapter's numbers."


@dataclass
class Note:
    """One gathered line: its level (``WARNING``, ``INFO`` ...), where it came from, and the message."""

    level: str
    source: str
    message: str

    def meaning(self) -> str:
        for pattern, meaning in MEANINGS:
            if re.search(pattern, self.message):
                return meaning
        return GENERAL


class NoteCollector(logging.Handler):
    """Keeps every record of the ``fercore`` logger (INFO and up) and every Python warning as a :class:`Note`."""

    NAME = "fercore-chapter-notes"

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.set_name(self.NAME)
        self.notes: list[Note] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.name == "py.warnings":  # "file:line: Category: text\n  source line": keep "Category: text"
                first = message.strip().splitlines()[0] if message.strip() else message
                message = re.sub(r"^.*?:\d+: ", "", first)
            self.notes.append(Note(record.levelname, record.name, message))
        except Exception:  # a broken format string must not stop the chapter
            self.handleError(record)


def collect(level: int = logging.INFO) -> NoteCollector:
    """Gather the ``fercore`` logger's records into a new :class:`NoteCollector`, instead of showing them as cell text:
    an earlier chapter's collector and the stream handler of :func:`fercore.core.runtime.show_library_logs` are removed
    (a notebook kernel has no root handler, so nothing else prints them)."""
    logger = logging.getLogger("fercore")
    for handler in list(logger.handlers):
        if handler.get_name() in (NoteCollector.NAME, LIBRARY_LOGS):
            logger.removeHandler(handler)
    collector = NoteCollector(level)
    logger.addHandler(collector)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    python_warnings = logging.getLogger("py.warnings")  # warnings.warn of the libraries fercore calls (scikit-learn, torch)
    for handler in list(python_warnings.handlers):
        if handler.get_name() == NoteCollector.NAME:
            python_warnings.removeHandler(handler)
    python_warnings.addHandler(collector)
    logging.captureWarnings(True)
    return collector


def release(collector: NoteCollector) -> None:
    """Stop gathering (the chapter is finished); Python warnings print as usual again."""
    logging.getLogger("fercore").removeHandler(collector)
    logging.getLogger("py.warnings").removeHandler(collector)
    logging.captureWarnings(False)


@dataclass
class NoteSummary:
    """The notes grouped for reading: warnings with their meaning and count, status lines with their count."""

    warnings: list[tuple[Note, int]] = field(default_factory=list)
    status: list[tuple[Note, int]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"warnings": [{"message": n.message, "source": n.source, "count": c, "meaning": n.meaning()} for n, c in self.warnings],
                "status": [{"message": n.message, "source": n.source, "count": c} for n, c in self.status]}


def summarise(notes: list[Note]) -> NoteSummary:
    """Identical messages once, with their count, in the order they first came."""
    counts = Counter((n.level, n.message) for n in notes)
    first: dict[tuple[str, str], Note] = {}
    for note in notes:
        first.setdefault((note.level, note.message), note)
    summary = NoteSummary()
    for key, note in first.items():
        target = summary.warnings if logging.getLevelName(note.level) >= logging.WARNING else summary.status
        target.append((note, counts[key]))
    return summary


def _times(count: int) -> str:
    return f" (×{count})" if count > 1 else ""


def notes_markdown(summary: NoteSummary, *, max_status: int = 30) -> str:
    """The chapter's note as MyST Markdown: one paragraph per warning with what it means, then the status lines."""
    if not summary.warnings and not summary.status:
        return "**Notes on this run.** The library raised no warnings while this chapter ran."
    lines = ["**Notes on this run.** What the library reported while this chapter ran, and what it means for the numbers above."]
    if summary.warnings:
        lines.append("")
        lines += [f"- *{_md(n.message)}*{_times(c)}: {n.meaning()}" for n, c in summary.warnings]
    else:
        lines.append("\nNo warnings.")
    if summary.status:
        lines.append("\nStatus lines (how the chapter's steps ran; they do not change the numbers):\n")
        lines += [f"- {_md(n.message)}{_times(c)}" for n, c in summary.status[:max_status]]
        if len(summary.status) > max_status:
            lines.append(f"- ... {len(summary.status) - max_status} more in `notes.json`")
    return "\n".join(lines)


def _md(text: str) -> str:
    """A message as inline Markdown text: markup characters escaped, on one line."""
    return re.sub(r"([\\`*_{}\[\]<>|])", r"\\\1", " ".join(str(text).split()))
