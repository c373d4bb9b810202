"""RQ3: which face regions the models use on real and on synthetic faces, per model and regime.

Grad-CAM maps for the true class (:func:`fercore.explain.cam_report`); each map's mass is summed
in fixed regions of the crop and the two domains' shares are compared per region (two-sided
Mann-Whitney U, Holm-corrected over regions; it treats the explained faces as independent),
for every real set, with the synthetic faces as they come and matched to the real set's format. Right / wrong comes from the run's inference pass
over the whole test set; Grad-CAM's own forward and backward passes are separate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..present import declare
from ..inference import ImageTransform, Inference
from ..models import Classifier
from .common import ALPHA, frame, pct, slug


@dataclass(frozen=True)
class RegionDifference:
    """Mean share of the Grad-CAM mass in one region on real and on synthetic faces, and the test."""

    model: str
    regime: str
    real_set: str
    arm: str
    region: str
    mean_real: float
    mean_synthetic: float
    difference: float  # real - synthetic
    u_statistic: float
    p_value: float
    p_holm: float


@dataclass
class RegionStudy:
    """One model in one regime: the region comparison, accuracy on the explained images, figures."""

    model: str
    regime: str
    real_set: str
    arm: str
    regions: list[RegionDifference]
    accuracy: dict[str, float]  # per domain, on the explained images
    images: int
    figures: list[Path]

    def significant(self) -> list[str]:
        return [r.region for r in self.regions if r.p_holm < ALPHA]


def study(model: Classifier, name: str, regime: str, samples: pd.DataFrame, predictions: Inference, out: str | Path, *,
          classes: Mapping[str, list[str]] | list[str], real_set: str = "real", arm: str = "raw",
          synthetic_transform: ImageTransform | None = None, per_class: int = 4, batch_size: int = 16, device: str = "auto",
          progress: bool = True) -> RegionStudy:
    """Grad-CAM for ``samples`` (a real set and the synthetic faces) with right / wrong from
    ``predictions``; ``synthetic_transform`` (the matched arm) changes the synthetic images first."""
    from ..explain import cam_report

    out = Path(out)
    transforms = {"synthetic": synthetic_transform} if synthetic_transform is not None else None
    report = cam_report(model, samples, out, classes=classes, predictions=predictions, transforms=transforms, per_class=per_class,
                        batch_size=batch_size, device=device, progress=progress)
    regions = pd.read_csv(out / "cam_regions.csv")
    domains = sorted(regions["domain"].unique())
    rows = []
    comparison = out / "region_comparison.csv"
    if comparison.is_file():
        table = pd.read_csv(comparison)
        for r in table.itertuples():
            rows.append(RegionDifference(name, regime, real_set, arm, str(r.region), float(getattr(r, f"mean_{domains[0]}")),
                                         float(getattr(r, f"mean_{domains[1]}")), float(r.difference), float(r.u_statistic),
                                         float(r.p_value), float(r.p_value_holm)))
    figures = [out / "figures" / "cam_mean.png", *sorted((out / "figures").glob("cam_*_correct.png")),
               *sorted((out / "figures").glob("cam_*_incorrect.png"))]
    return RegionStudy(name, regime, real_set, arm, rows, regions.groupby("domain")["correct"].mean().to_dict(), int(report["images"]), figures)


TITLES = {"model": "model", "regime": "regime", "real_set": "real set", "arm": "synthetic faces", "region": "region", "mean_real": "share real", "mean_synthetic": "share synthetic",
          "difference": "real - synthetic", "p_value": "Mann-Whitney p", "p_holm": "Holm p"}


def region_table(studies: list[RegionStudy]) -> pd.DataFrame:
    """One row per (model, regime, real set, arm, region)."""
    table = frame([r for s in studies for r in s.regions], TITLES, index=["model", "regime", "real_set", "arm", "region"])
    return declare(table, percent=["share real", "share synthetic"], points=["real - synthetic"], p=["Mann-Whitney p", "Holm p"])


def caption(figure: str | Path, model: str, regime: str, real_set: str, arm: str) -> str:
    """The caption of one of :func:`study`'s figures (``cam_mean``, ``cam_<domain>_<outcome>``)."""
    stem = Path(figure).stem
    where = f"{real_set} against synthetic faces, {arm} arm"
    if stem == "cam_mean":
        return f"Mean Grad-CAM map per domain (rows) and emotion (columns) of {model}, {regime} ({where})."
    _, domain, outcome = stem.split("_", 2)
    return (f"Grad-CAM over {domain} faces that {model} ({regime}) classifies {'correctly' if outcome == 'correct' else 'wrongly'}, "
            f"labelled true -> predicted ({where}).")


def figure_list(shown: list[tuple[str, str, str, str]]) -> str:
    """MyST text naming the figures shown in the loop, ``(label, model, regime, arm)`` each, by number."""
    groups: dict[tuple[str, str], list[str]] = {}
    for label, model, regime, arm in shown:
        groups.setdefault((model, regime), []).append(f"{{numref}}`{label}` ({arm})" if "mean" in label else f"{{numref}}`{label}`")
    return "The Grad-CAM figures: " + "; ".join(f"{model}, {regime}: {', '.join(refs)}" for (model, regime), refs in groups.items()) + "."


def findings(studies: list[RegionStudy]) -> list[str]:
    out = []
    for s in studies:
        if not s.regions:
            out.append(f"{s.model}, {s.regime}, {s.real_set} ({s.arm}): one domain only among the explained images; no comparison.")
            continue
        largest = max(s.regions, key=lambda r: abs(r.difference))
        significant = s.significant()
        where = (f"shares differ at α = {ALPHA} (Holm) in {', '.join(significant)}" if significant
                 else f"no region's share differs at α = {ALPHA} (Holm)")
        out.append(f"{s.model}, {s.regime}, {s.real_set} against synthetic faces {'as they come' if s.arm == 'raw' else 'matched to its format'}: "
                   f"{where}; largest difference in the {largest.region} region "
                   f"(real {pct(largest.mean_real)}, synthetic {pct(largest.mean_synthetic)} of the Grad-CAM mass); "
                   "accuracy on the explained images " + ", ".join(f"{k} {pct(v)}" for k, v in s.accuracy.items()) + ".")
    out += survival(studies)
    return out


def survival(studies: list[RegionStudy]) -> list[str]:
    """Per (model, regime, real set) with both arms: which regions differ in both arms (survive
    matching), only raw (explained by format and framing) or only matched."""
    raw = {(s.model, s.regime, s.real_set): set(s.significant()) for s in studies if s.arm == "raw"}
    out = []
    for s in studies:
        key = (s.model, s.regime, s.real_set)
        if s.arm != "matched" or key not in raw:
            continue
        matched = set(s.significant())
        both, only_raw, only_matched = raw[key] & matched, raw[key] - matched, matched - raw[key]
        parts = [f"{'survive matching' if both else 'none survives matching'}{': ' + ', '.join(sorted(both)) if both else ''}"]
        if only_raw:
            parts.append(f"differ only as the faces come: {', '.join(sorted(only_raw))}")
        if only_matched:
            parts.append(f"differ only after matching: {', '.join(sorted(only_matched))}")
        out.append(f"{s.model}, {s.regime}, {s.real_set}: of the regions whose share differs, " + "; ".join(parts) + ".")
    return out


def glue_values(studies: list[RegionStudy]) -> dict[str, float | str]:
    """``rq3_<model>_<regime>_<set>_<arm>_significant`` (count of regions) and ``..._largest`` (region);
    ``rq3_studies`` / ``rq3_with_significant_regions`` per arm (``_raw``, ``_matched``)."""
    values: dict[str, float | str] = {}
    for s in studies:
        key = f"rq3_{slug(s.model)}_{slug(s.regime)}_{slug(s.real_set)}_{s.arm}"
        values[f"{key}_significant"] = float(len(s.significant()))
        if s.regions:
            values[f"{key}_largest"] = max(s.regions, key=lambda r: abs(r.difference)).region
    for arm in ("raw", "matched"):
        mine = [s for s in studies if s.arm == arm]
        values[f"rq3_studies_{arm}"] = float(len(mine))
        values[f"rq3_with_significant_regions_{arm}"] = float(sum(bool(s.significant()) for s in mine))
    return values
