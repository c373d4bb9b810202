"""The calibration harness in CI: the chapters' tests keep their level and coverage at 2, 4 and 8
grids per class (ICC 0.2, 100 real faces per class, 1,000 simulated data sets each), other cells
with fewer; and the harness flags the procedure it replaced, so it can fail."""

from __future__ import annotations

import numpy as np
import pytest

from fercore.analysis.harness import MAX_FPR, MIN_COVERAGE, Design, calibrate, marginal

ACCEPTANCE = [Design(g, 0.2, 100) for g in (2, 4, 8)]
OTHER = [Design(g, icc, n) for g in (2, 4, 8) for icc, n in ((0.05, 100), (0.05, 300), (0.2, 300))]
CHAPTER_PROCEDURES = ["gap-cr2", "paired-cr2", "balanced-cr2", "factor-cr2", "null-excess-cr2", "bootstrap-widened"]


@pytest.mark.parametrize("procedure", CHAPTER_PROCEDURES)
def test_acceptance_cells_meet_the_bar(procedure):
    table = calibrate([procedure], ACCEPTANCE, 1000, seed=27)
    assert (table["reps"] >= 1000).all()
    assert (table["fpr"] <= MAX_FPR).all(), table[["grids", "fpr", "coverage"]]
    assert (table["coverage"] >= MIN_COVERAGE).all(), table[["grids", "fpr", "coverage"]]


def test_other_cells_stay_near_nominal():
    table = calibrate(["gap-cr2", "paired-cr2"], OTHER, 300, seed=27)
    # 300 repetitions: Monte-Carlo SE about 1.3 points at 5 %
    assert (table["fpr"] <= 0.09).all() and (table["coverage"] >= 0.90).all(), table


@pytest.mark.parametrize("procedure", ["gap-cr2", "null-excess-cr2"])
def test_one_grid_per_class_has_no_test_and_fails_the_bar(procedure):
    table = calibrate([procedure], [Design(1, 0.2, 100)], 100, seed=27)
    assert table.loc[0, "testable"] == 0.0 and not table.loc[0, "meets"]


def test_the_null_arm_simulated_has_the_synthetic_arms_recall():
    """The null grids' median logits give the synthetic grids' population recall under their own, weaker grid effect."""
    from fercore.analysis.harness import class_accuracies, logit_sd, marginal, matched_logits
    from scipy.special import expit

    target = marginal(class_accuracies(7), logit_sd(0.2))
    mu = matched_logits(target, logit_sd(0.05))
    assert np.allclose(marginal(expit(mu), logit_sd(0.05)), target, atol=1e-9)
    assert not np.allclose(expit(mu), class_accuracies(7), atol=1e-3)  # a real adjustment, not the identity


def test_the_harness_flags_the_old_wald_from_bootstrap_gap_test():
    old = calibrate(["gap-wald-bootstrap"], [Design(2, 0.2, 100)], 300, seed=27).iloc[0]
    assert not old["meets"]
    assert old["fpr"] > MAX_FPR or old["coverage"] < MIN_COVERAGE
    plain = calibrate(["bootstrap-percentile"], [Design(2, 0.2, 100)], 300, seed=27).iloc[0]
    assert plain["coverage"] < 0.85 and not plain["meets"]


def test_the_simulated_null_is_exact():
    """The real faces' probability equals the grids' mean recall (checked by brute force)."""
    rng = np.random.default_rng(0)
    mu = np.array([0.45, 0.8])
    u = rng.normal(0, 0.9, 400_000)
    brute = [np.mean(1 / (1 + np.exp(-(np.log(m / (1 - m)) + u)))) for m in mu]
    np.testing.assert_allclose(marginal(mu, 0.9), brute, atol=2e-3)


REPLICATE_CELLS = [Design(g, 0.2, 100) for g in (1, 2, 4, 8)]


@pytest.mark.parametrize("procedure", ["replicate-mean-r3", "replicate-mean-r5"])
def test_the_replicate_mean_change_keeps_level_and_coverage(procedure):
    """RQ2's effect of fine-tuning (mean over R replicates, between-replicate plus CR2 test variance) at 1-8 training
    grids per class: testable everywhere (the replicates give the variance) and within the bar."""
    table = calibrate([procedure], REPLICATE_CELLS, 1000, seed=27)
    assert (table["testable"] == 1.0).all()
    assert (table["fpr"] <= MAX_FPR).all() and (table["coverage"] >= MIN_COVERAGE).all(), table[["grids", "fpr", "coverage"]]


def test_the_harness_flags_one_checkpoint_read_as_the_effect_of_fine_tuning():
    table = calibrate(["single-checkpoint"], REPLICATE_CELLS[1:3], 1000, seed=27)
    assert (table["fpr"] > 0.1).all() and not table["meets"].any(), table[["grids", "fpr", "coverage"]]


KAPPA_CELLS = [Design(g, icc, 100, classes=8) for icc in (0.2, 0.4) for g in (2, 4, 8)]


def test_the_label_sheets_kappa_interval_covers_at_few_grids():
    """The prompt-person kappa's grid-bootstrap interval, widened for few grids, near nominal at 2-8 grids per emotion (8
    emotions; docs/calibration.md: 92.1-95.9 % at 4 and 8 grids, 90.3-93.3 % at 2, a little under the bar there, said
    in docs/label-sheet.md); one grid per emotion gives no interval; the plain percentile interval it replaced
    undercovers (74-76 % at 2 grids)."""
    table = calibrate(["kappa-bootstrap"], KAPPA_CELLS, 1000, seed=27)
    assert (table["testable"] == 1.0).all()
    assert (table.loc[table["grids"] >= 4, "coverage"] >= 0.91).all(), table[["grids", "icc", "coverage"]]
    assert (table.loc[table["grids"] == 2, "coverage"] >= 0.89).all(), table[["grids", "icc", "coverage"]]
    one = calibrate(["kappa-bootstrap"], [Design(1, 0.2, 100, classes=8)], 100, seed=27).iloc[0]
    assert one["testable"] == 0.0 and not one["meets"]
    plain = calibrate(["kappa-percentile"], KAPPA_CELLS[:1], 1000, seed=27).iloc[0]
    assert plain["coverage"] < 0.85 and not plain["meets"]


def test_the_kappa_of_the_simulation_is_the_population_kappa():
    """With uniform margins the simulated person's kappa converges to (m - 1/K) / (1 - 1/K); sklearn's kappa of the
    same faces agrees with the counts' kappa."""
    from sklearn.metrics import cohen_kappa_score

    from fercore.analysis import harness, kappa_from_counts

    counts, truth = harness.kappa_data(np.random.default_rng(1), Design(300, 0.2, 100, classes=8), 4)
    estimates = kappa_from_counts(counts.sum(2))
    assert np.all(np.abs(estimates - truth) < 0.02) and 0.7 < truth < 0.8, (estimates, truth)
    table = counts[0].sum(1).astype(int)  # prompt x person
    prompt = np.repeat(np.arange(8), table.sum(1))
    person = np.concatenate([np.repeat(np.arange(8), row) for row in table])
    assert kappa_from_counts(table) == pytest.approx(cohen_kappa_score(prompt, person))
