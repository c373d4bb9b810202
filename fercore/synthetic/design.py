"""A generation plan that crosses prompt factors on a credit budget, balanced on its margins.

With 30 credits a full cross (2 templates x 2 intensities over 16 emotion x gender pairs = 64 cells)
is impossible, so the plan balances margins instead:

* every emotion x gender pair gets floor or ceil of budget / pairs grids (one or two at 30);
  when intensity varies, Neutral (outside the intensity contrast) takes the single-grid slots;
* the test split is apportioned per emotion, then per gender (largest remainders), before any factor;
* each grid's levels are chosen greedily, emotion by emotion, test grids first. For every factor only
  the levels least used within the emotion stay; among those, a test grid keeps the least used in the
  test split of its emotion, then in the test split, then overall; a training grid the least used
  overall, then in the training split. Among the combinations left, the one whose levels were least
  used with the grid's gender in the emotion, then the least used within the emotion, in the split,
  with the gender in the split, overall and with the gender overall (so factors are not aliased with
  each other or with gender).

Least used within the emotion first keeps each factor's levels within one of equal inside each emotion
(and, as test grids come first, inside each emotion's test grids); the later keys keep them within one
overall and in the test split (checked by the tests over budgets of 8 to 64 credits, up to three levels
a factor and test shares of 0.3 and 0.5; the training split may be off by two). A level that a factor
fixes for one emotion (``exempt``: Neutral's intensity is ``none``) is outside that factor's counts.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fercore.analysis import mde_contrast, plan, power

DEFAULTS = power.DEFAULTS


def _largest_remainder(sizes: Sequence[int], share: float, total: int, order: Sequence[int]) -> list[int]:
    """Integer parts of ``sizes * share`` summing to ``total`` (Hamilton); ties go by ``order``."""
    exact = [n * share for n in sizes]
    counts = [math.floor(x) for x in exact]
    rank = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - counts[i]), order[i]))
    for i in rank[: total - sum(counts)]:
        counts[i] += 1
    return counts


def assign_splits(grids: pd.DataFrame, test_share: float) -> pd.Series:
    """``train`` / ``test`` per grid: round(grids x share) test grids, apportioned over emotions, then over
    the genders inside each emotion (ties alternate the gender from one emotion to the next)."""
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must lie between 0 and 1, got {test_share}")
    split = pd.Series("train", index=grids.index, dtype=object)
    emotions = list(dict.fromkeys(grids["emotion"]))
    sizes = [int((grids["emotion"] == e).sum()) for e in emotions]
    per_emotion = _largest_remainder(sizes, test_share, round(len(grids) * test_share), list(range(len(emotions))))
    for e, (emotion, tests) in enumerate(zip(emotions, per_emotion, strict=True)):
        part = grids[grids["emotion"] == emotion]
        genders = list(dict.fromkeys(part["gender"]))
        sizes_g = [int((part["gender"] == g).sum()) for g in genders]
        order = [(g - e) % len(genders) for g in range(len(genders))]  # who wins a tie turns with the emotion
        share = tests / len(part) if len(part) else 0.0
        for gender, count in zip(genders, _largest_remainder(sizes_g, share, tests, order), strict=True):
            split[part.index[part["gender"] == gender][:count]] = "test"
    return split


def _least(levels: Sequence[str], key) -> list[str]:
    best = min(key(level) for level in levels)
    return [level for level in levels if key(level) == best]


def assign_levels(grids: pd.DataFrame, factors: Mapping[str, Sequence[str]],
                  exempt: Mapping[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """One level of each factor per grid (``grids``: emotion, gender, split), balanced as the module says.
    ``exempt``: ``{factor: (emotion, level)}``, that emotion's fixed level, outside the factor's counts."""
    exempt = dict(exempt or {})
    names = list(factors)
    count: Counter = Counter()
    chosen: dict[int, dict[str, str]] = {}
    emotions = list(dict.fromkeys(grids["emotion"]))
    order = sorted(grids.index, key=lambda i: (emotions.index(grids.at[i, "emotion"]), grids.at[i, "split"] != "test"))
    for i in order:
        emotion, gender, split = grids.at[i, "emotion"], grids.at[i, "gender"], grids.at[i, "split"]
        options = {}
        for f in names:
            if f in exempt and exempt[f][0] == emotion:
                options[f] = [exempt[f][1]]
                continue
            levels = list(factors[f])
            scopes = [("e", emotion), ("s", split, emotion), ("s", split), ("g",)] if split == "test" else \
                [("e", emotion), ("g",), ("s", split, emotion), ("s", split)]
            for scope in scopes:
                levels = _least(levels, lambda v, s=scope: count[(f, v, *s)])  # noqa: B023 (used at once)
            options[f] = levels

        def combo_key(combo: tuple[str, ...]) -> tuple[int, ...]:
            c = tuple(zip(names, combo, strict=True))

            def by_gender(*scope: str) -> int:
                return sum(count[(f, v, "p", gender, *scope)] for f, v in c)

            return (by_gender("e", emotion), count[(c, "e", emotion)], count[(c, "s", split)], by_gender("s", split),
                    count[(c, "g")], by_gender())

        combo = min(itertools.product(*(options[f] for f in names)), key=combo_key)
        chosen[i] = dict(zip(names, combo, strict=True))
        c = tuple(zip(names, combo, strict=True))
        count.update([(c, "e", emotion), (c, "s", split), (c, "g")])
        for f, v in c:
            if f in exempt and exempt[f][0] == emotion:
                continue
            count.update([(f, v, "e", emotion), (f, v, "g"), (f, v, "s", split, emotion), (f, v, "s", split),
                          (f, v, "p", gender, "e", emotion), (f, v, "p", gender, "s", split), (f, v, "p", gender)])
    return pd.DataFrame.from_dict(chosen, orient="index").reindex(grids.index)


def level_counts(plan_table: pd.DataFrame, factor: str, *, exempt: tuple[str, str] | None = None) -> pd.DataFrame:
    """Grids per level of ``factor`` (columns) overall, per split and per emotion (rows ``all``,
    ``split: <s>``, ``<emotion>``); the exempt emotion is left out."""
    table = plan_table if exempt is None else plan_table[plan_table["emotion"] != exempt[0]]
    rows = {"all": table[factor].value_counts()}
    if "split" in table.columns:
        rows |= {f"split: {s}": part[factor].value_counts() for s, part in table.groupby("split", sort=True)}
    rows |= {e: part[factor].value_counts() for e, part in table.groupby("emotion", sort=False)}
    return pd.DataFrame(rows).T.fillna(0).astype(int)


def detectable_effects(plan_table: pd.DataFrame, factors: Sequence[str], *, kept: float = DEFAULTS["kept"],
                       icc: float = DEFAULTS["icc"], n_real: int = DEFAULTS["n_real"], classes: int = DEFAULTS["classes"],
                       accuracy: float = DEFAULTS["accuracy"], exempt: Mapping[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """What the plan can estimate (80 % power, alpha 0.05; :mod:`fercore.analysis.power`): the real -
    synthetic balanced-accuracy gap (``plan-power`` at this budget and test share) and, for each factor
    that varies, the accuracy difference between its two least-planned levels, pooled over emotions
    (each level's grids one arm, each grid a cluster) and within one emotion. ``test`` columns: on the
    test split; ``all grids``: a model that never trained on them (e.g. a pretrained one) scores every grid."""
    exempt = dict(exempt or {})
    has_split = "split" in plan_table.columns
    test = plan_table[plan_table["split"] == "test"] if has_split else plan_table
    if test.empty or len(test) == len(plan_table) and has_split:
        raise ValueError(f"the plan has {len(test)} test grids of {len(plan_table)}: choose a test share that leaves grids for both splits")
    share = len(test) / len(plan_table) if has_split else 0.5
    emotions = plan_table["emotion"].nunique()
    gap = plan(credits=len(plan_table), kept=kept, test_share=share, n_real=n_real, icc=icc, emotions=emotions, classes=classes,
               accuracy=accuracy)
    rows = [{"comparison": "real - synthetic balanced-accuracy gap", "levels": "",
             "test grids per level": f"{gap.test_grids_per_class:.2f} per emotion",
             "estimable": "yes" if gap.test_grids_per_class >= 2 else "partly: emotions with one test grid are descriptive",
             "MDE test (points)": round(100 * gap.mde_gap, 1), "MDE all grids (points)": float("nan")}]
    for factor in factors:
        fixed = exempt.get(factor)
        part, whole = (t if fixed is None else t[t["emotion"] != fixed[0]] for t in (test, plan_table))
        levels = whole[factor].value_counts()
        if len(levels) < 2:
            continue
        a, b = levels.sort_values(kind="stable").index[:2]
        n_test = [int((part[factor] == x).sum()) for x in (a, b)]
        n_all = [int(levels[x]) for x in (a, b)]
        within = part.groupby("emotion")[factor].value_counts().unstack(fill_value=0).reindex(columns=[a, b], fill_value=0)
        mde_test = mde_contrast(*n_test, kept, icc, accuracy=accuracy)
        rows.append({"comparison": f"{factor}: {a} vs {b}, pooled over emotions", "levels": ", ".join(map(str, levels.index)),
                     "test grids per level": f"{n_test[0]}, {n_test[1]}",
                     "estimable": "yes" if np.isfinite(mde_test) else "no: fewer than 2 test grids at a level",
                     "MDE test (points)": round(100 * mde_test, 1),
                     "MDE all grids (points)": round(100 * mde_contrast(*n_all, kept, icc, accuracy=accuracy), 1)})
        most = int(within.min(axis=1).max()) if len(within) else 0
        rows.append({"comparison": f"{factor}: {a} vs {b}, within one emotion", "levels": "",
                     "test grids per level": f"at most {most} per emotion",
                     "estimable": "yes" if most >= 2 else "no: fewer than 2 test grids per level in an emotion",
                     "MDE test (points)": round(100 * mde_contrast(most, most, kept, icc, accuracy=accuracy), 1),
                     "MDE all grids (points)": float("nan")})
    return pd.DataFrame(rows)
