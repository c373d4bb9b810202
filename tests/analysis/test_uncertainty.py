"""Clustered uncertainty: coverage by simulation, priors that do not move a balanced gap, and a
domain probe that cannot learn grids by heart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fercore.analysis.uncertainty import (
    grouped_domain_auc,
    sample_groups,
)


def test_grouped_probe_does_not_learn_grids_by_heart():
    """Both domains drawn from one distribution, but faces of a grid share an offset: a probe
    with ungrouped folds recognises held-out faces of grids it saw (AUC well above 0.5); with
    grouped folds it cannot, and its cluster-bootstrap interval holds 0.5."""
    rng = np.random.default_rng(2)
    dims, grids, size = 32, 16, 12
    feats, domains, groups = [], [], []
    for domain in ("real", "synthetic"):
        for g in range(grids):
            offset = rng.normal(0, 1.0, dims)
            feats.append(offset + rng.normal(0, 0.5, (size, dims)))
            domains += [domain] * size
            groups += [f"{domain}{g}"] * size
    feats, domains, groups = np.concatenate(feats), np.array(domains), np.array(groups)
    naive = grouped_domain_auc(feats, domains, None, folds=4, n_boot=200)
    grouped = grouped_domain_auc(feats, domains, groups, folds=4, n_boot=200)
    assert naive.auc > 0.75 and not naive.grouped, naive
    assert grouped.grouped and grouped.groups == 2 * grids
    assert abs(grouped.auc - 0.5) < 0.15 and grouped.low < 0.5 < grouped.high, grouped
    assert grouped.high - grouped.low > naive.high - naive.low


def test_a_separable_probe_has_auc_near_one():
    rng = np.random.default_rng(3)
    feats = np.r_[rng.normal(0, 1, (100, 8)), rng.normal(1.5, 1, (100, 8))]
    domains = np.array(["real"] * 100 + ["synthetic"] * 100)
    probe = grouped_domain_auc(feats, domains, np.repeat(np.arange(20), 10), folds=5, n_boot=200)
    assert probe.auc > 0.97 and probe.low > 0.9
    assert probe.auc == pytest.approx(roc_auc_score(domains == "synthetic", feats.sum(1)), abs=0.03)


def test_sample_groups_use_the_source_grid_and_else_the_face():
    table = pd.DataFrame({"path": ["a.png", "b.png", "c.png", "d.png"], "source": ["g1.png", "g1.png", None, ""]})
    assert sample_groups(table, prefix="s:").tolist() == ["s:g1.png", "s:g1.png", "s:c.png", "s:d.png"]
    assert sample_groups(table.drop(columns="source")).tolist() == ["a.png", "b.png", "c.png", "d.png"]
