"""Quality findings per factor: extraction outcomes by generator and template, layouts that are not
the one the prompt asked for."""

from __future__ import annotations

import pandas as pd
import pytest

from fercore import cli
from fercore import grids as G


def cells(source, generator, template, reasons, *, asked="6x6", layout="6x6", split="test"):
    return [{"source": source, "split": split, "emotion": "Anger", "gender": "female", "generator": generator, "template": template,
             "kept": not r, "reason": r, "layout": layout if not r.startswith("grid_failed") else "", "layout_method": "evidence",
             "layout_asked": asked} for r in reasons]


@pytest.fixture
def manifest():
    rows = (cells("a.png", "flux-dev", "movie", ["", "", "", "blurred"])
            + cells("b.png", "flux-dev", "emotion-first", ["", "", "duplicate of a.png r0c1", "no_face"])
            + cells("c.png", "flux-schnell", "movie", ["grid_failed: no face found in any of its 36 cells"])
            + cells("d.png", "flux-schnell", "emotion-first", ["", "", "", ""], layout="5x5 (expected 6x6)")
            + cells("e.png", "flux-schnell", "movie", ["", "blurred"], layout="rows 5,7,6"))
    return pd.DataFrame(rows)


def test_extraction_outcomes_by_generator_and_template(manifest):
    table = G.extraction_outcomes(manifest)
    assert list(table.columns) == ["factor", "level", "outcome", "cells", "share", "grids", "level_grids"]
    by = table.set_index(["factor", "level", "outcome"])
    assert by.loc[("generator", "flux-dev", "kept"), ["cells", "grids", "level_grids"]].tolist() == [5, 2, 2]
    assert by.loc[("generator", "flux-dev", "kept"), "share"] == pytest.approx(5 / 8)
    assert by.loc[("generator", "flux-dev", "duplicate"), "cells"] == 1 and by.loc[("generator", "flux-dev", "no_face"), "cells"] == 1
    assert by.loc[("generator", "flux-schnell", "grid_failed"), ["cells", "grids"]].tolist() == [1, 1]
    assert by.loc[("generator", "flux-schnell", "kept"), "cells"] == 5 and by.loc[("generator", "flux-schnell", "kept"), "level_grids"] == 3
    assert by.loc[("template", "movie", "blurred"), ["cells", "grids"]].tolist() == [2, 2]
    # every factor accounts for every manifest row, as the summary table does
    totals = G.summary_table(manifest.assign(kept=manifest.kept.astype(bool))).iloc[-1]  # the margin row
    for factor in ("generator", "template"):
        counted = table[table.factor == factor].groupby("outcome")["cells"].sum()
        assert counted.to_dict() == {k: v for k, v in totals.items() if v and k != "total"}
        assert table[table.factor == factor].groupby("level")["share"].sum().round(9).eq(1).all()


def test_a_factor_grids_csv_did_not_record_is_one_level(manifest):
    table = G.extraction_outcomes(manifest.drop(columns="template"), by=["template"])
    assert set(table.level) == {"(not recorded)"} and table.cells.sum() == len(manifest)


def test_layouts_that_disagree_with_the_prompt_per_generator(manifest):
    per = G.layout_disagreements(manifest).set_index("generator")
    assert per.loc["flux-dev", ["grids", "checked", "disagree"]].tolist() == [2, 2, 0]
    assert per.loc["flux-schnell", ["grids", "checked", "disagree"]].tolist() == [3, 2, 2]  # c.png was not extracted
    assert per.loc["flux-schnell", "share"] == 1.0
    assert per.loc["flux-schnell", "found instead"] == "6x6 -> 5x5: 1; 6x6 -> rows 5,7,6: 1"
    grids = G.layout_mismatches(manifest).set_index("source")
    assert grids.loc["d.png", "layout"] == "5x5" and not grids.loc["d.png", "agrees"] and grids.loc["a.png", "agrees"]
    assert pd.isna(grids.loc["c.png", "agrees"])
    by_template = G.layout_disagreements(manifest, by="template").set_index("template")
    assert by_template.loc["movie", "disagree"] == 1 and by_template.loc["emotion-first", "disagree"] == 1
    with pytest.raises(ValueError, match="run fercore extract again"):
        G.layout_mismatches(manifest.drop(columns="layout_asked"))


def test_findings_of_a_real_extraction(tmp_path, capsys):
    """On an extracted manifest: the grid whose grids.csv asked for 3x3 and was cut 2x2 is the one disagreement."""
    from test_manifest_columns import write_raw

    assert cli.main(["extract", str(write_raw(tmp_path / "raw")), str(tmp_path / "out"), "--layout", "2x2", "--detector", "none",
                     "-q"]) == 0
    assert "layout not as asked: 1 of 2 grids of generator flux-schnell (3x3 -> 2x2: 1)" in capsys.readouterr().out
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv", dtype=str, keep_default_na=False).assign(
        kept=lambda m: m.kept.eq("True"))
    per = G.layout_disagreements(manifest).set_index("generator")
    assert per.loc["flux-schnell", "disagree"] == 1 and per.loc["flux-dev", "disagree"] == 0
    assert per.loc["flux-schnell", "found instead"] == "3x3 -> 2x2: 1"
    outcomes = G.extraction_outcomes(manifest)
    assert outcomes.groupby("factor")["cells"].sum().tolist() == [16, 16]
