"""RQ3's generator facet: region shares of the real faces and of each generator's synthetic faces, raw arm only."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fercore.book import Chapter
from fercore.faces import REGIONS
from fercore.studies import rq3


def region_study(arm: str, generators: list[str]) -> rq3.RegionStudy:
    rng = np.random.default_rng(0)
    n_real, n_syn = 6, 4 * len(generators)
    shares = rng.dirichlet(np.ones(len(REGIONS)), n_real + n_syn)
    shares[n_real:, REGIONS.index("mouth")] = 0.0  # a planted difference: the synthetic faces never look at the mouth
    used = pd.DataFrame(shares, columns=list(REGIONS)).assign(
        domain=["fer"] * n_real + ["synthetic"] * n_syn, excluded="",
        generator=[np.nan] * n_real + [g for g in generators for _ in range(4)])
    used.loc[n_real, REGIONS[0]] = 1.0  # only generator 0's first face changes: the two generators differ
    return rq3.RegionStudy("B0", "trained on real", "fer", arm, SimpleNamespace(used=used), pd.DataFrame(), real_domain="fer")


def test_regions_split_by_generator_on_the_raw_arm(tmp_path):
    table = rq3.generator_table([region_study("raw", ["flux-dev", "sdxl"]), region_study("matched", ["flux-dev", "sdxl"])])
    assert list(table.index) == ["B0 · trained on real · fer (real)", "B0 · trained on real · synthetic, flux-dev",
                                 "B0 · trained on real · synthetic, sdxl"]  # the matched arm is left out
    assert (table.loc[table.index.str.contains("synthetic"), "mouth"] == 0).all() and table.iloc[0]["mouth"] > 0
    assert table.iloc[1]["eyes"] != pytest.approx(table.iloc[2]["eyes"])
    chapter = Chapter(tmp_path, "rq3", show=False)
    assert rq3.show_generator_facet(chapter, [region_study("raw", ["flux-dev"])]) is None  # one generator: one line
    assert rq3.show_generator_facet(chapter, [region_study("raw", ["a", "b"])]) is not None
    assert (tmp_path / "rq3" / "tables" / "regions_by_generator.csv").is_file()
