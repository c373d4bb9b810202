"""Synthetic labels checked by a person, in a chapter: a line saying whether they were (every chapter), and with a
filled label sheet (:mod:`fercore.synthetic.labelsheet`) the prompt-person agreement and the scores on all kept faces
beside the scores on the faces whose label the person confirmed (RQ1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fercore.analysis import arrays, balanced_accuracy
from fercore.book import Chapter, MissingPathError, project_folder, resolve_paths
from fercore.core.present import declare
from fercore.studies.common import frame, pct
from fercore.studies.scoring import SetScore
from fercore.synthetic import LabelAgreement, confirmed_faces, label_agreement, read_label_sheet

UNCHECKED = ("The synthetic labels are unchecked: every synthetic face carries its prompt's emotion, which no person has "
             "confirmed (a grid prompted \"fear\" may show surprise); `fercore label-sheet` writes a blind sheet to check them "
             "(docs/label-sheet.md) and the `label_sheet` parameter reads it back.")


@dataclass(frozen=True)
class LabelCheck:
    """The filled label sheet joined with its prompts (None: the labels are unchecked)."""

    joined: pd.DataFrame | None = None
    sheet: str | None = None

    @property
    def checked(self) -> bool:
        return self.joined is not None

    def line(self) -> str:
        """One line for the chapter: unchecked, or how many faces the person confirmed."""
        if self.joined is None:
            return UNCHECKED
        j = self.joined
        return (f"The synthetic labels were checked by a person on a blind sheet ({Path(self.sheet or '').name}): "
                f"{int(j['confirmed'].sum())} of {len(j)} faces confirmed, {int((~j['usable']).sum())} judged unusable, the rest "
                "read as another emotion; tables marked *confirmed* use only the confirmed faces.")

    def agreement(self, *, n_boot: int = 1000, seed: int = 0) -> list[LabelAgreement]:
        return label_agreement(self._need(), n_boot=n_boot, seed=seed)

    def confirmed(self, samples: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``samples`` whose face the person confirmed."""
        return confirmed_faces(samples, self._need())

    def on_sheet(self, samples: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``samples`` whose face is on the sheet (the faces a person saw, confirmed or not): the "all kept"
        side of a comparison with the confirmed faces, so both sides come from the same grids."""
        seen = {str(Path(p).resolve()) for p in self._need()["path"]}
        return samples[[str(Path(p).resolve()) in seen for p in samples["path"]]].reset_index(drop=True)

    def _need(self) -> pd.DataFrame:
        if self.joined is None:
            raise ValueError("no filled label sheet: set the label_sheet parameter (docs/label-sheet.md)")
        return self.joined


def label_check(chapter: Chapter, synthetic_root: str | Path, label_sheet: str | None, label_key: str | None = None) -> LabelCheck:
    """Read the filled sheet of the ``label_sheet`` parameter (relative paths from the project folder; the key from
    ``label_key``, else beside the sheet's folder), show the chapter's one line about the labels and record the sheet in
    the chapter's provenance. Without a sheet: the line says the synthetic labels are unchecked."""
    if label_sheet is None:
        check = LabelCheck()
    else:
        root = project_folder()
        sheet = Path(resolve_paths(label_sheet, root))
        if not sheet.is_file():
            raise MissingPathError(f"label_sheet = {label_sheet!r}: this file does not exist (resolved: {sheet}); give the "
                                   "filled label_sheet.csv of `fercore label-sheet`, or None")
        key = resolve_paths(label_key, root) if label_key is not None else None
        joined = read_label_sheet(sheet, key)
        synthetic = Path(synthetic_root).resolve()
        if not any(Path(p).resolve().is_relative_to(synthetic) for p in joined["path"]):
            raise ValueError(f"label sheet {sheet}: none of its faces lies under synthetic_root {synthetic}; give the sheet "
                             "written from this run's manifest")
        check = LabelCheck(joined, str(sheet))
        chapter.provenance["label_sheet"] = {"sheet": str(sheet), "faces": len(joined), "confirmed": int(joined["confirmed"].sum())}
    chapter.note(check.line())
    return check


def show_label_check(chapter: Chapter, check: LabelCheck, scores: Mapping[tuple[str, str], SetScore], *, seed: int = 0) -> list[str]:
    """With a filled sheet: the agreement table and the synthetic scores on all kept and on confirmed faces (tables
    ``label_agreement`` and ``confirmed_faces``) and a sentence on each, shown and returned. Without one: the line that
    the labels are unchecked."""
    if not check.checked:
        chapter.note(UNCHECKED)
        return [UNCHECKED]
    rows = check.agreement(seed=seed)
    chapter.table(agreement_table(rows), "label_agreement",
                  "Agreement between the prompt's emotion and a person's reading of each synthetic face (blind sheet): Cohen's "
                  "kappa per prompt emotion (one against the rest) and over all emotions, on the faces judged usable, with a 95% "
                  "interval from a bootstrap of whole source grids.")
    confirmed = confirmed_scores(scores, check)
    chapter.table(confirmed_table(confirmed), "confirmed_faces",
                  "Each model on the synthetic faces: all kept faces beside the faces whose prompt label the person confirmed.")
    overall = rows[-1]
    sentences = [f"A person confirmed the prompt's emotion on {overall.confirmed} of {overall.faces} synthetic faces (Cohen's kappa "
            f"{overall.kappa:.3f}, 95 % interval {overall.kappa_low:.3f} to {overall.kappa_high:.3f}, {overall.grids} grids)."
                 ] + confirmed_findings(confirmed)
    chapter.note("\n".join(f"- {sentence}" for sentence in sentences))
    return sentences


AGREEMENT_TITLES = {"emotion": "prompt emotion", "faces": "faces", "usable": "usable", "confirmed": "confirmed", "grids": "grids",
                    "kappa": "Cohen's kappa", "kappa_low": "kappa 95% low", "kappa_high": "kappa 95% high"}


def agreement_table(rows: list[LabelAgreement]) -> pd.DataFrame:
    """Prompt against person per emotion (one-vs-rest kappa) and overall, with the grid-bootstrap interval."""
    table = frame(rows, AGREEMENT_TITLES, index="emotion")
    return declare(table, ci={"Cohen's kappa": ("kappa 95% low", "kappa 95% high")}, decimals={"Cohen's kappa": 3})


@dataclass(frozen=True)
class ConfirmedScore:
    """One model on the synthetic faces: all kept faces beside those whose label the person confirmed."""

    model: str
    test_set: str
    n_all: int
    accuracy_all: float
    balanced_all: float
    n_confirmed: int
    accuracy_confirmed: float
    balanced_confirmed: float


def confirmed_scores(scores: Mapping[tuple[str, str], SetScore], check: LabelCheck) -> list[ConfirmedScore]:
    """Accuracy and balanced accuracy of every synthetic set of ``scores`` on all its faces the sheet holds and on the
    confirmed ones (the same predictions, the confirmed rows kept)."""
    rows = []
    for (model, test_set), score in scores.items():
        if not test_set.startswith("synthetic"):
            continue
        preds = score.preds[score.preds["error"] == ""] if "error" in score.preds.columns else score.preds
        preds = check.on_sheet(preds)  # a set scored on more grids than the sheet holds (train and test): the sheet's faces
        kept = check.confirmed(preds)
        figures = []
        for part in (preds, kept):
            y, pred, _ = arrays(part) if len(part) else (np.array([], int), np.array([], int), None)
            figures += [len(y), float(np.mean(y == pred)) if len(y) else float("nan"),
                        balanced_accuracy(y, pred) if len(y) else float("nan")]
        rows.append(ConfirmedScore(model, test_set, *figures))
    return rows


CONFIRMED_TITLES = {"model": "model", "test_set": "test set", "n_all": "n (all kept)", "accuracy_all": "accuracy (all kept)",
                    "balanced_all": "balanced acc. (all kept)", "n_confirmed": "n (confirmed)",
                    "accuracy_confirmed": "accuracy (confirmed)", "balanced_confirmed": "balanced acc. (confirmed)"}


def confirmed_table(rows: list[ConfirmedScore]) -> pd.DataFrame:
    table = frame(rows, CONFIRMED_TITLES, index=["model", "test_set"])
    return declare(table, percent=[t for t in CONFIRMED_TITLES.values() if "acc" in t])


def confirmed_findings(rows: list[ConfirmedScore]) -> list[str]:
    """One sentence per model and synthetic set: accuracy on all kept faces and on the confirmed ones."""
    return [f"{r.model} on {r.test_set}: accuracy {pct(r.accuracy_all)} on all {r.n_all} kept faces, {pct(r.accuracy_confirmed)} "
            f"on the {r.n_confirmed} whose label a person confirmed." for r in rows]
