"""RQ4 beside its null arm, and on the faces whose label a person confirmed: tables, findings and what the chapter shows.

The null arm is real faces no evaluated model trained or selected on, sent down the synthetic faces' path (grids in the
synthetic layout, extracted, matched in the matched arm; :mod:`fercore.studies.grid_sets`). The real-vs-null gap is what
that path alone gives the embeddings. The synthetic effect is the **excess over the null**, tested directly: a probe and
an MMD telling synthetic from null faces, with whole synthetic grids paired with whole null grids and the pairs' labels
swapped (:func:`fercore.studies.rq4.excess_test`); beside it, descriptively, AUC(real, synthetic) - AUC(real, null).
The computations live in :mod:`fercore.studies.rq4` (:func:`~fercore.studies.rq4.null_gap`,
:func:`~fercore.studies.rq4.confirmed_gap`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fercore.analysis import Comparison, finding
from fercore.book import Chapter
from fercore.core.present import declare
from fercore.studies.common import ALPHA, frame
from fercore.studies.grid_sets import NullFaces, null_line
from fercore.studies.labelcheck import LabelCheck
from fercore.studies.rq4 import NULL_BAND, RAW, DomainGap, NullGap

KEYS = ["model", "regime", "real_set", "arm"]
NULL_TITLES = {"model": "model", "regime": "regime", "real_set": "real set", "arm": "synthetic faces", "grid_set": "synthetic grids",
               "auc_synthetic": "AUC real-synthetic", "auc_null": "AUC real-null", "auc_null_p": "probe p real-null",
               "mmd_null_p": "MMD p real-null", "auc_difference": "AUC difference", "null_grids": "null grids",
               "excess_pairs": "excess grid pairs", "excess_auc": "AUC synthetic-null", "excess_auc_null_median": "excess AUC null median",
               "excess_auc_null_q025": "excess AUC null 2.5%", "excess_auc_null_q975": "excess AUC null 97.5%",
               "excess_auc_p": "excess probe p", "excess_mmd2": "excess MMD²", "excess_mmd_null_q025": "excess MMD² null 2.5%",
               "excess_mmd_null_q975": "excess MMD² null 97.5%", "excess_mmd_p": "excess MMD p", "excess_min_p": "excess min. p"}


def null_table(nulls: Sequence[NullGap]) -> pd.DataFrame:
    """Per (model, regime, real set, arm): the probe AUC real vs synthetic beside real vs null, their difference (descriptive),
    and the excess tested directly: the AUC of a probe telling synthetic from null faces with its grid-swap p and the MMD's;
    the CSV keeps every column (the grids used, the null grids, the real-vs-null p-values, the swap nulls' bands, min. p)."""
    table = frame(nulls, NULL_TITLES, index=KEYS)
    return declare(table, p=["probe p real-null", "MMD p real-null", "excess probe p", "excess MMD p", "excess min. p"],
                   decimals={t: 3 for t in ("AUC real-synthetic", "AUC real-null", "AUC difference", "AUC synthetic-null")},
                   show=["AUC real-synthetic", "AUC real-null", "AUC difference", "AUC synthetic-null", "excess probe p", "excess MMD p"],
                   titles={"AUC real-synthetic": "AUC real-synth.", "AUC difference": "difference", "AUC synthetic-null": "AUC synth.-null"})


def _subject(n: NullGap) -> str:
    return (f"{n.model}, {n.regime}, {n.real_set} ({n.grid_set}), synthetic against null faces "
            f"{'as they come' if n.arm == RAW else 'matched to its format'}")


def null_findings(n: NullGap) -> list[str]:
    """The descriptive AUC difference, then the excess probe against its grid-swap null and the excess MMD test
    (:data:`fercore.studies.rq4.NULL_BAND`: observed minus the swap null's central 95 %, not a confidence interval)."""
    out = [finding(Comparison(_subject(n), "AUC(real, synthetic) - AUC(real, null)", n.auc_difference, np.nan, np.nan, units="AUC",
                              digits=3, note=f"AUC real-synthetic {n.auc_synthetic:.3f}, real-null {n.auc_null:.3f}; descriptive: "
                              "the excess is tested directly below"), ALPHA)]
    if n.excess_pairs == 0:
        return out + [f"{_subject(n)}: no class has synthetic and null grids to pair, so the excess is not tested."]
    design = f"{n.excess_pairs} pairs of a synthetic and a null grid; smallest attainable p {n.excess_min_p:.2g}"
    out.append(finding(Comparison(_subject(n), "domain probe AUC (synthetic vs null) above its grid-swap null median",
                                  n.excess_auc - n.excess_auc_null_median, n.excess_auc - n.excess_auc_null_q975,
                                  n.excess_auc - n.excess_auc_null_q025, p_value=n.excess_auc_p, units="AUC", digits=3,
                                  note=f"AUC {n.excess_auc:.3f}; {design}", interval=NULL_BAND), ALPHA))
    out.append(finding(Comparison(_subject(n), "MMD² (synthetic vs null) above its grid-swap null (the midpoint of its central 95 %)",
                                  n.excess_mmd2 - (n.excess_mmd_null_q025 + n.excess_mmd_null_q975) / 2, n.excess_mmd2 - n.excess_mmd_null_q975,
                                  n.excess_mmd2 - n.excess_mmd_null_q025, p_value=n.excess_mmd_p, units="(kernel units)", digits=4,
                                  interval=NULL_BAND, note=f"MMD² {n.excess_mmd2:.4f}"), ALPHA))
    return out


def findings(nulls: Sequence[NullGap]) -> list[str]:
    """:func:`null_findings` of every row, raw arm first."""
    return [line for n in sorted(nulls, key=lambda n: n.arm != RAW) for line in null_findings(n)]


def show_null(chapter: Chapter, nulls: Sequence[NullGap], null: NullFaces | None) -> pd.DataFrame | None:
    """The null arm's line (what it holds, or why it is off) and, when it ran, the ``null_arm`` table."""
    chapter.note(null_line(null))
    if not nulls:
        return None
    return chapter.table(null_table(nulls), "null_arm",
                         "Per model, regime, real set and arm: the domain probe's AUC between real and synthetic faces beside "
                         "the same probe between real and null faces (real faces through the grid path), their difference "
                         "(descriptive), and the excess tested directly: a probe telling synthetic from null faces (AUC) and "
                         "its and the MMD's p-values from swapping whole (synthetic grid, null grid) pairs. The CSV keeps the "
                         "grids each row used, the null grids, the real-vs-null p-values and the swap nulls' bands.")


CONFIRMED_TITLES = {"model": "model", "regime": "regime", "real_set": "real set", "arm": "synthetic faces", "grid_set": "synthetic grids",
                    "n_all": "n synthetic (all kept)", "n_confirmed": "n (confirmed)", "auc_all": "AUC (all)",
                    "auc_confirmed": "AUC (confirmed)", "mmd_p_all": "MMD p (all)", "mmd_p_confirmed": "MMD p (confirmed)",
                    "auc_p_all": "probe p (all)", "auc_p_confirmed": "probe p (confirmed)"}


def confirmed_table(pairs: Sequence[tuple[DomainGap, DomainGap]]) -> pd.DataFrame:
    """Per (model, regime, real set, arm), side by side on the synthetic faces the label sheet holds (all kept) and on the
    confirmed ones (:func:`fercore.studies.rq4.confirmed_gap`): the faces in the class-balanced sample, the probe AUC and the
    MMD's p (the probe's p-values and the grids used in the CSV)."""
    rows = [{"model": g.model, "regime": g.regime, "real_set": g.real_set, "arm": g.arm, "grid_set": g.grid_set,
             "n_all": g.n_synthetic, "n_confirmed": c.n_synthetic, "auc_all": g.auc, "auc_confirmed": c.auc, "mmd_p_all": g.mmd_p,
             "mmd_p_confirmed": c.mmd_p, "auc_p_all": g.auc_p, "auc_p_confirmed": c.auc_p} for g, c in pairs]
    table = frame(rows, CONFIRMED_TITLES, index=KEYS)
    return declare(table, p=["MMD p (all)", "MMD p (confirmed)", "probe p (all)", "probe p (confirmed)"],
                   decimals={"AUC (all)": 3, "AUC (confirmed)": 3},
                   show=["n synthetic (all kept)", "n (confirmed)", "AUC (all)", "AUC (confirmed)", "MMD p (all)", "MMD p (confirmed)"],
                   titles={"n synthetic (all kept)": "n synth. (all)"})


def show_confirmed(chapter: Chapter, confirmed: Sequence[tuple[DomainGap, DomainGap]], check: LabelCheck) -> pd.DataFrame | None:
    """With a filled label sheet, the ``confirmed_faces`` table (:func:`confirmed_table`); without one nothing (the chapter's
    opening line already says the synthetic labels are unchecked)."""
    if not check.checked or not confirmed:
        return None
    return chapter.table(confirmed_table(confirmed), "confirmed_faces",
                         "Domain gap per model, regime, real set and arm on the synthetic faces the label sheet holds (all kept) "
                         "beside the faces whose prompt label a person confirmed (blind sheet): synthetic faces in the "
                         "class-balanced sample, the probe's AUC and the MMD test's p (grid swaps); the CSV adds the probe's p "
                         "and the grids each row used.")


def show(chapter: Chapter, nulls: Sequence[NullGap], confirmed: Sequence[tuple[DomainGap, DomainGap]], null: NullFaces | None,
         check: LabelCheck) -> None:
    """The chapter's null-arm section (:func:`show_null`) and, with a filled label sheet, the confirmed faces (:func:`show_confirmed`)."""
    show_null(chapter, nulls, null)
    show_confirmed(chapter, confirmed, check)


def glue_values(nulls: Sequence[NullGap]) -> dict[str, str]:
    """``rq4_null_sentence``: in how many combinations the excess probe or MMD tells synthetic from null faces (p < alpha) and
    the range of AUC(real, synthetic) - AUC(real, null); or that the null arm did not run."""
    if not nulls:
        return {"rq4_null_sentence": "The null arm did not run here, so the domain gap cannot be set against what the grid path alone gives."}
    found = sum(int(n.excess_auc_p < ALPHA or n.excess_mmd_p < ALPHA) for n in nulls)
    low, high = min(n.auc_difference for n in nulls), max(n.auc_difference for n in nulls)
    return {"rq4_null_sentence": f"Against the null arm (real faces through the grid path), the synthetic faces are told apart from the null "
                                 f"faces (excess probe or MMD p < {ALPHA}) in {found} of {len(nulls)} model, regime, real-set and arm "
                                 f"combinations; AUC(real, synthetic) - AUC(real, null) lies between {low:+.3f} and {high:+.3f}."}
