"""Which real faces each model has seen, and the real faces no model saw.

A fercore checkpoint records the data-set splits it trained and selected on (``seen`` in its metadata: the
folder ``root`` and ``split`` of every training and selection face, and what the weights it started from had
seen); a foreign weight file (HSEmotion: AffectNet train) cannot, so the parameter file declares it
(``seen: ["affectnet:train"]``, a real set's name or folder, a colon, a split). :func:`unseen_real_faces` returns the
faces of the run's real sets in splits outside everything any model saw (for a null arm or a control regime), or
raises :class:`NoUnseenFacesError` saying what to provide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fercore.data.samples import discover


class NoUnseenFacesError(ValueError):
    """No real faces are left outside what the run's models saw, or a model does not say what it saw."""


@dataclass(frozen=True)
class SeenSplit:
    """One split of one data set a model trained or selected on: ``dataset`` is a real set's name (declared) or its
    folder (recorded by a fercore checkpoint)."""

    dataset: str
    split: str
    role: str = "train"  # train | selection | declared

    def matches(self, name: str, root: str | Path) -> bool:
        """Whether this is the real set called ``name`` with folder ``root``."""
        if self.dataset.lower() == name.lower():
            return True
        return _resolved(self.dataset) == _resolved(root)

    def to_json(self) -> dict[str, str]:
        return {"dataset": self.dataset, "split": self.split, "role": self.role}


def _resolved(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def parse_seen(entries: Iterable[str | Mapping[str, str]], *, where: str = "seen") -> list[SeenSplit]:
    """``["affectnet:train", {"dataset": ..., "split": ..., "role": ...}]`` as :class:`SeenSplit` s (a declared entry is
    ``name-or-folder:split``)."""
    out = []
    for entry in entries:
        if isinstance(entry, Mapping):
            out.append(SeenSplit(str(entry["dataset"]), str(entry["split"]), str(entry.get("role", "train"))))
            continue
        dataset, sep, split = str(entry).rpartition(":")
        if not sep or not dataset or not split:
            raise ValueError(f"{where}: {entry!r} is not 'dataset:split' (e.g. 'affectnet:train', a real set's name or folder, "
                             "a colon, the split it trained on)")
        out.append(SeenSplit(dataset, split, "declared"))
    return out


def seen_splits(samples: pd.DataFrame | None, role: str) -> list[SeenSplit]:
    """The (folder, split) of every face of a sample table laid out ``<root>/<split>/<emotion>/<file>`` (folder data
    sets and extracted synthetic faces alike)."""
    if samples is None or samples.empty:
        return []
    pairs = {(str(Path(p).parents[2]), Path(p).parents[1].name) for p in samples["path"].astype(str)}
    return [SeenSplit(root, split, role) for root, split in sorted(pairs)]


def seen_record(train: pd.DataFrame, selection: pd.DataFrame | None, inherited: Sequence[Mapping[str, str]] = ()) -> list[dict]:
    """What a checkpoint stores as ``seen``: its training and selection splits and what its starting weights had seen."""
    entries = [*seen_splits(train, "train"), *seen_splits(selection, "selection"), *parse_seen(inherited)]
    unique = {(e.dataset, e.split, e.role): e for e in entries}
    return [e.to_json() for e in unique.values()]


def unseen_real_faces(real_roots: Mapping[str, str | Path], seen: Mapping[str, Sequence[SeenSplit] | None], *,
                      exclude_splits: Iterable[str] = ()) -> pd.DataFrame:
    """The faces of the run's real sets (``{name: folder}``) in splits that no model of ``seen`` (``{model: its seen
    splits}``, None where a model does not say) trained or selected on, without the ``exclude_splits`` (the reported
    test split), with a ``dataset`` column. Raises :class:`NoUnseenFacesError` saying what to provide."""
    unknown = [model for model, splits in seen.items() if splits is None]
    if unknown:
        raise NoUnseenFacesError(
            f"{', '.join(unknown)} do(es) not record which real faces it saw (not a fercore checkpoint from this version): "
            "declare it in the parameter file's models entry, e.g. seen: [\"affectnet:train\"]")
    excluded = set(exclude_splits)
    parts, taken = [], []
    for name, root in real_roots.items():
        folders = sorted(p.name for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))
        for split in folders:
            if split in excluded:
                continue
            users = [m for m, splits in seen.items() if any(s.split == split and s.matches(name, root) for s in splits or ())]
            if users:
                taken.append(f"{name}/{split} ({', '.join(users)})")
                continue
            parts.append(discover(root, [split]).assign(dataset=name))
    if not parts:
        raise NoUnseenFacesError(
            f"no real faces are left that no model trained or selected on: taken {', '.join(taken) or 'none'}; excluded "
            f"{', '.join(sorted(excluded)) or 'none'}. Set a split aside before training (e.g. <root>/holdout/<emotion>/) "
            "or add a real set no model saw to real_roots")
    return pd.concat(parts, ignore_index=True)
