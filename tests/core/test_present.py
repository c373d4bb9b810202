"""How numbers read in the book: percentages, p-values, intervals, declared tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fercore.core import present


def test_number_formats():
    assert present.percent(0.5549) == "55.5" and present.percent(1.0) == "100.0" and present.percent(float("nan")) == ""
    assert present.points(0.225) == "+22.5" and present.points(-0.0104) == "-1.0"
    assert present.pvalue(3.039e-08) == "< 0.001" and present.pvalue(0.001) == "0.00100" and present.pvalue(0.5962) == "0.596"
    assert present.pvalue(0.0123456) == "0.0123" and present.pvalue(1.0) == "1.00" and present.pvalue(None) == ""
    assert present.number(0.47326) == "0.473" and present.number(96.0) == "96" and present.number(np.int64(200)) == "200"
    assert present.number(0.000123456) == "0.000123" and present.number(3e-8) == "3.00e-08" and present.number("B0") == "B0"
    assert "e" not in present.number(0.17183569) and present.number(12.345) == "12.3"
    assert present.interval(0.555, 0.49, 0.625) == "55.5 [49.0, 62.5]"
    assert present.interval(0.225, 0.116, 0.375, present.points) == "+22.5 [+11.6, +37.5]"
    assert present.interval(0.5, math.nan, 0.6) == "50.0"


def test_declared_table_reads_as_declared():
    frame = pd.DataFrame({"model": ["a", "b"], "set": ["real", "synthetic"], "accuracy": [0.555, 0.33], "low": [0.49, 0.2],
                          "high": [0.62, 0.4], "gap": [0.225, -0.01], "p": [3e-8, 0.5962], "T": [0.99914, 12.5],
                          "hidden": [1, 2]}).set_index(["model", "set"])
    present.declare(frame, percent=["accuracy"], ci={"accuracy": ("low", "high")}, points=["gap"], p=["p"],
                    show=["accuracy", "gap", "p", "T"], titles={"T": "temperature"})
    shown = present.present(frame)
    assert list(shown.columns) == ["model", "set", "accuracy (%) [95% CI]", "gap (pp)", "p", "temperature"]
    assert shown.iloc[0].tolist() == ["a", "real", "55.5 [49.0, 62.0]", "+22.5", "< 0.001", "0.999"]
    assert shown.iloc[1].tolist() == ["b", "synthetic", "33.0 [20.0, 40.0]", "-1.0", "0.596", "12.5"]
    table = present.markdown_table(shown)
    assert table.splitlines()[1] == "|---|---|---|---|---|---|" and "| a | real | 55.5 [49.0, 62.0] |" in table
    with pytest.raises(KeyError, match="no such columns"):
        present.declare(frame, percent=["accuracy", "typo"])


def test_undeclared_and_multiindex_tables():
    frame = pd.DataFrame({("m", "real"): [0.5, np.nan], ("m", "synthetic"): [0.25, 0.125]}, index=pd.Index(["Anger", "Fear"], name="emotion"))
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    shown = present.present(frame)
    assert list(shown.columns) == ["emotion", "m · real", "m · synthetic"]
    assert shown.iloc[1].tolist() == ["Fear", "", "0.125"]
    assert present.markdown_table(pd.DataFrame({"a|b": ["x|y"]})).splitlines()[2] == "| x\\|y |"
