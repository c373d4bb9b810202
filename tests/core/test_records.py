"""The one helper that refuses to mix runs recorded with other options: it gives the same lines the
three call sites (training experiments, grid extraction, the notebook suite) wrote by hand."""

from __future__ import annotations

import pytest

from fercore.core.records import differences, refuse_changes

BEFORE = {"kind": "cv", "k": 5, "samples_sha256": "aa", "config": {"lr": 0.001, "epochs": 3, "arch": "b0"}}
NOW = {"kind": "cv", "k": 4, "samples_sha256": "bb", "config": {"lr": 0.01, "epochs": 3, "arch": "b2"}, "new": 1}


def test_experiment_lines_match_claim_out_dir():
    changed = sorted(set(BEFORE) | set(NOW), key=str)
    diffs = [f"{key}: {BEFORE.get(key)!r} -> {NOW.get(key)!r}" for key in changed if BEFORE.get(key) != NOW.get(key)]
    config_diffs = [f"{key}: {BEFORE['config'].get(key)!r} -> {value!r}" for key, value in NOW["config"].items()
                    if BEFORE.get("config", {}).get(key) != value]
    expected = [d for d in diffs if not d.startswith("config:")] + config_diffs
    assert differences(BEFORE, NOW, expand=("config",)) == expected
    assert expected[0] == "k: 5 -> 4" and expected[-1] == "arch: 'b0' -> 'b2'"


def test_grid_option_lines_match_check_options():
    before, now = {"size": 224, "margin": 0.1, "gone": 1}, {"size": 260, "margin": 0.1, "detector": "haar"}
    expected = [f"{k}: {before.get(k)!r} -> {v!r}" for k, v in now.items() if before.get(k) != v]
    assert differences(before, now, keys=now) == expected == ["size: 224 -> 260", "detector: None -> 'haar'"]


def test_suite_input_names_match_resume():
    before, now = {"data": "1", "weights": "2", "old": "3"}, {"data": "1", "weights": "9", "new": "4"}
    expected = [name for name in sorted(set(now) | set(before)) if now.get(name) != before.get(name)]
    assert differences(before, now, names_only=True) == expected == ["new", "old", "weights"]


def test_refuse_changes_raises_the_callers_error_and_passes_equal_records():
    refuse_changes(BEFORE, dict(BEFORE), lambda d: ValueError(d))
    with pytest.raises(FileExistsError, match=r"k: 5 -> 4; new: None -> 1"):
        refuse_changes(BEFORE, NOW, lambda d: FileExistsError("; ".join(d)), expand=("config",))
