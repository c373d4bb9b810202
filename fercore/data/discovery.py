"""One walk over a data root: every entry is either used or left out with a reason.

:func:`walk_data_root` reads ``root/<split>/<emotion>/*`` and :func:`walk_folder` any folder of
images (``predict``); both return an :class:`Inventory`: the images they will use and what they
will not, each with one of the :data:`REASONS` (hidden files, folders inside class folders, links
that resolve nowhere or loop, files that are not images ...). An image that decodes is used
whatever its extension (``.jfif``, ``.PNG``, none); a file with an image suffix is used as it is
and judged when decoded (training skips, ``predict`` marks and ``check-data`` lists those that fail).
"""

from __future__ import annotations

import errno
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from fercore.core.labels import UnknownLabelError, accepted_names, canonical_name, to_index
from fercore.data.images import is_image_file

log = logging.getLogger(__name__)

#: Why an entry is left out, as printed (singular, plural).
REASONS: dict[str, tuple[str, str]] = {
    "hidden": ("hidden file or folder", "hidden files and folders"),
    "system": ("system folder", "system folders (__MACOSX, .ipynb_checkpoints, @eaDir, ...)"),
    "nested": ("folder inside a class folder", "folders inside class folders"),
    "outside": ("file outside the class folders", "files outside the class folders"),
    "broken_link": ("link that resolves nowhere", "links that resolve nowhere"),
    "link_loop": ("link that loops", "links that loop"),
    "not_image": ("file that is not an image", "files that are not images"),
    "unreadable": ("image that cannot be read", "images that cannot be read"),
}
#: Folders that tools, not people, put into a data set.
SYSTEM_FOLDERS = frozenset({"__MACOSX", "@eaDir", "$RECYCLE.BIN", "System Volume Information", "#recycle"})
#: What an image without an image suffix may decode as to be used.
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "MPO", "BMP", "GIF", "TIFF", "WEBP"})
#: The first bytes of those formats' files: such a file that does not open is an image that cannot be read.
IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


class DatasetLayoutError(ValueError):
    """A dataset folder that does not have the ``root/<split>/<emotion>/*`` layout."""


@dataclass
class Inventory:
    """What a walk found: ``used`` rows (path, split, folder, label, emotion) and ``left_out``
    entries (path, reason key of :data:`REASONS`, detail)."""

    root: str
    used: list[tuple[str, str, str, int, str]] = field(default_factory=list)
    left_out: list[tuple[str, str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Entries left out per reason, in :data:`REASONS` order."""
        found = Counter(reason for _, reason, _ in self.left_out)
        return {reason: found[reason] for reason in REASONS if found[reason]}

    def examples(self, reason: str, n: int = 3) -> list[str]:
        """Up to ``n`` paths (relative to the root) left out for ``reason``."""
        return [_relative(path, self.root) for path, why, _ in self.left_out if why == reason][:n]

    def summary(self) -> str:
        """One line: images used, and what was left out, with counts and examples."""
        line = f"{self.root}: {len(self.used)} images used"
        if not self.left_out:
            return line + ", nothing left out"
        parts = [f"{n} {REASONS[r][0 if n == 1 else 1]} ({', '.join(self.examples(r))}{', ...' if n > 3 else ''})"
                 for r, n in self.counts().items()]
        return f"{line}; left out {len(self.left_out)}: " + "; ".join(parts)

    def lines(self, n: int = 5, *, every: bool = False) -> list[str]:
        """The categories with entries (``every``: all of them, zeros too), each with its count and
        up to ``n`` examples (and why, where known)."""
        out = []
        counts = self.counts()
        for reason, count in ({r: counts.get(r, 0) for r in REASONS} if every else counts).items():
            out.append(f"left out: {count} {REASONS[reason][0 if count == 1 else 1]}")
            for path, why, detail in [e for e in self.left_out if e[1] == reason][:n]:
                out.append(f"  {_relative(path, self.root)}" + (f" ({detail})" if detail else ""))
        return out

    def log(self) -> None:
        """The summary: a warning when anything was left out, else an info line."""
        log.log(logging.WARNING if self.left_out else logging.INFO, "%s", self.summary())


def _relative(path: str, root: str) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def _is_hidden(path: Path) -> bool:
    return path.name.startswith((".", "~$")) or path.name in ("desktop.ini", "Thumbs.db", "Icon\r")


def _link_fault(path: Path) -> str | None:
    """'broken_link' or 'link_loop' for a link that leads nowhere, else None."""
    if not path.is_symlink():
        return None
    try:
        os.stat(path)
    except OSError as err:
        return "link_loop" if err.errno == errno.ELOOP else "broken_link"
    return None


def probe_image(path: Path) -> tuple[str, str] | None:
    """None when the file decodes as an image of a known format, else (reason, why): 'not_image'
    when no image format is recognised, 'unreadable' when one is but its pixels do not decode."""
    try:
        with Image.open(path) as handle:
            if handle.format not in IMAGE_FORMATS:
                return "not_image", f"a {handle.format} file"
            try:
                handle.load()
            except Exception as err:  # the header is an image's, the pixel data is cut short or damaged
                return "unreadable", f"{handle.format}: {type(err).__name__}: {err}"
    except Image.DecompressionBombError as err:
        return "unreadable", f"too large to decode safely: {err}"
    except Exception as err:
        with open(path, "rb") as handle:
            head = handle.read(12)
        signed = head.startswith(IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        return "unreadable" if signed else "not_image", f"{type(err).__name__}: {' '.join(str(err).split())[:120]}"
    return None


def classify(path: Path) -> tuple[str, str] | None:
    """(reason, detail) for an entry of a class folder that is not used, or None for an image."""
    fault = _link_fault(path)
    if fault:
        return fault, f"-> {os.readlink(path)}"
    if _is_hidden(path):
        return "hidden", ""
    if path.is_dir():
        inside = sum(1 for p in path.rglob("*") if p.is_file())
        return ("system" if path.name in SYSTEM_FOLDERS else "nested"), f"{inside} files not used"
    if not path.is_file():
        return "not_image", "not a regular file"
    if is_image_file(path):
        return None
    return probe_image(path)


def _split_entries(root: Path) -> tuple[list[Path], list[tuple[str, str, str]]]:
    """The split folders of ``root`` and its other entries, with reasons."""
    splits, other = [], []
    for entry in sorted(root.iterdir()):
        fault = _link_fault(entry)
        if fault:
            other.append((str(entry), fault, ""))
        elif _is_hidden(entry):
            other.append((str(entry), "hidden", ""))
        elif entry.is_dir() and entry.name in SYSTEM_FOLDERS:
            other.append((str(entry), "system", ""))
        elif entry.is_dir():
            splits.append(entry)
        else:
            other.append((str(entry), "outside", "not in a split folder"))
    return splits, other


def list_splits(root: str | Path) -> list[str]:
    """Split folder names under ``root`` (sorted), e.g. ``['test', 'train']``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(
            f"dataset folder {root} does not exist: expected {root}/<split>/<emotion>/<images>, "
            "e.g. data/real/fer2013/train/happy/0001.png"
        )
    splits = [p.name for p in _split_entries(root)[0]]
    if not splits:
        raise DatasetLayoutError(f"{root} has no split folders: expected {root}/<split>/<emotion>/<images>")
    return splits


def class_folders(split_dir: Path) -> tuple[list[tuple[Path, str]], list[tuple[str, str, str]]]:
    """(class folder, canonical emotion) pairs of a split folder and its other entries, with reasons;
    a folder no emotion alias matches is a :class:`DatasetLayoutError`."""
    folders, other = [], []
    for entry in sorted(split_dir.iterdir()):
        fault = _link_fault(entry)
        if fault or _is_hidden(entry) or (entry.is_dir() and entry.name in SYSTEM_FOLDERS):
            other.append((str(entry), fault or ("hidden" if _is_hidden(entry) else "system"), ""))
        elif not entry.is_dir():
            other.append((str(entry), "outside", f"directly in {split_dir.name}/, not in a class folder"))
        else:
            try:
                folders.append((entry, canonical_name(entry.name)))
            except UnknownLabelError:
                raise DatasetLayoutError(
                    f"{entry}: folder name {entry.name!r} is not an emotion fercore knows. "
                    f"Rename it to one of: {', '.join(accepted_names())}"
                ) from None
    return folders, other


def walk_data_root(root: str | Path, splits: list[str] | None = None) -> Inventory:
    """Walk ``root/<split>/<emotion>/`` (all splits, or ``splits``): the images used, sorted by split
    then path, and everything else with a reason. Entries directly under ``root`` are accounted for
    only when all splits are walked."""
    root = Path(root)
    available = list_splits(root)
    wanted = list(splits) if splits is not None else available
    missing = [s for s in wanted if s not in available]
    if missing:
        raise DatasetLayoutError(f"{root} has no split folder(s) {missing}; found {available}")
    found = Inventory(str(root))
    if splits is None:
        found.left_out += _split_entries(root)[1]
    for split in wanted:
        folders, other = class_folders(root / split)
        if not folders:
            raise DatasetLayoutError(f"{root / split} has no emotion folders (expected e.g. happy/, sad/)")
        found.left_out += other
        for class_dir, emotion in folders:
            for path in sorted(class_dir.iterdir()):
                why = classify(path)
                if why is None:
                    found.used.append((str(path), split, class_dir.name, to_index(emotion), emotion))
                else:
                    found.left_out.append((str(path), *why))
    return found


def walk_folder(folder: str | Path) -> Inventory:
    """Every image under ``folder`` (recursively, sorted; any layout), and what is left out.
    ``used`` rows carry the parent folder's emotion where its name is one (else an empty name)."""
    folder = Path(folder)
    found = Inventory(str(folder))
    visited = {os.path.realpath(folder)}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        here = Path(dirpath)
        for name in sorted(dirnames):
            path = here / name
            real = os.path.realpath(path)
            why = "hidden" if _is_hidden(path) else "system" if name in SYSTEM_FOLDERS else "link_loop" if real in visited else None
            if why:
                found.left_out.append((str(path), why, ""))
                dirnames.remove(name)
            visited.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            path = here / name
            why = classify(path)
            if why is not None:
                found.left_out.append((str(path), *why))
                continue
            try:
                emotion = canonical_name(here.name)
            except UnknownLabelError:
                emotion = ""
            found.used.append((str(path), "", here.name, to_index(emotion) if emotion else -1, emotion))
    found.used.sort()
    return found
