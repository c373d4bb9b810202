"""RQ2 as a procedure: fine-tuning replicated, against a control fine-tuned on real faces.

* **Replicates.** Replicate r of a fine-tuning regime trains with seed ``seed + r`` on a draw of the synthetic
  training grids (:func:`draw_grids`): within every emotion x gender stratum a fixed share of its source grids,
  subsampled without replacement, at least one, so no draw loses a class or a gender. Every replicate, the first
  included, is drawn the same way (exchangeable replicates); with ``share`` 1 the draws are all grids and the
  replicates differ in seed only. Replicate 0 lives in the regime's folder (the checkpoint RQ3 and RQ4 load),
  replicate r >= 1 beside it (:func:`fercore.studies.regimes.replicate_dir`); runs are reused and resumed.
* **Control** ("fine-tuned on real (control)"): the same weights, recipe and epochs, on as many real faces as the
  replicate's synthetic draw, per emotion, drawn (seed ``seed + r``) from the real faces no evaluated model trained
  or selected on (:meth:`fercore.studies.session.Study.unseen_real_faces`, test splits excluded). Where there are none
  the control is skipped with the message of :class:`fercore.data.NoUnseenFacesError`, never replaced.
* **The estimate** (:func:`fercore.analysis.replicates.replicate_contrast`, the *replicate-mean contrast*): per model
  and real test set, the mean over replicates of the change of balanced accuracy (fine-tuned minus the original, the
  same faces), with a t interval whose variance is the between-replicate variance over R plus the CR2 test-sampling
  variance of the replicate-averaged paired change (Welch-Satterthwaite df); the same for the control and for
  synthetic minus control. The prior-adjusted accuracy change (:mod:`fercore.analysis.prior`) is averaged over the
  replicates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fercore.analysis import arrays, equivalence, prior_adjusted, replicate_contrast, sample_groups
from fercore.book import Chapter
from fercore.core.present import declare
from fercore.data import NoUnseenFacesError
from fercore.models import Classifier, load_model
from fercore.studies.common import frame, slug
from fercore.studies.data import TestSets, real_names
from fercore.studies.regimes import CONTROL, FINETUNED, REAL, Recipe, replicate_dir, train_config, train_regime
from fercore.studies.rq2 import scored_logits, train_regimes
from fercore.studies.scoring import SetScore, score_models
from fercore.studies.session import Study

#: The difference of the two fine-tuning regimes' effects.
DIFFERENCE = "synthetic − control"


def strata(faces: pd.DataFrame) -> list[str]:
    """The columns a draw is stratified by: emotion, and gender where the faces carry one."""
    return ["emotion", "gender"] if "gender" in faces.columns and faces["gender"].notna().all() else ["emotion"]


def draw_grids(faces: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """A replicate's training faces: in every emotion x gender stratum, ``round(share x its grids)`` (at least one) of
    its source grids (``source``; a face without one is its own unit) drawn without replacement, every face of a drawn
    grid kept. Deterministic in ``seed``; ``share`` 1 keeps every grid."""
    if not 0 < share <= 1:
        raise ValueError(f"replicate_share must lie in (0, 1], got {share}")
    units = faces["source"].astype(str) if "source" in faces.columns else pd.Series(faces.index.astype(str), index=faces.index)
    rng = np.random.default_rng(seed)
    chosen = []
    for _, part in faces.groupby(strata(faces), sort=True):
        grids = np.array(sorted(units[part.index].unique()))
        take = max(1, int(np.floor(share * len(grids) + 0.5)))
        chosen.extend(rng.choice(grids, size=take, replace=False).tolist())
    return faces[units.isin(chosen)].reset_index(drop=True)


def control_faces(unseen: pd.DataFrame, like: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """As many real faces of ``unseen`` per emotion as ``like`` (a replicate's synthetic draw) holds, drawn without
    replacement (``seed``); an emotion with fewer unseen faces gives all it has, said in the returned notes."""
    rng = np.random.default_rng(seed)
    parts, notes = [], []
    for emotion, n in like["emotion"].value_counts().sort_index().items():
        pool = unseen[unseen["emotion"] == emotion]
        if len(pool) < n:
            notes.append(f"{emotion}: {len(pool)} unseen real faces for {n} synthetic ones")
        parts.append(pool.iloc[np.sort(rng.choice(len(pool), size=min(n, len(pool)), replace=False))])
    return pd.concat(parts, ignore_index=True), notes


@dataclass
class Replicated:
    """The replicated regimes of a run: checkpoints per replicate, training faces per draw, the control's state."""

    runs: dict[tuple[str, str], list[Path]] = field(default_factory=dict)  # (model, regime) -> checkpoint per replicate
    faces: list[int] = field(default_factory=list)  # synthetic training faces of each replicate's draw
    grids: list[int] = field(default_factory=list)
    skipped: str = ""  # why the control did not run (the NoUnseenFacesError message, or switched off)
    notes: list[str] = field(default_factory=list)

    def first(self) -> dict[tuple[str, str], Path]:
        """``{(model, regime): replicate 0's checkpoint}`` (the one RQ3 and RQ4 load)."""
        return {key: paths[0] for key, paths in self.runs.items()}


def train_replicates(session: Study, names: Sequence[str], real_models: Mapping[str, Classifier], train_faces: pd.DataFrame,
                     recipe: Recipe, *, replicates: int = 1, share: float = 1.0, control: bool = True, seed: int = 0,
                     workers: int = 2, device: str = "auto", progress: bool = True) -> Replicated:
    """Train ``replicates`` runs of fine-tuning on synthetic faces (``recipe``) and, with ``control``, as many of the
    control, for every model of ``names`` (module docstring)."""
    if replicates < 1:
        raise ValueError(f"replicates must be at least 1, got {replicates}")
    out = Replicated()
    unseen = None
    if control:
        try:
            unseen = session.unseen_real_faces(real_models)
        except NoUnseenFacesError as error:
            out.skipped = str(error)
    else:
        out.skipped = "the control parameter is off"
    for r in range(replicates):
        draw = draw_grids(train_faces, share, seed + r)
        out.faces.append(len(draw))
        out.grids.append(int(draw["source"].nunique()) if "source" in draw.columns else len(draw))
        arms = [(FINETUNED, draw)]
        if unseen is not None:
            real, notes = control_faces(unseen, draw, seed + r)
            arms.append((CONTROL, real))
            out.notes += [f"replicate {r}: {note}" for note in notes]
        for name in names:
            for regime, faces in arms:
                config = train_config(session.specs[name], real_models[name], regime, recipe, seed=seed + r, workers=workers,
                                      device=device, progress=progress)
                path = train_regime(config, faces, replicate_dir(session.run_dir, name, regime, r))
                out.runs.setdefault((name, regime), []).append(path)
    return out


@dataclass(frozen=True)
class ReplicateEffect:
    """One model on one real test set: the replicate-mean change of balanced accuracy of a fine-tuning regime against
    the original (or of synthetic against control), with its 95 % interval, and the mean prior-adjusted accuracy change."""

    model: str
    test_set: str
    arm: str  # fine-tuned on synthetic | fine-tuned on real (control) | synthetic − control
    runs: int
    n: int
    change: float
    low: float
    high: float
    p_value: float
    df: float
    t_quantile: float
    between_sd: float  # SD of the runs' changes (NaN with one run)
    adjusted_change: float  # mean over runs of the prior-adjusted accuracy change
    replicated: bool


#: A scored run and its model's training counts per scored class (None: the prior is estimated).
Run = tuple[SetScore, "list[float] | None"]


def _runs(runs: Sequence[Run], ok: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    """Right/wrong per face and prior-adjusted accuracy of each scored run on the rows ``ok``."""
    right, adjusted = [], []
    for score, counts in runs:
        y, pred, _ = arrays(score.preds[ok])
        right.append(pred == y)
        yi, logits = scored_logits(score, ok)
        adjusted.append(prior_adjusted(yi, logits, counts).accuracy_adjusted)
    return right, adjusted


def effects_on(before: Run, arms: Mapping[str, Sequence[Run]]) -> list[ReplicateEffect]:
    """The replicate-mean effect of each arm (``{regime: its runs}``) against ``before`` on one test set, and
    synthetic minus control when both ran."""
    scored = [before[0], *(s for runs in arms.values() for s, _ in runs)]
    first = scored[0]
    if any(list(s.preds["path"]) != list(first.preds["path"]) for s in scored):
        raise ValueError(f"{first.model} on {first.test_set}: the runs were scored on different images")
    ok = np.logical_and.reduce([(s.preds["pred"].notna() & s.preds["label"].notna()).to_numpy() for s in scored])
    y = arrays(first.preds[ok])[0]
    groups = sample_groups(first.preds[ok].reset_index(drop=True))
    base = _runs([before], ok)
    right = {regime: _runs(runs, ok) for regime, runs in arms.items()}
    pairs = [(regime, right[regime], base) for regime in arms]
    if FINETUNED in right and CONTROL in right:
        pairs.append((DIFFERENCE, right[FINETUNED], right[CONTROL]))
    out = []
    for arm, (plus, plus_adj), (minus, minus_adj) in pairs:
        c = replicate_contrast(y, groups, plus, minus)
        sd = float(np.std(c.per_replicate, ddof=1)) if len(plus) > 1 else float("nan")
        out.append(ReplicateEffect(first.model, first.test_set, arm, len(plus), int(ok.sum()), c.estimate, c.low, c.high,
                                   c.p_value, c.df, c.t_quantile, sd, float(np.mean(plus_adj) - np.mean(minus_adj)), c.replicated))
    return out


def score_replicates(session: Study, sets: TestSets, real_models: Mapping[str, Classifier], replicated: Replicated, *,
                     seed: int = 0, n_boot: int = 200) -> list[ReplicateEffect]:
    """Every replicate of every replicated regime on every real test set (the run's inference cache), and
    :func:`effects_on` per model and real set. A run's training prior is its checkpoint's record."""
    real = TestSets({name: sets[name] for name in real_names(sets)}, {name: sets.classes[name] for name in real_names(sets)})
    names = [n for n in real_models if any(model == n for model, _ in replicated.runs)]
    before = _scored({n: real_models[n] for n in names}, real, session, REAL, n_boot, seed)
    scored: dict[str, list[dict[tuple[str, str], Run]]] = {}
    for (name, regime), paths in replicated.runs.items():
        for r, path in enumerate(paths):
            scored.setdefault(regime, []).append(_scored({name: load_model(path)}, real, session, f"{regime} · rep {r}", n_boot, seed))
    out = []
    for key, base in before.items():
        arms = {regime: [s[key] for s in runs if key in s] for regime, runs in scored.items()}
        out += effects_on(base, {regime: runs for regime, runs in arms.items() if runs})
    return out


def _scored(models: Mapping[str, Classifier], sets: TestSets, session: Study, regime: str, n_boot: int,
            seed: int) -> dict[tuple[str, str], Run]:
    scores = score_models(models, sets, session.inference, regime=regime, n_boot=n_boot, seed=seed)
    return {key: (score, models[key[0]].facts.training_counts(score.classes)) for key, score in scores.items()}


EFFECT_TITLES = {"model": "model", "test_set": "test set", "arm": "arm", "runs": "runs", "n": "n", "change": "bal. acc. change",
                 "low": "change 95% low", "high": "change 95% high", "p_value": "p", "df": "df", "t_quantile": "t quantile (95%)",
                 "between_sd": "SD between runs", "adjusted_change": "prior-adj. accuracy change", "replicated": "replicated"}


def effect_table(rows: list[ReplicateEffect]) -> pd.DataFrame:
    """Per model, real set and arm: runs, the replicate-mean change with its interval, p, the t quantile the interval
    used, the SD between runs and the mean prior-adjusted accuracy change (the CSV adds n, df and the bounds)."""
    table = frame(rows, EFFECT_TITLES, index=["model", "test_set", "arm"])
    return declare(table, points=["bal. acc. change", "SD between runs", "prior-adj. accuracy change"], p=["p"],
                   ci={"bal. acc. change": ("change 95% low", "change 95% high")}, decimals={"t quantile (95%)": 2},
                   show=["runs", "bal. acc. change", "p", "t quantile (95%)", "SD between runs", "prior-adj. accuracy change"],
                   titles={"bal. acc. change": "change", "t quantile (95%)": "t (95%)", "SD between runs": "SD runs",
                           "prior-adj. accuracy change": "prior-adj. change"})


def _interval(row: ReplicateEffect) -> str:
    interval = (f"95 % interval {100 * row.low:+.1f} to {100 * row.high:+.1f}" if np.isfinite(row.low)
                else "no interval: a class has a single test cluster")
    return f"{100 * row.change:+.1f} points ({interval}, {row.runs} run(s))"


def effect_findings(rows: list[ReplicateEffect], margin: float = 5.0) -> list[str]:
    """Per model and real set: the effect of fine-tuning on synthetic faces, of the control, and which helped more: more
    or less where the interval of synthetic − control excludes 0, *equivalent* only where a TOST against ±``margin``
    points rejects (the replicate-mean t with its df), else not distinguishable at this design."""
    out = []
    for (model, test_set), part in pd.DataFrame([vars(r) | {"row": r} for r in rows]).groupby(["model", "test_set"], sort=False):
        by_arm = {r.arm: r for r in part["row"]}
        words = [f"{model} on {test_set}: fine-tuned on synthetic faces, balanced accuracy changes by {_interval(by_arm[FINETUNED])}"]
        if CONTROL in by_arm:
            words.append(f"fine-tuned on as many real faces (control) by {_interval(by_arm[CONTROL])}")
            diff = by_arm[DIFFERENCE]
            if diff.low > 0 or diff.high < 0:
                verdict = "synthetic faces help more than real ones" if diff.change > 0 else "synthetic faces help less than real ones"
            else:
                se = (diff.high - diff.low) / (2 * diff.t_quantile) if diff.t_quantile > 0 else float("nan")
                p_eq = equivalence(diff.change, se, diff.df, margin / 100) if np.isfinite(se) and se > 0 else float("nan")
                verdict = (f"synthetic and real faces help equally within ±{margin:g} points (TOST p = {p_eq:.3g})" if p_eq < 0.05 else
                           f"which helps more is not distinguishable at this design (the interval holds 0; the TOST against "
                           f"±{margin:g} points does not reject{'' if np.isnan(p_eq) else f', p = {p_eq:.3g}'})")
            words.append(f"synthetic − control {_interval(diff)}: {verdict}")
        out.append("; ".join(words) + ".")
    return out


def width_line(rows: list[ReplicateEffect]) -> str:
    """What few replicates do to the interval: the runs, and the t quantile used against 1.96."""
    if not rows:
        return "No replicated regime was scored."
    runs = max(r.runs for r in rows)
    if runs < 2:
        return ("Each fine-tuning regime ran once in this run (replicates = 1): the intervals cover the test faces only, not "
                "another seed or draw of training grids, and say nothing about how fine-tuning varies between runs.")
    t = [r.t_quantile for r in rows if np.isfinite(r.t_quantile)]
    return (f"Each fine-tuning regime ran {runs} times. The replicate-to-replicate part of an interval has only {runs - 1} "
            f"degrees of freedom: where it dominates, the 95 % t quantile approaches {float(np.round(_t(runs - 1), 2))} instead of "
            f"1.96; the quantiles used here lie between {min(t):.2f} and {max(t):.2f}." if t else
            f"Each fine-tuning regime ran {runs} times; no interval could be computed (nothing varied, or a class has a single "
            "test face).")


def _t(df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, df))


def show_effects(chapter: Chapter, rows: list[ReplicateEffect], replicated: Replicated, margin: float = 5.0) -> list[str]:
    """The chapter's replicate table, the control's state and the width line; returns the findings."""
    if replicated.skipped:
        chapter.note(f"The control regime (fine-tuned on real faces) did not run: {replicated.skipped}")
    if replicated.notes:
        chapter.note("The control has fewer real faces than the synthetic draw in some emotions: " + "; ".join(replicated.notes))
    if rows:
        chapter.table(effect_table(rows), "replicate_effects",
                      "Per model and real test set: the mean over replicates of the change of balanced accuracy (fine-tuned "
                      "minus the original, the same faces), for fine-tuning on synthetic faces, on as many real faces (control), "
                      "and synthetic minus control; 95% interval from the between-replicate and the test-sampling variance "
                      "(t with the quantile shown), the SD of the runs' changes and the mean prior-adjusted accuracy change.")
    chapter.remark(width_line(rows))
    return effect_findings(rows, margin)


def glue_values(rows: list[ReplicateEffect], replicated: Replicated) -> dict[str, float | str]:
    """``rq2_replicates`` (runs), ``rq2_replicate_faces`` (training faces per draw), ``rq2_control`` (whether the
    control ran), ``rq2_replicate_significant`` (pairs whose synthetic interval excludes 0), ``rq2_synthetic_more`` /
    ``rq2_synthetic_less`` (pairs where synthetic − control excludes 0 upward / downward), and per model and set
    ``rq2_<model>_<set>_<synthetic|control|difference>`` (points)."""
    excludes = (lambda r, sign: bool(np.isfinite(r.low) and (r.low > 0 if sign > 0 else r.high < 0)))
    values: dict[str, float | str] = {"rq2_replicates": float(max((r.runs for r in rows), default=0)),
                                      "rq2_replicate_faces": ", ".join(map(str, sorted(set(replicated.faces)))) or "n/a",
                                      "rq2_control": ("the control ran on real faces no model saw" if not replicated.skipped
                                                      else "the control did not run (the note says what to provide)"),
                                      "rq2_replicate_significant": float(sum(r.arm == FINETUNED and (excludes(r, 1) or excludes(r, -1))
                                                                             for r in rows)),
                                      "rq2_synthetic_more": float(sum(r.arm == DIFFERENCE and excludes(r, 1) for r in rows)),
                                      "rq2_synthetic_less": float(sum(r.arm == DIFFERENCE and excludes(r, -1) for r in rows))}
    names = {FINETUNED: "synthetic", CONTROL: "control", DIFFERENCE: "difference"}
    for r in rows:
        values[f"rq2_{slug(r.model)}_{slug(r.test_set)}_{names[r.arm]}"] = 100 * r.change
    return values


def train_all(session: Study, names: Sequence[str], real_models: Mapping[str, Classifier], train_faces: pd.DataFrame,
              recipes: Mapping[str, Recipe], *, replicates: int = 1, share: float = 1.0, control: bool = True, seed: int = 0,
              workers: int = 2, device: str = "auto", progress: bool = True) -> tuple[dict[tuple[str, str], Path], Replicated]:
    """The chapter's training: the synthetic-only regime once (all training faces), fine-tuning on synthetic faces and
    the control replicated (:func:`train_replicates`). Returns ``{(model, regime): checkpoint}`` (a replicated
    regime's replicate 0) and the replicates."""
    single = {regime: recipe for regime, recipe in recipes.items() if regime != FINETUNED}
    checkpoints = train_regimes({n: session.specs[n] for n in names}, real_models, train_faces, session.run_dir, single, seed=seed,
                                workers=workers, device=device, progress=progress)
    replicated = train_replicates(session, names, real_models, train_faces, recipes[FINETUNED], replicates=replicates, share=share,
                                  control=control, seed=seed, workers=workers, device=device, progress=progress)
    return {**replicated.first(), **checkpoints}, replicated


def show(session: Study, sets: TestSets, real_models: Mapping[str, Classifier], replicated: Replicated, *,
         seed: int = 0, margin: float = 5.0) -> tuple[list[ReplicateEffect], list[str]]:
    """:func:`score_replicates` and :func:`show_effects`: the rows and the findings (``margin``: the equivalence margin in
    points, the notebook's ``equivalence_margin``)."""
    rows = score_replicates(session, sets, real_models, replicated, seed=seed)
    return rows, show_effects(session.chapter, rows, replicated, margin)
