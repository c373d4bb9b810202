"""RQ1 by what the prompt asked for (issue 31): valence groups, and the intensity word, prompt template
and generator of each synthetic face's grid, where they vary.

* Valence groups (positive / negative / neutral, :data:`fercore.core.labels.EMOTION_GROUPS` unless another
  grouping is given): per model and test set, accuracy (exact emotion) with a stratified grid-bootstrap
  interval, balanced accuracy (mean recall of the group's emotions) and the valence-level answer (right when
  the prediction lands in the true emotion's group, :func:`fercore.analysis.metrics.group_accuracy`), and the
  valence-level confusion (shares of each true group predicted as each group).
* Recall per emotion, every model on every real set and the synthetic faces, in one figure.
* A factor (grid column ``intensity``, ``template``, ``generator``) *varies* where some emotion has faces
  at two or more of its levels; emotions with one level (Neutral's ``none`` intensity) stay outside its
  contrasts. Per level: accuracy, the model's probability for the prompted emotion and 1 - p(Neutral)
  (how strongly a non-Neutral expression reads), each the mean over the emotions in the contrast; per
  level against the reference (the first level; intensity words weakest first): the emotion-balanced
  difference, a linear contrast of (emotion x level) cell means with grids as clusters, CR2 variance and a
  Satterthwaite t interval (:func:`fercore.analysis.clustered.linear_contrast`, the estimator of RQ1's
  balanced gap). Where a level of an emotion has one grid there is no variance estimate: the number is
  descriptive only. These comparisons are exploratory (no Holm correction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fercore.analysis import bootstrap_accuracy, group_accuracy, linear_contrast, plots, sample_groups
from fercore.book import Chapter
from fercore.core.labels import CLASSES, EMOTION_GROUPS, GROUPS
from fercore.core.present import declare
from fercore.data import load_rgb, per_class_subset
from fercore.grids import extraction_outcomes, layout_disagreements
from fercore.studies.common import slug
from fercore.studies.scoring import Scores, SetScore, by_model

#: The grid columns compared, in the chapter's order.
FACTORS = ("intensity", "template", "generator")
FACTOR_NAMES = {"intensity": "intensity word", "template": "prompt template", "generator": "generator"}
#: Levels read in this order where they occur (the first present is the reference); others follow, sorted.
LEVEL_ORDER = ("none", "low", "mild", "medium", "moderate", "high", "strong", "extreme")
#: Per-face measures: column -> title.
MEASURES = {"accuracy": "accuracy", "p_prompted": "p(prompted emotion)", "strength": "1 - p(Neutral)"}


# --------------------------------------------------------------------------- valence groups


def _scored(preds: pd.DataFrame) -> pd.DataFrame:
    """The readable, labelled rows of a predictions table."""
    return preds[preds["label"].notna() & preds["pred"].notna()].reset_index(drop=True)


def check_grouping(grouping: Mapping[str, str] | None) -> dict[str, str]:
    """``grouping`` (emotion -> group) covering every class; None: :data:`~fercore.core.labels.EMOTION_GROUPS`."""
    grouping = dict(grouping or EMOTION_GROUPS)
    missing = [c for c in CLASSES if c not in grouping]
    if missing:
        raise ValueError(f"the valence grouping lacks {missing}: give every one of {list(CLASSES)} a group")
    return grouping


def _group_order(grouping: Mapping[str, str]) -> list[str]:
    present = set(grouping.values())
    return [g for g in GROUPS if g in present] + sorted(present - set(GROUPS))


def _share(low: float, high: float) -> tuple[float, float]:
    """An interval of a share, clipped to [0, 1] (NaN stays NaN)."""
    return float(np.clip(low, 0.0, 1.0)), float(np.clip(high, 0.0, 1.0))


@dataclass(frozen=True)
class ValenceRow:
    """One model on one test set, the faces of one valence group."""

    model: str
    test_set: str
    group: str
    classes: int  # the group's emotions with faces
    faces: int
    clusters: int  # grids (synthetic) or faces (real)
    accuracy: float  # exact emotion right
    accuracy_low: float  # stratified cluster bootstrap, NaN where an emotion has one grid
    accuracy_high: float
    balanced_accuracy: float  # mean recall of the group's emotions
    valence_accuracy: float  # prediction in the true emotion's group


def valence_rows(score: SetScore, grouping: Mapping[str, str] | None = None, *, n_boot: int = 1000, seed: int = 0) -> list[ValenceRow]:
    """:class:`ValenceRow` per group with faces in ``score``'s predictions."""
    grouping = check_grouping(grouping)
    preds = _scored(score.preds)
    clusters = sample_groups(preds)
    true = np.array([CLASSES.index(c) for c in preds["label"]], dtype=np.int64)
    pred = np.array([CLASSES.index(c) for c in preds["pred"]], dtype=np.int64)
    per_group = group_accuracy(true, pred, grouping)
    group_of = np.array([grouping[c] for c in preds["label"]], dtype=object)
    rows = []
    for group in _group_order(grouping):
        mask = group_of == group
        if not mask.any():
            continue
        right = true[mask] == pred[mask]
        interval = bootstrap_accuracy(true[mask], right, clusters[mask], n_boot=n_boot, seed=seed)
        recalls = [right[true[mask] == c].mean() for c in np.unique(true[mask])]
        rows.append(ValenceRow(score.model, score.test_set, group, len(recalls), int(mask.sum()), len(np.unique(clusters[mask])),
                               float(right.mean()), *_share(interval.low, interval.high), float(np.mean(recalls)),
                               float(per_group[group]["accuracy"])))
    return rows


VALENCE_TITLES = {"model": "model", "test_set": "test set", "group": "group", "classes": "emotions", "faces": "faces",
                  "clusters": "units", "accuracy": "accuracy", "accuracy_low": "acc. 95% low", "accuracy_high": "acc. 95% high",
                  "balanced_accuracy": "balanced acc.", "valence_accuracy": "valence right"}


def valence_table(scores: Scores, grouping: Mapping[str, str] | None = None, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """:func:`valence_rows` of every (model, test set), one row per group."""
    rows = [row for score in scores.values() for row in valence_rows(score, grouping, n_boot=n_boot, seed=seed)]
    table = pd.DataFrame([{VALENCE_TITLES[k]: v for k, v in asdict(r).items()} for r in rows], columns=list(VALENCE_TITLES.values()))
    table = table.set_index(["model", "test set", "group"])
    return declare(table, percent=["accuracy", "balanced acc.", "valence right"], ci={"accuracy": ("acc. 95% low", "acc. 95% high")},
                   show=["emotions", "faces", "units", "accuracy", "balanced acc.", "valence right"])


def valence_confusion(scores: Scores, grouping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per (model, test set, true group): faces and the share predicted as each group (rows sum to 1)."""
    grouping = check_grouping(grouping)
    order = _group_order(grouping)
    records = []
    for (model, test_set), score in scores.items():
        preds = _scored(score.preds)
        true, pred = preds["label"].map(grouping), preds["pred"].map(grouping)
        for group in order:
            mask = true == group
            if mask.any():
                shares = pred[mask].value_counts(normalize=True)
                records.append({"model": model, "test set": test_set, "true group": group, "faces": int(mask.sum()),
                                **{f"as {g}": float(shares.get(g, 0.0)) for g in order}})
    table = pd.DataFrame(records).set_index(["model", "test set", "true group"])
    return declare(table, percent=[f"as {g}" for g in order])


def recall_figure(scores: Scores):
    """Recall per emotion (x axis), one bar per (model, test set): real sets beside the synthetic faces."""
    frame = pd.DataFrame({f"{model} · {test_set}": pd.Series(score.recall()) for (model, test_set), score in scores.items()})
    frame = frame.reindex([c for c in CLASSES if c in frame.index])
    return plots.grouped_bars(frame, ylabel="recall", title="Recall per emotion")


# --------------------------------------------------------------------------- factors of the prompt


def attach_factors(preds: pd.DataFrame, samples: pd.DataFrame, factors: Sequence[str] = FACTORS) -> pd.DataFrame:
    """``preds`` with the factor columns of the sample table it scored (matched by ``path``) that it lacks."""
    wanted = [f for f in factors if f in samples.columns and f not in preds.columns]
    if not wanted:
        return preds
    lookup = samples.assign(path=samples["path"].astype(str)).drop_duplicates("path").set_index("path")
    keys = preds["path"].astype(str)
    return preds.assign(**{f: keys.map(lookup[f]).to_numpy() for f in wanted})


def _level_text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()


def ordered_levels(levels: set[str] | Sequence[str]) -> list[str]:
    """Levels in :data:`LEVEL_ORDER` first (weakest intensity first), then the others sorted."""
    levels = set(levels)
    return [x for x in LEVEL_ORDER if x in levels] + sorted(levels - set(LEVEL_ORDER))


def factor_levels(preds: pd.DataFrame, factor: str) -> tuple[list[str], list[str]]:
    """(levels, emotions) of ``factor``'s contrast: the emotions with faces at two or more levels and
    the levels they show; both empty where the factor does not vary within any emotion."""
    if factor not in preds.columns:
        return [], []
    ok = _scored(preds)
    level = ok[factor].map(_level_text)
    ok = ok[level != ""].assign(**{factor: level[level != ""]})
    seen = ok.groupby("label")[factor].agg(lambda s: set(s))
    emotions = [e for e in CLASSES if e in seen.index and len(seen[e]) >= 2]
    return ordered_levels(set().union(*(seen[e] for e in emotions))) if emotions else [], emotions


def describe_factors(preds: pd.DataFrame, factors: Sequence[str] = FACTORS) -> tuple[dict[str, list[str]], dict[str, str]]:
    """({factor: levels} of the factors that vary, {factor: why not} of those that do not)."""
    varying, constant = {}, {}
    for factor in factors:
        levels, _ = factor_levels(preds, factor)
        values = sorted({_level_text(v) for v in preds[factor]} - {""}) if factor in preds.columns else []
        if levels:
            varying[factor] = levels
        elif not values:
            constant[factor] = "not recorded"
        else:
            constant[factor] = f"one level within each emotion ({', '.join(values)})"
    return varying, constant


def face_measures(preds: pd.DataFrame) -> pd.DataFrame:
    """Per readable face: emotion, grid (``cluster``), right or wrong, p(prompted emotion) and
    1 - p(Neutral) (NaN for Neutral faces), with the prediction table's factor columns."""
    ok = _scored(preds)
    probs = ok[[f"p_{c}" for c in CLASSES]].to_numpy(dtype=np.float64)
    index = np.array([CLASSES.index(c) for c in ok["label"]], dtype=np.int64)
    out = pd.DataFrame({"emotion": ok["label"].to_numpy(), "cluster": sample_groups(ok),
                        "accuracy": (ok["pred"] == ok["label"]).to_numpy(dtype=np.float64),
                        "p_prompted": probs[np.arange(len(ok)), index],
                        "strength": np.where(ok["label"].to_numpy() == "Neutral", np.nan, 1.0 - ok["p_Neutral"].to_numpy(dtype=np.float64))})
    for factor in FACTORS:
        if factor in ok.columns:
            out[factor] = ok[factor].map(_level_text).to_numpy()
    return out


def _cells(faces: pd.DataFrame, factor: str, measure: str, levels: Sequence[str], emotions: Sequence[str]):
    """(values, cell index emotion x level, clusters, emotions kept) of the faces with the measure, at
    ``levels``, of the emotions with faces at every one of them."""
    rows = faces[faces[factor].isin(levels) & faces["emotion"].isin(emotions) & faces[measure].notna()]
    kept = [e for e in emotions if set(levels) <= set(rows.loc[rows["emotion"] == e, factor])]
    rows = rows[rows["emotion"].isin(kept)]
    cell = rows["emotion"].map({e: i for i, e in enumerate(kept)}).to_numpy() * len(levels) + \
        rows[factor].map({x: j for j, x in enumerate(levels)}).to_numpy()
    return rows[measure].to_numpy(dtype=np.float64), cell.astype(np.int64), rows["cluster"].to_numpy(), kept


@dataclass(frozen=True)
class LevelScore:
    """One model's faces at one level of a factor: each measure the mean over the contrast's emotions
    (CR2 interval over grids; NaN where an emotion has one grid at this level)."""

    model: str
    factor: str
    level: str
    emotions: int
    grids: int
    faces: int
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    p_prompted: float
    p_prompted_low: float
    p_prompted_high: float
    strength: float  # 1 - p(Neutral), non-Neutral faces
    strength_low: float
    strength_high: float


def level_scores(model: str, faces: pd.DataFrame, factor: str, levels: Sequence[str], emotions: Sequence[str]) -> list[LevelScore]:
    """:class:`LevelScore` per level."""
    rows = []
    for level in levels:
        at = faces[(faces[factor] == level) & faces["emotion"].isin(emotions)]
        if at.empty:
            continue
        numbers: list[float] = []
        for measure in MEASURES:
            values, cell, clusters, kept = _cells(at, factor, measure, [level], emotions)
            if not kept:
                numbers += [np.nan] * 3
                continue
            c = linear_contrast(values, cell, clusters, np.full(len(kept), 1.0 / len(kept)))
            numbers += [c.estimate, *_share(c.low, c.high)]
        rows.append(LevelScore(model, factor, level, int(at["emotion"].nunique()), int(at["cluster"].nunique()), len(at), *numbers))
    return rows


@dataclass(frozen=True)
class FactorEffect:
    """One level against the reference level, for one model and measure: the mean over emotions (with
    both levels) of the within-emotion difference, CR2 t interval with grids as clusters."""

    model: str
    factor: str
    level: str
    reference: str
    measure: str
    emotions: int
    estimate: float
    low: float  # NaN where a level of an emotion has one grid: descriptive only
    high: float
    se: float
    df: float
    p_value: float
    min_grids: int  # fewest grids in one (emotion, level) cell

    @property
    def testable(self) -> bool:
        return self.min_grids >= 2


def factor_effects(model: str, faces: pd.DataFrame, factor: str, levels: Sequence[str], emotions: Sequence[str]) -> list[FactorEffect]:
    """:class:`FactorEffect` of every level after the first (the reference), for every measure."""
    out = []
    reference = levels[0]
    for level in levels[1:]:
        for measure, title in MEASURES.items():
            values, cell, clusters, kept = _cells(faces, factor, measure, [reference, level], emotions)
            if not kept:
                continue
            k = len(kept)
            c = linear_contrast(values, cell, clusters, np.tile([-1.0 / k, 1.0 / k], k))
            out.append(FactorEffect(model, factor, level, reference, title, k, c.estimate, c.low, c.high, c.se, c.df, c.p_value,
                                    c.min_clusters))
    return out


LEVEL_TITLES = {"model": "model", "level": "level", "emotions": "emotions", "grids": "grids", "faces": "faces",
                "accuracy": "accuracy", "accuracy_low": "acc. 95% low", "accuracy_high": "acc. 95% high",
                "p_prompted": "p(prompted)", "p_prompted_low": "p(prompted) 95% low", "p_prompted_high": "p(prompted) 95% high",
                "strength": "1 - p(Neutral)", "strength_low": "1 - p(Neutral) 95% low", "strength_high": "1 - p(Neutral) 95% high"}


def level_table(rows: Sequence[LevelScore]) -> pd.DataFrame:
    table = pd.DataFrame([{t: asdict(r)[k] for k, t in LEVEL_TITLES.items()} for r in rows], columns=list(LEVEL_TITLES.values()))
    return declare(table.set_index(["model", "level"]), percent=["accuracy", "p(prompted)", "1 - p(Neutral)"],
                   ci={"accuracy": ("acc. 95% low", "acc. 95% high"), "p(prompted)": ("p(prompted) 95% low", "p(prompted) 95% high"),
                       "1 - p(Neutral)": ("1 - p(Neutral) 95% low", "1 - p(Neutral) 95% high")},
                   show=["emotions", "grids", "faces", "accuracy", "p(prompted)", "1 - p(Neutral)"])


def effect_table(rows: Sequence[FactorEffect]) -> pd.DataFrame:
    records = [{"model": r.model, "contrast": f"{r.level} - {r.reference}", "measure": r.measure, "emotions": r.emotions,
                "difference": r.estimate, "95% low": r.low, "95% high": r.high, "df": r.df, "p": r.p_value,
                "grids per cell (min)": r.min_grids, "tests": "yes" if r.testable else "no: one grid at a level, descriptive only"}
               for r in rows]
    table = pd.DataFrame(records).set_index(["model", "contrast", "measure"])
    return declare(table, points=["difference"], p=["p"], ci={"difference": ("95% low", "95% high")}, decimals={"df": 1},
                   show=["emotions", "difference", "df", "p", "grids per cell (min)", "tests"])


def level_sheet(samples: pd.DataFrame, factor: str, level: str, *, per_emotion: int = 1, seed: int = 0):
    """A contact sheet of one factor level: ``per_emotion`` faces of each emotion drawn at ``level``
    (seeded), labelled with the emotion; None where the level has no face."""
    at = samples[samples[factor].map(_level_text) == level] if factor in samples.columns else samples.iloc[:0]
    if at.empty:
        return None
    picked = per_class_subset(at, per_emotion, seed=seed)
    picked = picked.assign(order=picked["emotion"].map(CLASSES.index)).sort_values("order", kind="stable")
    images = [np.asarray(load_rgb(path)) for path in picked["path"]]
    return plots.gallery(images, [f"{emotion} · {level}" for emotion in picked["emotion"]], ncols=4)


# --------------------------------------------------------------------------- the chapter's sections


def show_valence(chapter: Chapter, scores: Scores, grouping: Mapping[str, str] | None = None, *, seed: int = 0) -> dict:
    """The valence-group table, the valence-level confusion and the recall figure; returns what the record keeps."""
    table = chapter.table(valence_table(scores, grouping, seed=seed), "valence_groups",
                          "Per model, test set and valence group: faces in independent units (grids for synthetic faces), accuracy "
                          "(exact emotion, 95% interval resampling whole grids within each emotion), balanced accuracy (mean recall of the group's emotions) and the share of "
                          "predictions in the true emotion's group (valence right).")
    confusion = chapter.table(valence_confusion(scores, grouping), "valence_confusion",
                              "Valence-level confusion: of each true group's faces, the share predicted as each group.")
    chapter.figure(recall_figure(scores), "recall_real_vs_synthetic",
                   "Recall per emotion of every model on every real test set and on the synthetic faces, side by side.")
    return {"valence": table.reset_index().to_dict("records"), "valence_confusion": confusion.reset_index().to_dict("records")}


def outcome_table(manifest: pd.DataFrame, factors: Sequence[str]) -> pd.DataFrame:
    """Per factor level: grids, cells, the share kept and the rejected cells per reason (most first)."""
    rows = []
    for (factor, level), part in extraction_outcomes(manifest, by=factors).groupby(["factor", "level"], sort=False):
        rejected = part[part["outcome"] != "kept"].sort_values("cells", ascending=False)
        cells = int(part["cells"].sum())
        rows.append({"factor": FACTOR_NAMES.get(factor, factor), "level": level, "grids": int(part["level_grids"].iloc[0]),
                     "cells": cells, "kept": float(part.loc[part["outcome"] == "kept", "cells"].sum() / cells),
                     "rejected cells": ", ".join(f"{o} {c}" for o, c in zip(rejected["outcome"], rejected["cells"], strict=True)) or "none"})
    return declare(pd.DataFrame(rows).set_index(["factor", "level"]), percent=["kept"])


def show_quality(chapter: Chapter, extraction: str | Path, factors: Sequence[str] = ("generator", "template")) -> dict:
    """Extraction outcomes by each factor of ``factors`` that varies among the grids of ``extraction``'s
    ``manifest.csv`` (kept, and why the rest was rejected), and per generator the grids whose detected layout is
    not the one the prompt asked for. A folder without a manifest, or one written before fercore recorded the
    layout asked for, gets one line saying so."""
    path = Path(extraction) / "manifest.csv"
    if not path.is_file():
        chapter.note(f"Extraction outcomes per factor: no manifest.csv in {extraction} (faces given as folders), so none are shown.")
        return {}
    manifest = pd.read_csv(path, dtype=str, keep_default_na=False)
    varying = [f for f in factors if f in manifest.columns and manifest[f].replace("", np.nan).dropna().nunique() > 1]
    record: dict = {}
    if varying:
        table = chapter.table(outcome_table(manifest, varying), "extraction_by_factor",
                              "Extraction outcomes per level of each prompt factor that varies: grids, cells, the share of cells "
                              "kept as faces and the rejected cells per reason.")
        record["extraction"] = table.reset_index().to_dict("records")
    if "layout_asked" not in manifest.columns:
        chapter.note(f"{path} does not record the layout each prompt asked for (written before fercore did): run "
                     "`fercore extract` again on the same folder to add it.")
        return record
    layouts = layout_disagreements(manifest, by="generator").set_index("generator")
    chapter.table(declare(layouts, percent=["share"]), "layout_by_generator",
                  "Per generator: grids, grids checked (extracted, with a layout asked for), grids whose detected layout is "
                  "not the one the prompt asked for, their share, and what was found instead.")
    record["layouts"] = layouts.reset_index().to_dict("records")
    return record


def show_factors(chapter: Chapter, scores: Scores, samples: pd.DataFrame, *, factors: Sequence[str] = FACTORS,
                 test_set: str = "synthetic", extraction: str | Path | None = None, seed: int = 0) -> dict:
    """For each factor that varies among ``test_set``'s faces (``samples``, its sample table, gives the
    factor columns the predictions lack): a line naming its levels, the per-level table, the effects
    table and a contact sheet per level; one line naming the factors that do not vary; with ``extraction``
    (the extracted folder), :func:`show_quality`. Returns the record."""
    per_model = {model: attach_factors(per_set[test_set].preds, samples, factors) for model, per_set in by_model(scores).items()}
    first = next(iter(per_model.values()))
    varying, constant = describe_factors(first, factors)
    record: dict = {"varying": varying, "constant": constant, "levels": [], "effects": []}
    if constant:
        chapter.note("Not compared, since they do not vary in these data: "
                     + "; ".join(f"{FACTOR_NAMES.get(f, f)} ({why})" for f, why in constant.items()) + ".")
    for factor, levels in varying.items():
        name = FACTOR_NAMES.get(factor, factor)
        emotions = factor_levels(first, factor)[1]
        chapter.note(f"**By {name}**: levels {', '.join(levels)} (reference {levels[0]}), over the {len(emotions)} emotions "
                     f"that have faces at two or more ({', '.join(emotions)}).")
        level_rows, effect_rows = [], []
        for model, preds in per_model.items():
            faces = face_measures(preds)
            level_rows += level_scores(model, faces, factor, levels, emotions)
            effect_rows += factor_effects(model, faces, factor, levels, emotions)
        chapter.table(level_table(level_rows), f"by_{factor}",
                      f"Per model and {name}: accuracy, the probability of the prompted emotion and 1 - p(Neutral) (non-Neutral "
                      "faces), each the mean over the emotions compared, with a 95% interval over grids (CR2; blank where an "
                      "emotion has one grid at the level).")
        chapter.table(effect_table(effect_rows), f"effect_{factor}",
                      f"Each {name} against {levels[0]}: the emotion-balanced difference (points) with its grid-clustered CR2 "
                      "interval and t test (exploratory, no multiplicity correction); descriptive only where a level of an "
                      "emotion has one grid.")
        for level in levels:
            sheet = level_sheet(samples, factor, level, seed=seed)
            if sheet is not None:
                chapter.figure(sheet, f"sheet_{factor}_{slug(level)}", f"Synthetic test faces drawn with {name} '{level}', one per emotion.")
        record["levels"] += level_rows
        record["effects"] += effect_rows
    if extraction is not None:
        record["quality"] = show_quality(chapter, extraction)
    return record


def findings(record: Mapping) -> list[str]:
    """Sentences for the chapter's findings: each effect whose interval excludes 0, and how many do not."""
    out = []
    effects = list(record.get("effects", []))
    for e in effects:
        if e.testable and np.isfinite(e.low) and (e.low > 0 or e.high < 0):
            out.append(f"{e.model}: {FACTOR_NAMES.get(e.factor, e.factor)} '{e.level}' against '{e.reference}' changes "
                       f"{e.measure} by {100 * e.estimate:+.1f} points [{100 * e.low:+.1f}, {100 * e.high:+.1f}] "
                       f"(emotion-balanced over {e.emotions} emotions, grids as clusters, exploratory).")
    descriptive = sum(not e.testable for e in effects)
    if descriptive:
        out.append(f"{descriptive} of {len(effects)} factor comparisons are descriptive only (a level of an emotion has one grid).")
    return out
