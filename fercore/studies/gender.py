"""The gender-split study (RQ2's second part), two arms and both directions
(:func:`fercore.training.experiments.run_gender_splits`): the growing arm trains on all synthetic faces of
one gender plus p% of the other's; the fixed-size arm keeps each of those gender mixes at one
constant size, so share and quantity come apart; the full training set is the other direction.
Every run is tested on each gender's synthetic test faces and on all of them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from fercore.core.present import declare
from fercore.models import Classifier
from fercore.studies.common import frame, pct
from fercore.studies.regimes import FINETUNED, Recipe, train_config
from fercore.studies.session import Study
from fercore.training import run_gender_splits


@dataclass(frozen=True)
class GenderPoint:
    """One training run of the study scored on one test part."""

    base: str  # the gender whose training faces are all used (growing arm); "all" for the full set
    percent: float  # p: the growing set's % of the other gender's training faces (NaN for the full set)
    n_train: int
    test_on: str  # a gender, or "all"
    n_test: int
    accuracy: float
    macro_f1: float
    arm: str = "growing"  # growing | fixed | full
    share: float = math.nan  # % of the training faces of the other gender (of women for the full set)
    selection: str = ""  # how the run chose its weights: a validation epoch, or none (too few grids)
    replicates: int = 1  # runs of the whole study pooled here (seed + r); accuracy and macro-F1 are their means
    accuracy_sd: float = math.nan  # SD of the accuracy between replicates (NaN with one)


def pooled(replicates: Sequence[list[GenderPoint]]) -> list[GenderPoint]:
    """The study run ``len(replicates)`` times as one: per (arm, base, p, test part) the mean accuracy and macro-F1 and
    the SD of the accuracy between replicates (the first replicate's sizes and selection)."""
    if len(replicates) == 1:
        return list(replicates[0])
    key = (lambda p: (p.arm, p.base, p.percent if not math.isnan(p.percent) else -1.0, p.test_on))
    out = []
    for point in replicates[0]:
        same = [q for run in replicates for q in run if key(q) == key(point)]
        acc = [q.accuracy for q in same]
        out.append(replace(point, accuracy=float(sum(acc) / len(acc)), macro_f1=float(sum(q.macro_f1 for q in same) / len(same)),
                           replicates=len(same), accuracy_sd=float(pd.Series(acc).std(ddof=1))))
    return out


def run(config, train_faces: pd.DataFrame, test_faces: pd.DataFrame, percents: Sequence[float], out: str | Path) -> list[GenderPoint]:
    """Train and score every run of both arms and the full set; resumable (see ``run_gender_splits``)."""
    table = run_gender_splits(config, train_faces, test_faces, percents, out=out)
    return [GenderPoint(str(r.base), float(r.percent), int(r.n_train), str(r.test_on), int(r.n_test), float(r.accuracy),
                        float(r.macro_f1), str(r.arm), float(r.share), str(r.selection)) for r in table.itertuples()]


def chapter_study(session: Study, real_models: Mapping[str, Classifier], model: str, train_faces: pd.DataFrame,
                  test_faces: pd.DataFrame, recipe: Recipe, percents: Sequence[float], *, seed: int = 0, workers: int = 2,
                  device: str = "auto", progress: bool = True, enabled: bool = True, replicates: int = 1) -> list[GenderPoint]:
    """The study for ``model`` (fine-tuning ``recipe``) in the chapter's ``gender/`` folder: every run
    (:func:`run`), its table and its figure shown in the chapter. Nothing (``[]``) when not
    ``enabled`` or the training faces carry no gender label. ``replicates``: the whole study run that often (seed + r;
    replicate r >= 1 in ``gender-rep<r>/``), pooled by :func:`pooled` (the figure shows replicate 0)."""
    if not enabled or "gender" not in train_faces.columns:
        return []
    chapter = session.chapter
    config = train_config(session.specs[model], real_models[model], FINETUNED, recipe, seed=seed, workers=workers, device=device,
                          progress=progress, experiment="rq2-gender")
    points = pooled([run(replace(config, seed=seed + r), train_faces, test_faces, percents,
                         chapter.path("gender" if r == 0 else f"gender-rep{r}")) for r in range(max(1, replicates))])
    chapter.table(table(points), "gender_splits",
                  "Every run of the gender study: arm, base gender, share of the other gender, training and test faces, "
                  "accuracy and macro-F1.", index=False)
    chapter.show_file(chapter.path("gender", "figures", "accuracy_vs_percent.png"),
                      f"{model}: accuracy by the other gender's share of the training faces; growing arm solid, fixed-size "
                      "arm dashed, the full training set dotted.")
    return points


TITLES = {"arm": "arm", "base": "base gender", "percent": "p (% other added)", "share": "% other in training",
          "n_train": "training faces", "test_on": "tested on", "n_test": "test faces", "accuracy": "accuracy",
          "macro_f1": "macro-F1", "selection": "selection", "replicates": "replicates", "accuracy_sd": "accuracy sd between replicates"}


def table(points: list[GenderPoint]) -> pd.DataFrame:
    shown = [t for t in TITLES.values() if t not in ("replicates", "accuracy sd between replicates")]
    if points and points[0].replicates > 1:
        shown = [t for t in shown if t != "selection"] + ["accuracy sd between replicates"]
    return declare(frame(points, TITLES), percent=["accuracy", "macro-F1", "accuracy sd between replicates"],
                   decimals={"% other in training": 1}, show=shown, titles={"accuracy sd between replicates": "sd reps"})


def _accuracy(points: list[GenderPoint], arm: str, base: str, test_on: str, percent: float) -> GenderPoint:
    return next(p for p in points if p.arm == arm and p.base == base and p.test_on == test_on and p.percent == percent)


def _set_name(point: GenderPoint) -> str:
    """One name per training set of the study (its rows share it: one per test part)."""
    return point.arm if point.arm == "full" else f"{point.arm} {point.base} {point.percent:g}"


def findings(points: list[GenderPoint]) -> list[str]:
    """Per base gender: accuracy on its own and on the other gender's faces at the lowest and the
    highest share, in the growing arm and (if run) the fixed-size arm; the full set per gender;
    the runs that selected no epoch."""
    out = []
    for base in sorted({p.base for p in points if p.arm != "full"}):
        mine = [p for p in points if p.base == base and p.arm == "growing"]
        other = next(p.test_on for p in mine if p.test_on not in (base, "all"))
        lo, hi = min(p.percent for p in mine), max(p.percent for p in mine)
        own, cross = (_accuracy(points, "growing", base, test_on, lo) for test_on in (base, other))
        high = _accuracy(points, "growing", base, other, hi)
        out.append(f"Trained on {base} faces plus {lo:.0f}% of the {other} ones ({own.n_train} faces): {pct(own.accuracy)} on {base}, "
                   f"{pct(cross.accuracy)} on {other} test faces; with {hi:.0f}% ({high.n_train} faces) the {other} accuracy is "
                   f"{pct(high.accuracy)}.")
        if any(p.arm == "fixed" and p.base == base for p in points):
            first, last = (_accuracy(points, "fixed", base, other, q) for q in (lo, hi))
            out.append(f"At a constant {first.n_train} training faces ({base} base), raising the {other} share from "
                       f"{first.share:.0f}% to {last.share:.0f}% takes the {other} accuracy from {pct(first.accuracy)} to "
                       f"{pct(last.accuracy)} (growing arm at the same share, {high.n_train} faces: {pct(high.accuracy)}).")
    full = [p for p in points if p.arm == "full"]
    if full:
        parts = ", ".join(f"{pct(p.accuracy)} on {p.test_on}" for p in full)
        out.append(f"Trained on all {full[0].n_train} training faces: {parts} test faces.")
    if points:
        runs = points[0].replicates
        out.append("The gender study ran once in this run (gender_replicates = 1): its spread between seeds is not measured."
                   if runs == 1 else f"The gender study ran {runs} times (seed + r); accuracies are means over the runs.")
    unselected = {_set_name(p) for p in points if p.selection.startswith("none")}
    if unselected:
        runs = {_set_name(p) for p in points}
        out.append(f"{len(unselected)} of {len(runs)} gender-study training sets had too few grids for a grouped validation "
                   f"split: they trained their fixed epochs and kept the final one (no selection).")
    return out


def glue_values(points: list[GenderPoint]) -> dict[str, str]:
    """Text the chapter's prose quotes (``{glue:md}``): ``rq2_gender_full_<part>`` (accuracy of the
    full training set per test part, e.g. '61.1%'), ``rq2_gender_fixed_size`` /
    ``rq2_gender_growing_sizes`` (training faces), ``rq2_gender_selection`` (how the runs chose
    their weights); 'n/a' when the study did not run."""
    if not points:
        return {**{f"rq2_gender_full_{part}": "n/a" for part in ("female", "male", "all")}, "rq2_gender_fixed_size": "n/a",
                "rq2_gender_growing_sizes": "n/a", "rq2_gender_selection": "the gender study did not run"}
    values: dict[str, str] = {f"rq2_gender_full_{p.test_on}": pct(p.accuracy) for p in points if p.arm == "full"}
    fixed = sorted({p.n_train for p in points if p.arm == "fixed"})
    growing = sorted({p.n_train for p in points if p.arm == "growing"})
    values["rq2_gender_fixed_size"] = ", ".join(map(str, fixed))
    values["rq2_gender_growing_sizes"] = f"{growing[0]}-{growing[-1]}"
    sets = {_set_name(p): p.selection for p in points}
    none = sum(s.startswith("none") for s in sets.values())
    values["rq2_gender_selection"] = (f"{none} of {len(sets)} training sets had too few grids for a grouped validation split "
                                      "and kept their final epoch (no selection)" if none else
                                      "every run selected its epoch on a grouped validation split")
    return values
