"""RQ2: each model fine-tuned on synthetic faces and scored on every real set before and after
(the change of balanced accuracy with a paired 95 % interval on the same faces, worded by
:func:`fercore.analysis.wording.finding`; accuracy plain and prior-adjusted (:mod:`fercore.analysis.prior`), so a
reader sees how much of a change is the head's class prior; McNemar's test on the images only one of the two gets
right, kept only as a per-checkpoint descriptive check of these two checkpoints on these images), and the synthetic-only regime:
its accuracy on the real sets and its internal consistency, grouped k-fold cross-validation on
the synthetic training faces with folds by source grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from fercore.analysis import (
    Comparison,
    accuracy,
    arrays,
    balanced_contrast,
    equivalence,
    finding,
    mcnemar,
    mde_from_se,
    plots,
    prior_adjusted,
    sample_groups,
    verdict,
)
from fercore.book import Chapter
from fercore.core.present import declare
from fercore.models import Classifier, load_model
from fercore.studies.common import frame, pct, slug
from fercore.studies.data import TestSets
from fercore.studies.labelcheck import confirmed_scores, confirmed_table
from fercore.studies.data import training_faces as data_training_faces
from fercore.studies.regimes import (
    FINETUNED,
    REAL,
    SYNTHETIC_ONLY,
    ModelSpec,
    Recipe,
    regime_dir,
    selection,
    train_config,
    train_regime,
    training_log,
)
from fercore.studies.scoring import Scores, SetScore, score_models
from fercore.studies.session import Study
from fercore.training import run_cv

#: Equivalence margin of a before/after change (points of balanced accuracy); the notebook's parameter overrides it.
MARGIN = 5.0


def train_regimes(specs: dict[str, ModelSpec], real_models: dict[str, Classifier], train_faces: pd.DataFrame, run_dir: str | Path,
                  recipes: dict[str, Recipe], *, seed: int = 0, workers: int = 2, device: str = "auto",
                  progress: bool = True) -> dict[tuple[str, str], Path]:
    """Train each model in each regime of ``recipes`` (fine-tuned on synthetic, trained on synthetic
    only) on ``train_faces`` into ``<run>/models/<model>/<regime>/``; finished runs are reused,
    interrupted ones resumed. Returns ``{(model, regime): checkpoint}``."""
    checkpoints = {}
    for name, spec in specs.items():
        for regime, recipe in recipes.items():
            config = train_config(spec, real_models[name], regime, recipe, seed=seed, workers=workers, device=device, progress=progress)
            checkpoints[(name, regime)] = train_regime(config, train_faces, regime_dir(run_dir, name, regime))
    return checkpoints


@dataclass(frozen=True)
class ModelChange:
    """One model on one test set in two regimes (same images): accuracies (plain and prior-adjusted), discordant
    pairs with McNemar's p (a per-checkpoint descriptive check: these two checkpoints on these images, not whether
    fine-tuning transfers), and the change of balanced accuracy (after - before) paired on the same faces with its 95 %
    interval (CR2 t; a synthetic face's grid is its cluster, a real face its own), TOST against ±margin."""

    model: str
    test_set: str
    before: str  # regime names
    after: str
    n: int
    accuracy_before: float
    accuracy_after: float
    macro_f1_before: float
    macro_f1_after: float
    only_before_right: int
    only_after_right: int
    p_value: float  # McNemar (exact binomial on the discordant pairs when they are few)
    change: float = float("nan")  # balanced accuracy after - before, same faces
    change_low: float = float("nan")
    change_high: float = float("nan")
    change_p: float = float("nan")  # paired CR2 t test
    p_equivalence: float = float("nan")
    margin: float = MARGIN / 100
    mde: float = float("nan")  # minimal detectable change at 80 % power, from the paired standard error
    balanced_before: float = float("nan")
    balanced_after: float = float("nan")
    adjusted_before: float = float("nan")  # accuracy after logit adjustment to the test set's prior
    adjusted_after: float = float("nan")
    balanced_adjusted_before: float = float("nan")
    balanced_adjusted_after: float = float("nan")
    prior_before: str = ""  # where the training prior came from: checkpoint | estimated
    prior_after: str = ""

    @property
    def prior_part(self) -> float:
        """How much of the plain accuracy change is the class prior: the change minus the prior-adjusted change."""
        return (self.accuracy_after - self.accuracy_before) - (self.adjusted_after - self.adjusted_before)


def scored_logits(score: SetScore, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels as indices into ``score.classes``, logits over ``score.classes``) of the rows ``rows`` of its predictions."""
    preds = score.preds[rows]
    y = np.array([score.classes.index(label) for label in preds["label"]], dtype=int)
    return y, preds[[f"logit_{c}" for c in score.classes]].to_numpy(dtype=np.float64)


def prior_figures(before: SetScore, after: SetScore, ok: np.ndarray, counts: Mapping[str, list[float] | None]) -> dict:
    """:func:`fercore.analysis.prior.prior_adjusted` of both regimes as :class:`ModelChange` fields; ``counts``:
    ``{regime: training faces per class of the scored set}`` (None or missing: estimated)."""
    out = {}
    for when, score in (("before", before), ("after", after)):
        y, logits = scored_logits(score, ok)
        result = prior_adjusted(y, logits, counts.get(score.regime))
        out.update({f"balanced_{when}": result.balanced_accuracy, f"adjusted_{when}": result.accuracy_adjusted,
                    f"balanced_adjusted_{when}": result.balanced_accuracy_adjusted, f"prior_{when}": result.prior_source})
    return out


def change(before: SetScore, after: SetScore, *, margin: float = MARGIN,
           training_counts: Mapping[str, list[float] | None] | None = None) -> ModelChange:
    """Compare two scores of the same images (the paths must agree, in order). ``training_counts``: ``{regime:
    training faces per class of the scored set}`` for the prior adjustment (a regime without them: estimated)."""
    a, b = before.preds, after.preds
    if list(a["path"]) != list(b["path"]):
        raise ValueError(f"{before.model} on {before.test_set}: the two regimes were scored on different images")
    ok = (a["pred"].notna() & b["pred"].notna() & a["label"].notna()).to_numpy()
    y_true, pred_a, _ = arrays(a[ok])
    pred_b = arrays(b[ok])[1]
    test = mcnemar(y_true, pred_a, pred_b)
    present = np.unique(y_true)
    y = np.searchsorted(present, y_true)
    groups = sample_groups(a[ok].reset_index(drop=True))
    paired = balanced_contrast((y, pred_b == y_true, groups), (y, pred_a == y_true, groups), len(present), paired=True)
    p_eq = equivalence(paired.estimate, paired.se, paired.df, margin / 100) if paired.testable and np.isfinite(paired.se) else float("nan")
    return ModelChange(before.model, before.test_set, before.regime, after.regime, int(ok.sum()), accuracy(y_true, pred_a),
                       accuracy(y_true, pred_b), before.macro_f1, after.macro_f1, int(test["b"]), int(test["c"]), float(test["p_value"]),
                       paired.estimate, paired.low, paired.high, paired.p_value, p_eq, margin / 100,
                       mde_from_se(paired.se, paired.df), **prior_figures(before, after, ok, training_counts or {}))


def change_comparison(row: ModelChange, n_train: int) -> Comparison:
    """A before/after change as a :class:`~fercore.analysis.wording.Comparison` (points)."""
    adjusted = (f", prior-adjusted {pct(row.adjusted_before)} → {pct(row.adjusted_after)}" if np.isfinite(row.adjusted_before) else "")
    return Comparison(f"{row.model}, fine-tuned on {n_train} synthetic faces, on {row.test_set} (accuracy {pct(row.accuracy_before)} → "
                      f"{pct(row.accuracy_after)}{adjusted}; {row.only_after_right} images only the fine-tuned model gets right, "
                      f"{row.only_before_right} only the original, a descriptive check of this checkpoint)", "change of balanced accuracy (after - before, same faces)",
                      100 * row.change, 100 * row.change_low, 100 * row.change_high, p_value=row.change_p, margin=100 * row.margin,
                      p_equivalence=row.p_equivalence if np.isfinite(row.p_equivalence) else None,
                      mde=100 * row.mde if np.isfinite(row.mde) else None)


def changes(before: Scores, after: Scores, *, real_only: bool = True, margin: float = MARGIN,
            models: Mapping[tuple[str, str], Classifier] | None = None) -> list[ModelChange]:
    """:func:`change` for every (model, test set) scored in both (real sets only by default). ``models``: ``{(model,
    regime): Classifier}`` whose checkpoints give the training prior (:meth:`~fercore.models.ModelFacts.training_counts`);
    a model missing there, or a file that does not record its counts, has its prior estimated."""
    models = models or {}
    out = []
    for key in before:
        if key not in after or (real_only and key[1] == "synthetic"):
            continue
        counts = {s.regime: models[(s.model, s.regime)].facts.training_counts(s.classes) if (s.model, s.regime) in models else None
                  for s in (before[key], after[key])}
        out.append(change(before[key], after[key], margin=margin, training_counts=counts))
    return out


#: McNemar's test is a per-checkpoint descriptive check (these two checkpoints on these images), named so in the tables.
MCNEMAR = "McNemar p (per-checkpoint, descriptive)"

CHANGE_TITLES = {"model": "model", "test_set": "test set", "n": "n", "balanced_before": "bal. acc. before",
                 "balanced_after": "bal. acc. after", "change": "bal. acc. change", "change_low": "change 95% low",
                 "change_high": "change 95% high", "change_p": "change p", "p_equivalence": "p equivalence (TOST)",
                 "mde": "MDE (80% power)"}


def change_table(rows: list[ModelChange]) -> pd.DataFrame:
    """The test of each change: balanced accuracy before and after, the paired change with its interval, p, TOST p, MDE."""
    table = frame(rows, CHANGE_TITLES, index=["model", "test_set"])
    return declare(table, percent=["bal. acc. before", "bal. acc. after"], points=["bal. acc. change", "MDE (80% power)"],
                   p=["change p", "p equivalence (TOST)"], ci={"bal. acc. change": ("change 95% low", "change 95% high")},
                   titles={"bal. acc. before": "before", "bal. acc. after": "after", "p equivalence (TOST)": "p TOST"})


CHECKPOINT_TITLES = {"model": "model", "test_set": "test set", "n": "n", "accuracy_before": "accuracy before",
                     "accuracy_after": "accuracy after", "macro_f1_before": "macro-F1 before", "macro_f1_after": "macro-F1 after",
                     "only_before_right": "only before right", "only_after_right": "only after right", "p_value": MCNEMAR}


def checkpoint_table(rows: list[ModelChange]) -> pd.DataFrame:
    """The per-checkpoint descriptive check: accuracy and macro-F1 of these two checkpoints on these images, the
    images only one of them gets right and McNemar's p on them (not a test of whether fine-tuning transfers)."""
    table = frame(rows, CHECKPOINT_TITLES, index=["model", "test_set"])
    return declare(table, percent=["accuracy before", "accuracy after", "macro-F1 before", "macro-F1 after"], p=[MCNEMAR],
                   titles={MCNEMAR: "McNemar p"})


PRIOR_TITLES = {"model": "model", "test_set": "test set", "n": "n", "accuracy_before": "accuracy before",
                "accuracy_after": "accuracy after", "adjusted_before": "prior-adj. accuracy before",
                "adjusted_after": "prior-adj. accuracy after", "balanced_before": "balanced acc. before",
                "balanced_after": "balanced acc. after", "balanced_adjusted_before": "prior-adj. balanced acc. before",
                "balanced_adjusted_after": "prior-adj. balanced acc. after", "prior_before": "training prior before",
                "prior_after": "training prior after"}


def prior_table(rows: list[ModelChange]) -> pd.DataFrame:
    """Accuracy and balanced accuracy before and after, plain and prior-adjusted (logit adjustment to the test set's
    prior), with the change of accuracy split into its prior part and the rest. The page shows plain and adjusted
    accuracy with the changes; the CSV adds the balanced figures and where each training prior came from."""
    table = frame(rows, PRIOR_TITLES, index=["model", "test_set"])
    table["accuracy change"] = [r.accuracy_after - r.accuracy_before for r in rows]
    table["prior-adj. accuracy change"] = [r.adjusted_after - r.adjusted_before for r in rows]
    table["of which prior"] = [r.prior_part for r in rows]
    shares = [t for t in PRIOR_TITLES.values() if t not in ("model", "test set", "n") and not t.startswith("training prior")]
    return declare(table, percent=shares, points=["accuracy change", "prior-adj. accuracy change", "of which prior"],
                   show=["accuracy before", "accuracy after", "accuracy change", "prior-adj. accuracy before",
                         "prior-adj. accuracy after", "prior-adj. accuracy change", "of which prior"],
                   titles={"accuracy before": "before", "accuracy after": "after", "accuracy change": "change",
                           "prior-adj. accuracy before": "adjusted before", "prior-adj. accuracy after": "adjusted after",
                           "prior-adj. accuracy change": "adjusted change"})


def show_changes(chapter: Chapter, changes: list[ModelChange]) -> None:
    """The three tables of the before/after comparison: the test of each change, the per-checkpoint descriptive
    check (McNemar), and accuracy plain and prior-adjusted."""
    chapter.table(change_table(changes), "finetuned_vs_original",
                  "Each model before and after fine-tuning on synthetic faces, on the same real test images: balanced accuracy "
                  "before and after, the change paired on the same faces with its 95% interval, p, the TOST p against the "
                  "equivalence margin and the MDE.")
    chapter.table(checkpoint_table(changes), "checkpoint_check",
                  "A per-checkpoint descriptive check of the same two checkpoints on the same images: accuracy, macro-F1, the "
                  "images only one of the two gets right and McNemar's p on them (these two checkpoints, not whether "
                  "fine-tuning transfers).")
    chapter.table(prior_table(changes), "prior_adjusted",
                  "Accuracy before and after, plain and prior-adjusted (logits moved to the test set's class prior), and the "
                  "prior's part of the change (the CSV adds balanced accuracy, adjusted and not, and where each training prior "
                  "came from).")


def show_confirmed(chapter: Chapter, check, *groups: Scores) -> None:
    """With a filled label sheet (``check``: :class:`~fercore.studies.labelcheck.LabelCheck`), the trained regimes'
    scores on the synthetic test faces, all kept beside those the person confirmed; without one nothing (the chapter
    opens with the line that the labels are unchecked)."""
    if check.checked:
        rows = confirmed_scores({(f"{s.model} · {s.regime}", s.test_set): s for scores in groups for s in scores.values()}, check)
        chapter.table(confirmed_table(rows), "confirmed_faces", "Each trained regime on the synthetic test faces: all kept "
                      "faces beside the faces whose prompt label a person confirmed (blind label sheet).")


def accuracy_frame(*groups: Scores) -> pd.DataFrame:
    """Accuracy per (model, test set) (rows) and regime (columns), for a grouped bar chart."""
    records = {}
    for scores in groups:
        for (model, test_set), score in scores.items():
            records.setdefault(f"{model} · {test_set}", {})[score.regime] = score.accuracy
    table = pd.DataFrame(records).T.rename_axis("model · test set")
    return declare(table, percent=list(table.columns))


@dataclass(frozen=True)
class FoldScore:
    fold: int
    n_train: int
    n_val: int
    n_test: int
    accuracy: float
    macro_f1: float
    selection: str = ""  # how the fold's run chose its weights (none: too few grids for an inner split)


@dataclass(frozen=True)
class CrossValidation:
    """Grouped k-fold cross-validation of one model's synthetic-only regime on the synthetic training faces."""

    model: str
    k: int
    grouped_by: str | None  # "source" (the source grid) when the faces carry it
    folds: tuple[FoldScore, ...]
    accuracy_mean: float
    accuracy_sd: float
    macro_f1_mean: float
    macro_f1_sd: float
    replicates: int = 1  # runs of the whole CV (seed + r: other folds, other initial draws)
    replicate_sd: float = float("nan")  # SD of the replicates' mean accuracy (NaN with one)


def pooled_cv(runs: Sequence[CrossValidation]) -> CrossValidation:
    """Replicates of one model's CV as one: the mean over replicates of the fold means and SDs, every fold kept, and
    the SD between the replicates' mean accuracies."""
    if len(runs) == 1:
        return runs[0]
    mean = (lambda name: float(np.mean([getattr(r, name) for r in runs])))
    return CrossValidation(runs[0].model, runs[0].k, runs[0].grouped_by, tuple(f for r in runs for f in r.folds), mean("accuracy_mean"),
                           mean("accuracy_sd"), mean("macro_f1_mean"), mean("macro_f1_sd"), len(runs),
                           float(np.std([r.accuracy_mean for r in runs], ddof=1)))


def cross_validate(spec: ModelSpec, real: Classifier, recipe: Recipe, train_faces: pd.DataFrame, out: str | Path, *, k: int = 3,
                   seed: int = 0, workers: int = 2, device: str = "auto", progress: bool = True) -> CrossValidation:
    """Grouped k-fold CV (folds by source grid; each fold selects its epoch on a grouped inner
    validation split, never on its held-out fold) of ``spec``'s synthetic-only regime; resumable."""
    config = train_config(spec, real, SYNTHETIC_ONLY, recipe, seed=seed, workers=workers, device=device, progress=progress)
    config = replace(config, experiment=f"{slug(spec.name)}-synthetic-only-cv")
    table = run_cv(config, k, samples=train_faces.reset_index(drop=True), out=out)
    folds = tuple(FoldScore(int(r.fold), int(r.n_train), int(r.n_val), int(r.n_test), float(r.accuracy), float(r.macro_f1),
                            str(r.selection)) for r in table.itertuples())
    sd = (lambda column: float(table[column].std(ddof=1)) if k > 1 else 0.0)
    return CrossValidation(spec.name, k, "source" if "source" in train_faces.columns else None, folds,
                           float(table["accuracy"].mean()), sd("accuracy"), float(table["macro_f1"].mean()), sd("macro_f1"))


CV_TITLES = {"model": "model", "k": "folds", "grouped_by": "grouped by", "accuracy_mean": "accuracy mean",
             "accuracy_sd": "accuracy sd", "macro_f1_mean": "macro-F1 mean", "macro_f1_sd": "macro-F1 sd", "replicates": "replicates",
             "replicate_sd": "accuracy sd between replicates"}


def cv_table(rows: list[CrossValidation]) -> pd.DataFrame:
    return declare(frame(rows, CV_TITLES, index="model"), percent=["accuracy mean", "accuracy sd", "macro-F1 mean", "macro-F1 sd",
                                                                    "accuracy sd between replicates"],
                   titles={"accuracy sd between replicates": "sd between replicates"})


def findings(finetuned: list[ModelChange], synthetic_only: Scores, cv: list[CrossValidation], n_train: int) -> list[str]:
    """Computed statements of fact from RQ2's results."""
    out = [finding(change_comparison(row, n_train)) for row in finetuned]
    for result in cv:
        real = {s.test_set: s.accuracy for (model, _), s in synthetic_only.items() if model == result.model and s.test_set != "synthetic"}
        on_real = ", ".join(f"{name} {pct(acc)}" for name, acc in real.items())
        out.append(f"{result.model} trained on synthetic faces only: {pct(result.accuracy_mean)} ± {pct(result.accuracy_sd)} "
                   f"accuracy over {result.k} folds grouped by {result.grouped_by or 'image'} (held-out synthetic faces); "
                   f"on the real sets {on_real}.")
        unselected = sum(f.selection.startswith("none") for f in result.folds)
        if unselected:
            out.append(f"{unselected} of {result.k} folds of {result.model} had too few grids for an inner validation split: "
                       "they trained their fixed epochs and kept the final one (no selection).")
    return out


def glue_values(finetuned: list[ModelChange], synthetic_only: Scores, cv: list[CrossValidation]) -> dict[str, float | str]:
    """``rq2_<model>_<set>_before`` / ``_after`` (accuracy, %), ``rq2_<model>_cv_accuracy`` (%), and
    ``rq2_significant_changes`` (how many (model, set) pairs changed at α)."""
    values: dict[str, float | str] = {}
    for row in finetuned:
        values[f"rq2_{slug(row.model)}_{slug(row.test_set)}_before"] = 100 * row.accuracy_before
        values[f"rq2_{slug(row.model)}_{slug(row.test_set)}_after"] = 100 * row.accuracy_after
        values[f"rq2_{slug(row.model)}_{slug(row.test_set)}_adjusted_before"] = 100 * row.adjusted_before
        values[f"rq2_{slug(row.model)}_{slug(row.test_set)}_adjusted_after"] = 100 * row.adjusted_after
        values[f"rq2_{slug(row.model)}_{slug(row.test_set)}_prior_part"] = 100 * row.prior_part
    for result in cv:
        values[f"rq2_{slug(result.model)}_cv_accuracy"] = 100 * result.accuracy_mean
    for (model, test_set), score in synthetic_only.items():
        values[f"rq2_{slug(model)}_{slug(test_set)}_synthetic_only"] = 100 * score.accuracy
    values["rq2_significant_changes"] = float(sum(verdict(change_comparison(r, 0)) in ("significant", "both") for r in finetuned))
    values["rq2_equivalent_changes"] = float(sum(verdict(change_comparison(r, 0)) in ("equivalent", "both") for r in finetuned))
    values["rq2_pairs"] = float(len(finetuned))
    return values


# --------------------------------------------------------------------------- the chapter's steps


def recipes(epochs: int, head_epochs: int, lr: float, head_lr: float | None, optimizer: str, synthetic_only_epochs: int,
            synthetic_only_head_epochs: int, synthetic_only_lr: float, synthetic_only_head_lr: float | None,
            synthetic_only_optimizer: str, *, batch_size: int) -> dict[str, Recipe]:
    """The two trained regimes' recipes from the notebook's flat parameters: fine-tuned on synthetic
    faces (``epochs`` ...) and trained on synthetic faces only (``synthetic_only_*``)."""
    return {FINETUNED: Recipe(epochs, head_epochs, lr, head_lr, optimizer, batch_size),
            SYNTHETIC_ONLY: Recipe(synthetic_only_epochs, synthetic_only_head_epochs, synthetic_only_lr, synthetic_only_head_lr,
                                   synthetic_only_optimizer, batch_size)}


def gender_recipe(recipes: Mapping[str, Recipe], epochs: int) -> Recipe:
    """The gender study's runs: the fine-tuning recipe for ``epochs`` epochs (the head alone for at most all but the last)."""
    finetune = recipes[FINETUNED]
    return Recipe(epochs, min(finetune.head_epochs, epochs - 1), finetune.lr, finetune.head_lr, finetune.optimizer, finetune.batch_size)


def selection_lines(checkpoints: Mapping[tuple[str, str], Path]) -> str:
    """One line per training run: how it chose its weights (a validation epoch, or none)."""
    return "\n".join(f"{name}, {regime}: selection {selection(checkpoint)}" for (name, regime), checkpoint in checkpoints.items())


def show_training(chapter: Chapter, checkpoints: Mapping[tuple[str, str], Path]) -> str:
    """Loss and accuracy per epoch of every training run, one figure."""
    logs = {f"{name}, {regime}": training_log(checkpoint) for (name, regime), checkpoint in checkpoints.items()}
    return chapter.figure(plots.training_panels(logs),
                          "training", "Loss and accuracy per epoch of every training run: one colour per model and regime, solid on the "
                                      "training faces, dashed on the validation part split off them by source grid.")


def score_regimes(session: Study, sets: TestSets, real_models: Mapping[str, Classifier], names: Sequence[str],
                  checkpoints: Mapping[tuple[str, str], Path], *, seed: int = 0) -> tuple[Scores, Scores, Scores]:
    """Every model of ``names`` on every test set as given (``real_models``), fine-tuned on synthetic
    faces and trained on them only; the trained regimes' predictions written into the chapter."""
    chapter = session.chapter
    before = score_models(real_models, sets, session.inference, regime=REAL, seed=seed)
    after = score_models({n: load_model(checkpoints[(n, FINETUNED)]) for n in names}, sets, session.inference, regime=FINETUNED,
                         seed=seed, out=chapter.path("predictions", "finetuned"))
    synthetic_only = score_models({n: load_model(checkpoints[(n, SYNTHETIC_ONLY)]) for n in names}, sets, session.inference,
                                  regime=SYNTHETIC_ONLY, seed=seed, out=chapter.path("predictions", "synthetic_only"))
    return before, after, synthetic_only


def regime_models(real_models: Mapping[str, Classifier], checkpoints: Mapping[tuple[str, str], Path]) -> dict[tuple[str, str], Classifier]:
    """``{(model, regime): Classifier}`` of the models as given and every trained regime (for :func:`changes`'s training
    priors: each checkpoint's recorded class counts)."""
    out = {(name, REAL): model for name, model in real_models.items()}
    out.update({key: load_model(path) for key, path in checkpoints.items()})
    return out


def cv_notes(results: Sequence[CrossValidation]) -> list[str]:
    """A line for each cross-validation fold that could select no epoch (too few grids to validate on), and one saying
    how often the CV ran (once: its spread between seeds is not measured)."""
    lines = [f"{result.model}, fold {fold.fold}: selection {fold.selection}" for result in results for fold in result.folds
             if fold.selection.startswith("none")]
    runs = max((r.replicates for r in results), default=0)
    if runs == 1:
        lines.append("The grouped cross-validation ran once in this run (cv_replicates = 1): how its mean moves with another "
                     "seed and another fold split is not measured.")
    elif runs > 1:
        lines.append(f"The grouped cross-validation ran {runs} times (seed + r: other folds and initial draws); the tables give "
                     "the mean over the replicates and the SD between them.")
    return lines


def trained_models(session: Study, train_models: Sequence[str] | None) -> tuple[list[str], dict[str, Classifier]]:
    """The names of the models trained here (``train_models``, else every model) and those models as
    given (every model is loaded and recorded, as in RQ1)."""
    names = list(train_models or session.specs)
    return names, {name: model for name, model in session.models().items() if name in names}


def training_faces(session: Study, split: str = "train", max_per_class: int | None = None, *, seed: int = 0) -> pd.DataFrame:
    """The synthetic training faces (:func:`fercore.studies.data.training_faces`), recorded in the chapter's samples."""
    faces = data_training_faces(session.synthetic_root, split, max_per_class, seed=seed)
    session.record_samples({"synthetic train": faces})
    return faces


def record(changes: list[ModelChange], synthetic_only: Scores, cv: list[CrossValidation], n_train: int, points: list,
           glued: Mapping[str, float | str], replicates: Sequence = ()) -> dict:
    """What ``chapter.json`` keeps of RQ2 (``replicates``: the replicate-mean effects, :mod:`fercore.studies.rq2_replicates`)."""
    return {"changes": changes, "synthetic_only": [s.summary() for s in synthetic_only.values()], "cv": cv, "n_train": n_train,
            "gender": points, "glued": dict(glued), "replicates": list(replicates)}


def show_accuracy(chapter: Chapter, regime_accuracy: pd.DataFrame) -> str:
    """Accuracy per model and test set, one bar per training regime."""
    return chapter.figure(plots.grouped_bars(regime_accuracy, ylabel="accuracy"), "accuracy_by_regime",
                          "Accuracy per model and test set (x axis), one bar per training regime.")


def cross_validate_all(session: Study, names: Sequence[str], real_models: Mapping[str, Classifier], recipes: Mapping[str, Recipe],
                       train_faces: pd.DataFrame, *, k: int = 3, seed: int = 0, workers: int = 2, device: str = "auto",
                       progress: bool = True, replicates: int = 1) -> list[CrossValidation]:
    """:func:`cross_validate` of the synthetic-only regime for every model of ``names``, into the chapter's ``cv/<model>/``;
    ``replicates`` runs of it (seed + r; replicate r >= 1 in ``cv/<model>-rep<r>/``) pooled by :func:`pooled_cv`."""
    def one(name: str, r: int) -> CrossValidation:
        folder = session.chapter.path("cv", slug(name) if r == 0 else f"{slug(name)}-rep{r}")
        return cross_validate(session.specs[name], real_models[name], recipes[SYNTHETIC_ONLY], train_faces, folder, k=k, seed=seed + r,
                              workers=workers, device=device, progress=progress)

    return [pooled_cv([one(n, r) for r in range(max(1, replicates))]) for n in names]
