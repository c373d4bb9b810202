"""The studies package: RQ1-RQ4 results as dataclasses, computed findings, test sets, regimes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fercore import studies
from fercore.core.labels import CLASSES
from fercore.core.present import present
from fercore.data import per_class_subset
from fercore.models import create_model, save_model
from fercore.studies import gender, regimes, rq1, rq2, rq3, rq4
from fercore.studies.scoring import SetScore


def preds_table(y_true, y_pred, logits=None, classes=CLASSES, **extra) -> pd.DataFrame:
    """A predictions table as ``predict`` writes it, from class indices (and optional logits)."""
    n = len(y_true)
    if logits is None:
        logits = np.full((n, len(CLASSES)), -2.0)
        logits[np.arange(n), y_pred] = 2.0
    allowed = np.array([c in classes for c in CLASSES])
    masked = np.where(allowed, logits, -np.inf)
    probs = np.exp(masked - masked.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    table = pd.DataFrame({"path": [f"{i}.png" for i in range(n)], "label": [CLASSES[i] for i in y_true],
                          "pred": [CLASSES[i] for i in probs.argmax(1)]})
    for i, c in enumerate(CLASSES):
        table[f"p_{c}"] = probs[:, i]
    for i, c in enumerate(CLASSES):
        table[f"logit_{c}"] = logits[:, i]
    return table.assign(**extra)


def test_per_class_subset_is_seeded_and_capped():
    samples = pd.DataFrame({"path": [f"{i}.png" for i in range(50)], "label": [i % 3 for i in range(50)]})
    small = per_class_subset(samples, 4, seed=1)
    assert small["label"].value_counts().to_dict() == {0: 4, 1: 4, 2: 4}
    assert small.equals(per_class_subset(samples, 4, seed=1)) and not small.equals(per_class_subset(samples, 4, seed=2))
    assert len(per_class_subset(samples, None)) == 50 and len(per_class_subset(samples, 100)) == 50
    with pytest.raises(ValueError, match="at least 1"):
        per_class_subset(samples, 0)


def score(preds: pd.DataFrame, test_set: str = "real", *, model: str = "m", regime: str = "trained on real",
          classes=CLASSES, metrics=None) -> SetScore:
    return SetScore(model, regime, test_set, list(classes), preds, metrics or {"macro avg": {"f1-score": 0.7}})


def test_domain_comparison_on_shared_classes_balanced_and_clustered():
    """FER2013-like real set (7 classes, imbalanced) against a synthetic set (8 classes, balanced,
    36 faces per grid): scored on the 7 shared classes with predictions restricted to them, by
    balanced accuracy; the synthetic interval resamples grids, so it is wider than a face-level one."""
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    seven = [c for c in CLASSES if c != "Contempt"]
    seven_idx = [CLASSES.index(c) for c in seven]
    y_real = rng.choice(seven_idx, 700, p=np.r_[0.4, [0.1] * 6])
    good = np.where(rng.random(700) < 0.8, y_real, 1)  # wrong answers say Contempt: outside the shared classes
    real_logits = np.full((700, 8), -2.0)
    real_logits[np.arange(700), good] = 2.0
    real_logits[np.arange(700), y_real] = np.maximum(real_logits[np.arange(700), y_real], -1.0)  # the true class comes next
    y_syn = np.repeat(np.arange(8), 72)
    grid_skill = np.repeat(rng.uniform(0.1, 0.9, 16), 36)  # each grid is easy or hard as a whole
    bad = np.where(rng.random(576) < grid_skill, y_syn, (y_syn + 1) % 8)
    syn = preds_table(y_syn, bad, source=[f"g{i // 36}.png" for i in range(576)])
    real = score(preds_table(y_real, good, logits=real_logits), "fer", classes=seven)
    row = rq1.compare_domains(real, score(syn, "synthetic"), arm="raw")
    assert row.classes == 7 and row.n_real == 700 and row.n_synthetic == 504 and row.groups_synthetic == 14
    # restricted to the 7 classes, the real set's "Contempt" answers become the best other class: all right here
    assert row.balanced_real == pytest.approx(1.0)
    kept = y_syn != 1
    restricted = np.where(bad[kept] == 1, -1, bad[kept])  # predictions restricted to the 7 classes (Contempt impossible)
    assert row.balanced_synthetic == pytest.approx(balanced_accuracy_score(y_syn[kept], np.where(restricted == -1, 0, restricted)), abs=0.02)
    naive = rq1.compare_domains(real, score(syn.drop(columns="source"), "synthetic"), arm="raw")
    assert (row.balanced_synthetic_high - row.balanced_synthetic_low) > 1.5 * (naive.balanced_synthetic_high - naive.balanced_synthetic_low)
    assert row.low < row.difference < row.high and row.p_value < 0.05
    table = rq1.comparison_table([row, naive])
    assert table.index.names == ["model", "real set", "synthetic faces"] and table["p"].iloc[0] == row.p_value
    shown = present(table)  # the page: ten columns fit the book's content column (the CSV keeps all 18)
    assert list(shown.columns) == ["model", "real set", "synthetic faces", "real (%)", "synthetic (%)",
                                   "real - synthetic (pp) [95% CI]", "p", "p (Holm)", "p TOST", "MDE (80% power) (pp)"]


def test_temperature_fitted_on_real_halves_and_transfers():
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.integers(0, 8, n)
    base = rng.normal(0, 1, (n, 8))
    base[np.arange(n), y] += 1.5  # a calibrated-ish score; scaled by 4 it is over-confident
    sets = {"real": score(preds_table(y, None, logits=4 * base)), "synthetic": score(preds_table(y, None, logits=4 * base), "synthetic")}
    rows = rq1.temperature_transfer(sets, fit_on="real")
    assert [r.test_set for r in rows] == ["real (held-out half)", "synthetic"] and {r.fitted_on for r in rows} == {"real"}
    assert rows[0].temperature > 2.5
    assert all(r.ece_after < r.ece_before and r.confidence_after < r.confidence_before for r in rows)


def test_temperature_respects_missing_classes():
    rng = np.random.default_rng(1)
    y = rng.choice([0, 2, 3, 4, 5, 6, 7], 300)  # FER2013: no Contempt
    logits = rng.normal(0, 1, (300, 8))
    logits[:, 1] = 50.0  # a huge Contempt logit must not matter
    seven = [c for c in CLASSES if c != "Contempt"]
    rows = rq1.temperature_transfer({"fer": score(preds_table(y, None, logits=logits, classes=seven), "fer", classes=seven)}, fit_on="fer")
    assert np.isfinite(rq1.calibration_table(rows).to_numpy(dtype=float)).all()


def test_regime_change_counts_discordant_pairs():
    y = np.array([0, 1, 2, 3, 4, 5, 6, 7] * 5)
    a = y.copy()
    a[:10] = (y[:10] + 1) % 8  # A wrong on the first 10
    b = y.copy()
    b[30:] = (y[30:] + 1) % 8  # B wrong on the last 10
    before = {("m", "real"): score(preds_table(y, a), metrics={"accuracy": 0.75, "macro avg": {"f1-score": 0.7}})}
    after = {("m", "real"): score(preds_table(y, b), regime="fine-tuned on synthetic", metrics={"accuracy": 0.75, "macro avg": {"f1-score": 0.7}})}
    (row,) = rq2.changes(before, after)
    assert row.only_before_right == 10 and row.only_after_right == 10 and row.before == "trained on real"
    assert row.accuracy_before == pytest.approx(0.75) and row.p_value == pytest.approx(1.0)
    from sklearn.metrics import balanced_accuracy_score
    assert row.change == pytest.approx(balanced_accuracy_score(y, b) - balanced_accuracy_score(y, a))
    assert row.change_low < row.change < row.change_high and row.change_p > 0.5  # paired on the same 40 faces
    assert row.mde > row.change_high - row.change  # the MDE at 80 % power exceeds the interval's half-width
    assert rq2.accuracy_frame(before, after).loc["m · real"].to_dict() == {"trained on real": 0.75, "fine-tuned on synthetic": 0.75}
    shuffled = {("m", "real"): score(preds_table(y, b).iloc[::-1].reset_index(drop=True))}
    with pytest.raises(ValueError, match="different images"):
        rq2.changes(before, shuffled)


def test_rq1_findings_state_the_numbers():
    y = np.array([0, 2, 3, 4, 5, 6, 7, 0] * 25)
    right = y.copy()
    wrong = np.where(np.arange(200) % 2 == 0, y, (y + 1) % 8)
    metrics = {"accuracy": 1.0, "n": 200, "balanced_accuracy": 1.0, "macro avg": {"f1-score": 1.0},
               "bootstrap_95ci": {"accuracy": {"low": 0.98, "high": 1.0}}, "calibration": {"ece": 0.01},
               "confidence": {"correct": {"mean": 0.9}, "incorrect": {"mean": float("nan")}},
               **{c: {"recall": 1.0 if c != "Anger" else 0.4, "support": 25} for c in CLASSES}}
    scores = {("m", "fer"): score(preds_table(y, right), "fer", metrics=metrics),
              ("m", "synthetic"): score(preds_table(y, wrong), "synthetic", metrics={**metrics, "accuracy": 0.5}),
              ("m", "synthetic matched to fer"): score(preds_table(y, right), "synthetic matched to fer", metrics=metrics)}
    comparisons = rq1.domain_comparisons(scores, ["fer"])
    assert [c.arm for c in comparisons] == ["raw", "matched"]
    calibration = [rq1.CalibrationTransfer("m", "fer", "synthetic", 1.5, 0.2, 0.1, 0.9, 0.8, 0.5)]
    contrasts = rq1.arm_contrasts(scores, ["fer"])
    findings = rq1.findings(scores, comparisons, calibration, contrasts)
    text = " ".join(findings)
    # every sentence about a comparison comes from the one wording function
    assert "m, fer against synthetic faces as they come: balanced-accuracy gap (real - synthetic, 7 shared classes, Holm over 2 primary " \
           "comparisons) +50.0 points" in text and "the difference is significant and positive" in text
    assert "matched to fer's format: balanced-accuracy gap" in text and "+0.0 points" in text and "equivalent within ±5.0 points" in text
    assert "paired contrast raw gap - matched gap (same synthetic faces) +50.0 points" in text
    assert "survives" not in text and "removes" not in text and "no difference" not in text
    assert "Design of m against fer" in text
    assert "lowest Anger (40.0%)" in text and "fitted on fer (T = 1.50) moves the ECE on synthetic from 0.200" in text
    values = rq1.glue_values(scores, comparisons, contrasts)
    assert values["rq1_m_fer_gap_raw"] == pytest.approx(50.0) and values["rq1_m_fer_gap_matched"] == pytest.approx(0.0)
    assert values["rq1_largest_gap"] == "m on fer" and values["rq1_m_synthetic_accuracy"] == 0.5
    assert values["rq1_significant"] == 1.0 and values["rq1_equivalent"] == 1.0 and values["rq1_contrasts_significant"] == 1.0
    assert values["rq1_best_synthetic_model"] == "m" and values["rq1_primary"] == rq1.PRIMARY
    assert comparisons[0].p_holm == pytest.approx(min(1.0, 2 * comparisons[0].p_value))


def test_rq1_gap_with_one_grid_per_class_is_descriptive_only():
    y = np.repeat(np.arange(8), 20)
    synthetic = score(preds_table(y, y, source=[f"g{c}.png" for c in y]), "synthetic")  # one grid per class
    (row,) = rq1.domain_comparisons({("m", "fer"): score(preds_table(y, y), "fer"), ("m", "synthetic"): synthetic}, ["fer"])
    assert row.min_grids == 1 and np.isnan(row.p_value) and np.isnan(row.low) and np.isnan(row.mde)
    text = " ".join(rq1.findings({("m", "fer"): score(preds_table(y, y), "fer",
                                                       metrics={"macro avg": {"f1-score": 1.0}, **{c: {"recall": 1.0, "support": 20} for c in CLASSES}}),
                                  ("m", "synthetic"): score(synthetic.preds, "synthetic",
                                                            metrics={"macro avg": {"f1-score": 1.0}, **{c: {"recall": 1.0, "support": 20} for c in CLASSES}})},
                                 [row], []))
    assert "descriptive only" in text and "one synthetic test grid" in text and "significant" not in text


def test_rq2_gender_and_rq4_findings_state_the_numbers():
    change = rq2.ModelChange("B0", "fer", "trained on real", "fine-tuned on synthetic", 100, 0.6, 0.7, 0.5, 0.6, 3, 23, 0.001,
                             0.1, 0.04, 0.16, 0.002, 0.9)
    cv = rq2.CrossValidation("B0", 3, "source", (), 0.55, 0.05, 0.5, 0.04)
    text = " ".join(rq2.findings([change], {}, [cv], 500))
    assert "on fer (accuracy 60.0% → 70.0%; 23 images only the fine-tuned model gets right, 3 only the original, a descriptive check" in text
    assert "change of balanced accuracy (after - before, same faces) +10.0 points (95 % interval +4.0 to +16.0, p = 0.002)" in text
    assert "significant and positive" in text and "500 synthetic faces" in text
    assert "55.0% ± 5.0% accuracy over 3 folds grouped by source" in text
    assert rq2.glue_values([change], {}, [cv])["rq2_significant_changes"] == 1.0
    points = [gender.GenderPoint("female", p, n, t, 10, acc, acc) for p, n, t, acc in
              [(0, 100, "female", 0.7), (0, 100, "male", 0.4), (100, 200, "female", 0.7), (100, 200, "male", 0.65)]]
    text = " ".join(gender.findings(points))
    assert "70.0% on female, 40.0% on male" in text and "with 100% (200 faces) the male accuracy is 65.0%" in text
    centroids = (rq4.CentroidDistance("Anger", 1.0, 1.0, 1.2, 5, 5, 2),
                 rq4.CentroidDistance("Fear", 2.0, 4.0, 2.1, 5, 5, 2), rq4.CentroidDistance("Joy", 3.0, np.nan, 3.0, 5, 5, 1))

    def gap(regime, arm, auc, p_probe, mmd_p):
        return rq4.DomainGap("B0", regime, "fer", arm, 10, 10, 2, 14, auc, 0.5, 0.6, 0.4, 0.62, p_probe, 5, 0.3, -0.01, 0.02, mmd_p,
                             1 / 8192, centroids, 1.4)

    gaps = [gap("trained on real", "raw", 0.99, 0.001, 0.002), gap("trained on real", "matched", 0.6, 0.2, 0.2),
            gap("fine-tuned on synthetic", "raw", 0.55, 0.4, 0.4)]
    text = " ".join(rq4.findings(gaps))
    assert ("B0, trained on real, fer against synthetic faces as they come: domain probe AUC above its grid-swap null median "
            "+0.490 AUC (observed minus the grid-swap null's central 95 %: +0.370 to +0.590, p = 0.001); the difference is "
            "significant and positive") in text
    assert "AUC 0.990, null 95th percentile 0.600; 2 grids in 14 class-balanced pairs; smallest attainable p 0.00012" in text
    assert "95 % interval" not in text  # RQ4 has null bands and descriptive distances, no confidence interval
    assert "matched to its format: domain probe AUC above its grid-swap null median +0.100 AUC" in text and "not detectable at this design" in text
    assert "MMD² above its grid-swap null (the midpoint of its central 95 %)" in text and "survive" not in text and "separat" not in text
    assert ("Fear: squared centroid distance, bias-corrected +4.00 squared SD units, descriptive only (no valid test or interval "
            "at this design). 2 grids; centroid distances are descriptive point estimates: their grid-bootstrap interval covered "
            "the true value in only 48-91 % of simulated data sets at 2-8 grids per class") in text
    centroid_lines = [line for line in rq4.findings(gaps) if "centroid" in line]
    assert centroid_lines and not any("interval +" in line or "interval -" in line for line in centroid_lines)
    assert "Joy with one grid: the centroid distance is the raw one" in text
    assert "almost" not in text and "hardly" not in text  # no qualitative cut-offs
    values = rq4.glue_values(gaps)
    assert values["rq4_lowest_auc_model"] == "B0, fine-tuned on synthetic, fer" and values["rq4_highest_auc"] == 0.99
    assert values["rq4_b0_trained_on_real_fer_auc_matched"] == 0.6 and values["rq4_matched_highest_auc"] == 0.6
    assert values["rq4_min_p"] == 1 / 8192 and values["rq4_b0_trained_on_real_fer_auc_p_raw"] == 0.001


def test_domain_gap_separates_shifted_clouds_only():
    """Two grids per class of 30 faces: a shifted synthetic cloud is told apart (probe above its null,
    MMD p at the design's floor); the same distribution with grid offsets is not; classes only one side
    holds are left out and the sample is class-balanced."""
    rng = np.random.default_rng(0)
    rows = [{"domain": "real", "emotion": e, "path": f"r{e}{i}.png"} for e in ("Anger", "Happiness") for i in range(80)]
    rows += [{"domain": "synthetic", "emotion": e, "path": f"s{e}{g}{i}.png", "source": f"{e}-{g}"}
             for e in ("Anger", "Happiness") for g in range(2) for i in range(30)]
    rows += [{"domain": "real", "emotion": "Fear", "path": f"f{i}.png"} for i in range(20)]
    table = pd.DataFrame(rows)
    synthetic = (table["domain"] == "synthetic").to_numpy()
    offsets = {s: rng.normal(0, 0.4, 16) for s in table["source"].dropna().unique()}
    noise = rng.normal(0, 1, (len(table), 16))
    same = noise + np.stack([offsets.get(s, np.zeros(16)) if isinstance(s, str) else np.zeros(16) for s in table["source"]])
    shifted = same + 1.5 * synthetic[:, None]
    gap = rq4.domain_gap(shifted, table, model="m", regime="r", real_set="fer", permutations=200)
    assert gap.auc > 0.95 and gap.auc_p == pytest.approx(gap.min_p) and gap.mmd_p == pytest.approx(gap.min_p) == 1 / 8
    assert gap.n_real == gap.n_synthetic == 120 and gap.pairs == 4 and gap.groups_synthetic == 4
    assert {c.emotion for c in gap.centroids} == {"Anger", "Happiness"} and all(c.grids == 2 for c in gap.centroids)
    assert not any(hasattr(c, "low") for c in gap.centroids)  # descriptive: no interval is kept, shown or glued
    centroid_line = next(line for line in rq4.gap_findings(gap) if "centroid distance" in line)
    assert "descriptive only" in centroid_line and "48-91 %" in centroid_line and "95 % interval" not in centroid_line
    calm = rq4.domain_gap(same, table, model="m", regime="s", real_set="fer", permutations=200)
    assert calm.auc_p > 0.05 and calm.mmd_p > 0.05 and calm.auc < gap.auc
    shown = rq4.gap_table([gap, calm])
    assert shown.loc[("m", "r", "fer", "raw"), "domain AUC"] > shown.loc[("m", "s", "fer", "raw"), "domain AUC"]
    assert rq4.centroid_table([gap, calm]).shape == (2, 2)
    assert np.isnan(gap.mmd_mde) and "MDE not defined: the 4 grid pairs allow no p below 0.125" in gap.mde_note  # 1/8 > alpha
    assert np.isnan(shown.loc[("m", "r", "fer", "raw"), "MMD MDE (face SDs)"])
    assert "MDE not defined" in next(line for line in rq4.gap_findings(gap) if "MMD²" in line)
    assert len(present(shown).columns) == 10  # model, regime, real set, arm, the grids used and five results: the page holds 10 at most
    design = present(rq4.design_table([gap, calm]))
    assert list(design.columns)[4:] == ["n real", "n synthetic", "grids", "grid pairs", "min. p", "MDE (face SDs)"]


def test_domain_gap_states_the_mmd_mde_where_the_design_reaches_alpha():
    """Two grids of 20 faces in each of 4 classes (8 pairs, smallest p 1/128): the MDE is defined, matches
    domain_power for the same pairs, and the table and the MMD finding show it."""
    rng = np.random.default_rng(1)
    emotions = ("Anger", "Fear", "Happiness", "Sadness")
    rows = [{"domain": "real", "emotion": e, "path": f"r{e}{i}.png"} for e in emotions for i in range(40)]
    rows += [{"domain": "synthetic", "emotion": e, "path": f"s{e}{g}{i}.png", "source": f"{e}-{g}"}
             for e in emotions for g in range(2) for i in range(20)]
    table = pd.DataFrame(rows)
    gap = rq4.domain_gap(rng.normal(size=(len(table), 8)), table, model="m", regime="r", real_set="fer", permutations=100)
    expected = rq4.domain_power.mmd_mde([20] * 8, [0, 0, 1, 1, 2, 2, 3, 3])
    assert gap.pairs == 8 and gap.mmd_mde == expected.mde and 0.5 < gap.mmd_mde < 2.0
    assert f"MDE: a shift of the synthetic faces by {expected.mde:.2f} face SDs" in gap.mde_note
    shown = rq4.gap_table([gap])
    assert shown.loc[("m", "r", "fer", "raw"), "MMD MDE (face SDs)"] == pytest.approx(expected.mde)
    assert f"by {expected.mde:.2f} face SDs" in next(line for line in rq4.gap_findings(gap) if "MMD²" in line)


def test_face_table_reads_manifest_splits(tmp_path):
    (tmp_path / "train" / "anger").mkdir(parents=True)
    pd.DataFrame({"path": ["train/anger/a.png", "test/anger/b.png", "train/anger/c.png"], "split": ["train", "test", "train"],
                  "emotion": ["Anger"] * 3, "gender": ["Female", "male", "male"], "kept": [True, True, False]}
                 ).to_csv(tmp_path / "manifest.csv", index=False)
    train = studies.data.face_table(tmp_path, "train")
    assert len(train) == 1 and train["gender"].iloc[0] == "female" and train["path"].iloc[0] == str(tmp_path / "train/anger/a.png")
    with pytest.raises(ValueError, match="no kept faces in split 'val'"):
        studies.data.face_table(tmp_path, "val")


def test_test_sets_label_domains(tiny_dataset):
    sets = studies.data.test_sets({"tiny": tiny_dataset}, tiny_dataset, max_per_class=1)
    assert list(sets) == ["tiny", "synthetic"]
    assert set(sets["tiny"]["domain"]) == {"real"} and set(sets["synthetic"]["domain"]) == {"synthetic"}
    assert len(sets["tiny"]) == 3 and studies.data.class_table(sets).loc["Anger"].tolist() == [1, 1]
    assert studies.data.real_names(sets) == ["tiny"]
    paired = studies.data.domain_pair(sets, "tiny")
    assert len(paired) == 6 and paired["domain"].value_counts().to_dict() == {"real": 3, "synthetic": 3}


def test_model_specs_from_the_models_parameter_or_the_shorthand(tmp_path):
    specs = regimes.model_specs({"B0": {"weights": "w0.pt", "arch": "b0", "image_size": 224, "trust_pickle": True,
                                        "backbone": "vgg.pt"}, "B2": {"weights": "w2.pt", "arch": "b2"}})
    assert list(specs) == ["B0", "B2"] and specs["B0"].backbone == "vgg.pt" and specs["B2"].image_size is None
    assert regimes.weight_paths(specs) == {"models.B0.weights": "w0.pt", "models.B2.weights": "w2.pt", "models.B0.backbone": "vgg.pt"}
    assert list(regimes.model_specs(None, weights="x/enet.pt", arch="b0")) == ["b0"]
    with pytest.raises(ValueError, match="unknown keys \\['weigths'\\]"):
        regimes.model_specs({"B0": {"weigths": "w0.pt"}})
    with pytest.raises(ValueError, match="needs weights"):
        regimes.model_specs({"B0": {"arch": "b0"}})
    resolved = regimes.with_paths(specs, {"models.B0.weights": "/abs/w0.pt"})
    assert resolved["B0"].weights == "/abs/w0.pt" and resolved["B2"].weights == "w2.pt"
    assert regimes.regime_dir(tmp_path, "B0", regimes.SYNTHETIC_ONLY) == tmp_path / "models" / "b0" / "trained_on_synthetic_only"


def test_regime_recipes(tmp_path):
    net = create_model("resnet10t")
    save_model(tmp_path / "real.pt", net, arch="resnet10t", image_size=48)
    spec = regimes.ModelSpec("r", str(tmp_path / "real.pt"), backbone=None)
    real = spec.load()
    recipe = regimes.Recipe(6, 2, 1e-4, 1e-3)
    config = regimes.train_config(spec, real, regimes.FINETUNED, recipe)
    assert [(s.epochs, s.trainable, s.lr) for s in config.stages] == [(2, "head", 1e-3), (4, "all", 1e-4)]
    assert config.optimizer == "sam" and config.total_epochs == 6 and config.head == "load" and config.weights == spec.weights
    assert config.arch == "resnet10t" and config.image_size == 48
    scratch = regimes.train_config(spec, real, regimes.SYNTHETIC_ONLY, regimes.Recipe(3, lr=1e-3))
    assert scratch.weights is None and scratch.stages == [] and scratch.lr == 1e-3
    with pytest.raises(ValueError, match="head_epochs"):
        regimes.Recipe(2, 3).stages()
    with pytest.raises(ValueError, match="not trained in a run"):
        regimes.train_config(spec, real, regimes.REAL, recipe)
    found, missing = regimes.load_regimes(spec, tmp_path / "run")
    assert list(found) == [regimes.REAL] and missing == [regimes.FINETUNED, regimes.SYNTHETIC_ONLY]


def region_table(rng: np.random.Generator, grids: int, *, mouth_gap: float = 0.2, faces: int = 24) -> pd.DataFrame:
    """A cam_report-like table: real faces (own groups) and synthetic faces in ``grids`` grids per
    emotion, for Happiness and Sadness; synthetic faces put ``mouth_gap`` more share on the mouth."""
    from fercore.faces.regions import REGIONS

    rows = []
    for emotion in ("Happiness", "Sadness"):
        for domain in ("real", "synthetic"):
            for i in range(faces):
                share = rng.dirichlet(np.ones(len(REGIONS)) * 4)
                if domain == "synthetic" and emotion == "Happiness":
                    share = share * (1 - mouth_gap)
                    share[REGIONS.index("mouth")] += mouth_gap
                group = f"{domain}-{emotion}-{i if domain == 'real' else i % grids}"
                rows.append({"path": f"{group}-{i}.png", "domain": domain, "emotion": emotion, "group": group, "excluded": "",
                             "correct": i % 2 == 0,
                             **dict(zip(REGIONS, share, strict=True))})
    rows.append({"path": "x.png", "domain": "real", "emotion": "Happiness", "group": "x", "excluded": "no landmarks", "correct": False,
                 **{r: np.nan for r in REGIONS}})
    return pd.DataFrame(rows)


def test_rq3_compares_regions_per_emotion_at_the_grid_level():
    """Per emotion and region: the real mean minus the mean of grid means; Welch's t on cluster means
    (each real face its own, Hsu's df: grids - 1) at every grid count from two, none with one grid
    (descriptive); Holm over every tested (emotion, region) pair; emotions with too few faces are
    listed, untested; excluded faces stay out; shares per unit area beside the shares."""
    from scipy import stats

    from fercore.faces.regions import REGIONS

    rng = np.random.default_rng(0)
    many = rq3.compare_emotions(region_table(rng, grids=6), real="real", emotions=["Happiness", "Sadness", "Fear"])
    assert len(many) == 3 * len(REGIONS)
    tested = many[many["p_value"].notna()]
    assert len(tested) == 2 * len(REGIONS) and set(tested["test"]) == {rq3.GRID_LEVEL} and (tested["grids"] == 6).all()
    assert (tested["n_real"] == 24).all() and (tested["df"] <= 5).all()  # the face without landmarks is left out
    assert set(many.loc[many["emotion"] == "Fear", "test"]) == {rq3.TOO_FEW}
    mouth = tested.set_index(["emotion", "region"]).loc[("Happiness", "mouth")]
    assert mouth["difference"] == pytest.approx(mouth["mean_real"] - mouth["mean_synthetic"]) and mouth["difference"] < -0.15
    assert mouth["low"] < mouth["difference"] < mouth["high"] < 0 and mouth["p_holm"] < 0.05 and 0 < mouth["mde"] < 0.15
    sadness = tested[tested["emotion"] == "Sadness"]
    assert (sadness["p_holm"] > 0.05).all()  # no planted difference
    assert tested["p_holm"].min() == pytest.approx(min(1.0, len(tested) * tested["p_value"].min()))  # Holm's first step
    table = region_table(np.random.default_rng(1), grids=2)
    used = table[(table["emotion"] == "Happiness") & (table["excluded"] == "")]
    real, synthetic = used[used["domain"] == "real"], used[used["domain"] == "synthetic"]
    grid_means = synthetic.groupby("group")["mouth"].mean()
    two = rq3.compare_emotions(table, real="real", emotions=["Happiness"]).set_index("region").loc["mouth"]
    welch = stats.ttest_ind(real["mouth"], grid_means, equal_var=False)
    t = (real["mouth"].mean() - grid_means.mean()) / np.sqrt(real["mouth"].var() / len(real) + grid_means.var() / 2)
    assert two["test"] == rq3.GRID_LEVEL and two["df"] == 1.0 and welch.df >= 1
    assert two["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), two["df"]))
    assert two["mean_synthetic"] == pytest.approx(grid_means.mean())
    one = rq3.compare_emotions(region_table(rng, grids=1), real="real", emotions=["Happiness"])
    assert set(one["test"]) == {rq3.ONE_GRID} and one["p_value"].isna().all() and one["difference"].notna().all()
    areas = region_table(rng, grids=3).assign(**{f"area_{r}": 1 / len(REGIONS) for r in REGIONS})
    dense = rq3.compare_emotions(areas, real="real", emotions=["Happiness"]).set_index("region")
    assert dense["density_real"].to_numpy() == pytest.approx(len(REGIONS) * dense["mean_real"].to_numpy())


def test_rq3_findings_word_the_largest_difference_and_the_arm_contrast():
    from fercore.explain.cam import CamLayer, CamReport

    def made(arm: str, regime: str = "trained on real", planted: float = 0.2, grids: int = 6) -> rq3.RegionStudy:
        table = region_table(np.random.default_rng(2), grids=grids, mouth_gap=planted)
        layer = CamLayer("layer1", "layercam", 16, 4.0)
        report = CamReport(table, CamLayer("layer4", "gradcam", 2, 32.0), layer, True, 6.0, 64, {}, [])
        tests = rq3.compare_emotions(table, real="real", emotions=["Happiness", "Sadness"])
        return rq3.RegionStudy("B0", regime, "fer", arm, report, tests)

    raw, matched, calm = made("raw"), made("matched", planted=0.0), made("matched", "x", planted=0.0)
    text = " ".join(rq3.findings([raw]))
    assert "B0, trained on real, fer against synthetic faces as they come, mouth in Happiness: region share (real - synthetic, Holm p)" in text
    assert "(Holm-family simultaneous 95 % interval, Bonferroni level alpha / 18 " in text and "(95 % interval" not in text
    assert "the difference is significant and negative" in text and "of 18 (emotion, region) differences have Holm p" in text
    assert "test: Welch t on grid means, 6 grids" in text and "survive" not in text
    (line,) = rq3.contrasts([raw, matched, calm])  # "x" has no raw arm: no contrast
    assert line.startswith("B0, trained on real, fer, mouth in Happiness: change of the difference from matching")
    assert "significant and negative" in line  # matching moved the synthetic mouth share back (paired over the 6 grids)
    single = " ".join(rq3.findings([made("raw", grids=1)]))
    assert "Happiness, Sadness have one synthetic grid" in single and "no per-emotion test is possible" in single
    assert raw.accuracy["synthetic"] == 0.5 and raw.figures == []
    values = rq3.glue_values([raw, matched, calm])
    assert values["rq3_studies_raw"] == 1.0 and values["rq3_studies_matched"] == 2.0
    assert values["rq3_with_significant_regions_matched"] == 0.0
    assert values["rq3_landmark_rate_fer_raw_real"] == pytest.approx(48 / 49)
    summary = rq3.summary_table([raw, calm])
    assert summary.index.names == ["model", "regime", "real set", "synthetic faces"] and summary["tests"].tolist() == [18, 18]
    assert summary["grids"].tolist() == ["test: Happiness 6, Sadness 6"] * 2 and summary["icc"].str.contains("pooled over 18 (emotion, region) pairs", regex=False).all()
    assert "assumed" in rq3.share_icc(made("raw", grids=1).report.table).text()
    significant = rq3.significant_table([raw])
    assert ("B0", "trained on real", "fer, as they come, test grids", "Happiness", "mouth") in significant.index


def test_rq1_chapter_tables_hold_design_mde_holm_and_the_paired_contrast(tmp_path):
    """Two grids per class (testable), a matched arm: the three tables are written with the new columns,
    every comparison has an MDE, and the ECE of the matched arm has an interval."""
    from fercore.book import Chapter

    rng = np.random.default_rng(5)
    seven = [c for c in CLASSES if c != "Contempt"]
    idx = np.array([CLASSES.index(c) for c in seven])
    y_real = np.repeat(idx, 60)
    real_pred = np.where(rng.random(len(y_real)) < 0.8, y_real, idx[(np.searchsorted(idx, y_real) + 1) % 7])
    y_syn = np.repeat(idx, 40)
    source = [f"g{i // 20}.png" for i in range(len(y_syn))]  # 2 grids of 20 faces per class
    skill = np.repeat(rng.uniform(0.3, 0.9, 14), 20)
    raw_pred = np.where(rng.random(len(y_syn)) < skill, y_syn, idx[(np.searchsorted(idx, y_syn) + 1) % 7])
    matched_pred = np.where(rng.random(len(y_syn)) < 0.1, idx[(np.searchsorted(idx, y_syn) + 2) % 7], raw_pred)
    scores = {("m", "fer"): score(preds_table(y_real, real_pred, classes=seven), "fer", classes=seven),
              ("m", "synthetic"): score(preds_table(y_syn, raw_pred, source=source), "synthetic"),
              ("m", "synthetic matched to fer"): score(preds_table(y_syn, matched_pred, source=source), "synthetic matched to fer")}
    chapter = Chapter(tmp_path, "rq1", show=False)
    comparisons, contrasts = rq1.show_comparisons(chapter, scores, ["fer"], margin=5.0)
    design = pd.read_csv(tmp_path / "rq1" / "tables" / "design.csv")
    assert design["grids per class (min)"].tolist() == [2, 2] and (design["MDE (80% power)"] > 0).all()
    gaps = pd.read_csv(tmp_path / "rq1" / "tables" / "real_vs_synthetic.csv")
    assert {"p (Holm)", "p equivalence (TOST)", "MDE (80% power)", "df"} <= set(gaps.columns)
    assert (gaps["p (Holm)"] >= gaps["p"]).all() and (gaps["95% low"] < gaps["real - synthetic"]).all()
    (contrast,) = contrasts
    assert contrast.contrast == pytest.approx(comparisons[0].difference - comparisons[1].difference)
    assert contrast.low < contrast.contrast < contrast.high
    assert (tmp_path / "rq1" / "tables" / "raw_minus_matched.csv").exists()
    rows = rq1.calibration_transfers(scores, ["fer"])
    matched = [r for r in rows if r.test_set == "synthetic matched to fer"]
    assert matched and matched[0].ece_before_low <= matched[0].ece_before <= matched[0].ece_before_high
