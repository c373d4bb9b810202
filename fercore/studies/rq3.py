"""RQ3: which face regions the models use on real and on synthetic faces, per model, regime and emotion.

Every explained face gets five landmarks (MTCNN, on the image as the model sees it) and its own
face regions (:mod:`fercore.faces.regions`); the class activation map for the true class, taken at a
layer fine enough to tell the brows from the eyes (:func:`fercore.explain.choose_layer`), is shared
out over them (:func:`fercore.explain.cam_report`). The statistics (grid-level tests, shares per unit
area, the paired raw-minus-matched contrast) live in :mod:`fercore.studies.rq3_tests`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercore import faces
from fercore.analysis import plots
from fercore.book import Chapter
from fercore.core.files import write_csv
from fercore.core.labels import CLASSES
from fercore.core.present import declare
from fercore.data import load_rgb
from fercore.explain import CamLayer, CamReport, cam_report, canonical_labels
from fercore.faces import REGIONS, regions
from fercore.faces import TITLES as REGION_TITLES
from fercore.inference import ImageTransform, Inference
from fercore.models import Classifier
from fercore.studies.common import ALPHA, slug
from fercore.studies.data import TestSets, domain_pair, real_names, subset_for_cam
from fercore.studies.grid_sets import NULL, TEST_GRIDS, NullFaces, SyntheticGrids, null_faces, null_transform
from fercore.studies.regimes import REAL
from fercore.studies.rq3_tests import (  # noqa: F401  (the chapter's names)
    GRID_LEVEL,
    MIN_FACES,
    MIN_GRIDS,
    ONE_GRID,
    TOO_FEW,
    arm_contrast,
    compare_emotions,
    contrast_finding,
    excess_tests,
    null_tests,
    share_icc,
    study_findings,
    where,
)
from fercore.studies.session import MATCHED, RAW, Arms, Study

#: Index titles of the chapter's tables (the CSV files keep them too).
INDEX = {"model": "model", "regime": "regime", "real_set": "real set", "arm": "synthetic faces", "domain": "domain",
         "emotion": "emotion", "region": "region", "grid_set": "synthetic grids"}


def _indexed(rows: list[dict] | pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    table = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    return table.rename(columns=INDEX).set_index([INDEX[k] for k in keys])


@dataclass
class RegionStudy:
    """One model in one regime, one real set against the synthetic faces in one arm."""

    model: str
    regime: str
    real_set: str
    arm: str
    report: CamReport
    tests: pd.DataFrame  # one row per (emotion, region): see :func:`compare_emotions`
    real_domain: str = "real"  # the real faces' ``domain`` value in the report's table
    grids: str = TEST_GRIDS  # the synthetic grids explained (fercore.studies.grid_sets)
    null_tests: pd.DataFrame | None = None  # real - null per (emotion, region), as ``tests`` (None: no null arm)
    excess: pd.DataFrame | None = None  # synthetic - null per (emotion, region): :func:`excess_tests`

    @property
    def accuracy(self) -> dict[str, float]:
        """Accuracy per domain on the explained images."""
        return self.report.table.groupby("domain")["correct"].mean().to_dict()

    @property
    def figures(self) -> list[Path]:
        return self.report.figures

    def significant(self) -> pd.DataFrame:
        return self.tests[self.tests["p_holm"] < ALPHA]


def study(model: Classifier, name: str, regime: str, samples: pd.DataFrame, predictions: Inference, out: str | Path, *,
          classes: Mapping[str, list[str]], real_set: str = "real", arm: str = "raw",
          synthetic_transform: ImageTransform | None = None, face_cache: str | Path | None = None,
          fine_layer: CamLayer | None = None, figures: bool = False, per_class: int = 4, batch_size: int = 16,
          device: str = "auto", seed: int = 0, progress: bool = True, grids: str = TEST_GRIDS,
          null_transform: ImageTransform | None = None) -> RegionStudy:
    """The maps and region shares of ``samples`` (a real set, the synthetic faces and, where present, the null
    arm's faces: ``domain`` column) with right / wrong from ``predictions``; ``synthetic_transform`` (the matched arm)
    changes the synthetic images first, ``null_transform`` the null faces (matched from their own format). Per-emotion
    tests on the classes both sets hold; with null faces also real - null and the excess synthetic - null."""
    out = Path(out)
    transforms = {k: t for k, t in (("synthetic", synthetic_transform), (NULL, null_transform)) if t is not None} or None
    report = cam_report(model, samples, out, classes=classes, predictions=predictions, transforms=transforms, face_cache=face_cache,
                        fine_layer=fine_layer, figures=figures, per_class=per_class, batch_size=batch_size, device=device,
                        progress=progress)
    shared = [c for c in CLASSES if c in classes[real_set] and c in classes["synthetic"]]
    real_domain = next((str(d) for d in samples["domain"].unique() if d not in ("synthetic", NULL)), "real")
    tests = compare_emotions(report.table, real=real_domain, emotions=shared)
    write_csv(out / "region_tests.csv", tests)
    null, excess = None, None
    if (samples["domain"] == NULL).any():
        with_null = [c for c in shared if c in classes.get(NULL, classes["synthetic"])]
        null, excess = null_tests(report.table, real=real_domain, emotions=with_null), excess_tests(report.table, emotions=with_null)
        write_csv(out / "region_tests_null.csv", null)
        write_csv(out / "region_excess.csv", excess)
    return RegionStudy(name, regime, real_set, arm, report, tests, real_domain, grids, null, excess)


def explain_regimes(session: Study, sets: TestSets, arms: Arms, networks: Mapping[tuple[str, str], Classifier], *, per_class: int,
                    grids: SyntheticGrids | None = None, null: NullFaces | None = None, device: str = "auto", seed: int = 0,
                    progress: bool = True) -> tuple[list[RegionStudy], dict[str, CamLayer]]:
    """The chapter's loop: for every real set, the same explained real faces (``per_class`` per emotion
    and domain) and synthetic faces from the grids each regime is explained on (``grids``: every grid for a model
    trained on real, the test grids for the others; default the test grids) and, with ``null``, ``per_class`` null
    faces per emotion, through every ``(model, regime)`` network in both arms (:func:`study`), galleries
    for the real-trained raw arm; then the real set's region gallery, shown in the chapter.
    Every regime and arm of a model uses the region layer chosen for its first study.
    Returns the studies and ``{model: fine layer}``."""
    chapter = session.chapter
    results: list[RegionStudy] = []
    layers: dict[str, CamLayer] = {}
    face_cache = chapter.path("faces")
    grids = grids or SyntheticGrids(sets["synthetic"])
    nulls = null_faces(null)
    classes = {**sets.classes, NULL: sets.classes.get(NULL, sets.classes["synthetic"])}
    for real_set in real_names(sets):
        for (name, regime), model in networks.items():
            sides = [sets[real_set], grids.faces(regime), *([nulls] if nulls is not None else [])]
            explained = subset_for_cam(pd.concat(sides, ignore_index=True), per_class, seed=seed)
            for arm in (RAW, MATCHED):
                transform, matched_null = arms.transform(real_set, arm), null_transform(arms, real_set, arm)
                passes = [session.inference(model, sets[real_set]), grids.inference(session.inference_with(transform), model, regime)]
                predictions = Inference.join(passes + ([session.inference_with(matched_null)(model, nulls)] if nulls is not None else []))
                folder = chapter.path("cam", slug(real_set), arm, slug(name), slug(regime))
                result = study(model, name, regime, explained, predictions, folder, classes=classes, real_set=real_set,
                               arm=arm, synthetic_transform=transform, face_cache=face_cache, fine_layer=layers.get(name),
                               figures=(regime == REAL and arm == RAW), per_class=4, device=device, seed=seed, progress=progress,
                               grids=grids.used(regime), null_transform=matched_null)
                layers.setdefault(name, result.report.fine)  # one layer per model: every regime and arm alike
                results.append(result)
        explained = subset_for_cam(domain_pair(sets, real_set), per_class, seed=seed)
        gallery = region_gallery(explained, {real_set: ("real", None), "synthetic": ("synthetic", None),
                                             "synthetic, matched": ("synthetic", arms.transform(real_set, MATCHED))},
                                 chapter.path("figures"), face_cache=face_cache, seed=seed)
        chapter.show_file(gallery, f"Face regions from each face's landmarks (white dots): {real_set}, synthetic faces as they come and "
                          f"matched to {real_set}'s format. Brows, forehead, cheeks and jaw are estimated from the eyes by fixed proportions.")
    return results, layers


def _labels(shown: Sequence[str]) -> str:
    return ", ".join(f"{{numref}}`{label}`" for label in shown)


def show_mean_figures(chapter: Chapter, results: Sequence[RegionStudy], networks: Mapping[tuple[str, str], Any],
                      real_sets: Sequence[str]) -> list[str]:
    """Show every (real set, model, regime) mean-map figure (:func:`mean_figure`) and a note naming them."""
    shown = []
    for real_set in real_sets:
        for name, regime in networks:
            figure = mean_figure(results, name, regime, real_set, chapter.path("figures"))
            if figure is not None:
                shown.append(chapter.show_file(figure, f"Mean maps of {name} ({regime}) in the canonical frame: {real_set} and synthetic faces "
                                               "(as they come, matched), the region map (top rows) and the last-stage Grad-CAM (bottom rows)."))
    chapter.note("The mean-map figures: " + _labels(shown) + ".")
    return shown


def show_difference_figures(chapter: Chapter, results: Sequence[RegionStudy], networks: Mapping[tuple[str, str], Any],
                            real_sets: Sequence[str]) -> list[str]:
    """Show every (real set, model) per-emotion difference figure (:func:`difference_figure`) and, if any, a note naming them."""
    shown = []
    for real_set in real_sets:
        for name in dict.fromkeys(n for n, _ in networks):
            figure = difference_figure(results, name, real_set, chapter.path("figures"))
            if figure is not None:
                shown.append(chapter.show_file(figure, f"Region share on {real_set} minus synthetic faces per emotion (percentage points) for {name}, "
                                               "a panel per regime and arm; * Holm p < 0.05, blank: not tested."))
    if shown:
        chapter.note("The per-emotion figures: " + _labels(shown) + ".")
    return shown


def generator_table(studies: Sequence[RegionStudy]) -> pd.DataFrame | None:
    """Mean region share of the faces in the region statistics per (model, regime): the real set's faces and
    the synthetic faces of each generator, raw arm (descriptive; None when fewer than two generators are present)."""
    rows: dict[str, dict[str, float]] = {}
    for s in studies:
        used = s.report.used
        synthetic = used[used["domain"] == "synthetic"]
        if s.arm != RAW or "generator" not in used.columns or synthetic["generator"].nunique() < 2:
            continue
        parts = {f"{s.real_set} (real)": used[used["domain"] == s.real_domain],
                 **{f"synthetic, {g}": part for g, part in synthetic.groupby("generator")}}
        for label, part in parts.items():
            rows[f"{s.model} · {s.regime} · {label}"] = {REGION_TITLES[r]: float(part[r].mean()) for r in REGIONS}
    return pd.DataFrame(rows).T.rename_axis("model · regime · faces") if rows else None


def show_generator_facet(chapter: Chapter, studies: Sequence[RegionStudy]) -> pd.DataFrame | None:
    """The region shares faceted by generator (:func:`generator_table`) as a heat table, or one line when the
    synthetic faces come from one generator."""
    table = generator_table(studies)
    if table is None:
        chapter.note("The synthetic faces come from one generator (or do not record it), so the region shares are not split by generator.")
        return None
    return chapter.heat_table(table, "regions_by_generator",
                              "Mean region share (last-stage Grad-CAM) of the real faces and of the synthetic faces of each "
                              "generator, per model and regime, as they come (descriptive: no test across generators).")


def show_galleries(chapter: Chapter, results: Sequence[RegionStudy]) -> list[str]:
    """Show the galleries of the real-trained models' raw arm (all but the mean map) and, if any, a note naming them."""
    shown = []
    for result in results:
        if result.regime == REAL and result.arm == RAW:
            for figure in (f for f in result.figures if f.stem != "cam_mean"):
                shown.append(chapter.show_file(figure, caption(figure, result.model, result.regime, result.real_set, result.arm)))
    if shown:
        chapter.note("The galleries: " + _labels(shown) + ".")
    return shown


# --------------------------------------------------------------------------- tables


def landmark_table(studies: Sequence[RegionStudy]) -> pd.DataFrame:
    """Per real set, arm, synthetic grids and domain: faces explained, landmarks found, implausible, and the rate
    (the same faces for every model and regime explained on the same grids; the first study of each is counted)."""
    rows, seen = [], set()
    for s in studies:
        if (s.real_set, s.arm, s.grids) in seen:
            continue
        seen.add((s.real_set, s.arm, s.grids))
        for domain, part in s.report.table.groupby("domain"):
            missing = int((part["excluded"] == "no landmarks").sum())
            implausible = int((part["excluded"] == "implausible landmarks").sum())
            rows.append({"real_set": s.real_set, "arm": s.arm, "grid_set": s.grids, "domain": domain, "faces": len(part),
                         "landmarks": len(part) - missing - implausible, "implausible": implausible,
                         "rate": (len(part) - missing - implausible) / len(part) if len(part) else np.nan})
    table = _indexed(rows, ["real_set", "arm", "grid_set", "domain"])
    return declare(table, percent=["rate"], titles={"faces": "faces explained", "landmarks": "with landmarks",
                                                    "implausible": "implausible (left out)", "rate": "landmark rate"})


def layer_table(studies: Sequence[RegionStudy]) -> pd.DataFrame:
    """Per model, real set and arm: the reference and the fine layer with their cell size, and the
    median smallest region (an eye box) in input pixels."""
    rows, seen = [], set()
    for s in studies:
        key = (s.model, s.real_set, s.arm)
        if key in seen:
            continue
        seen.add(key)
        r = s.report
        rows.append({"model": s.model, "real_set": s.real_set, "arm": s.arm, "input_px": r.input_px,
                     "reference": r.reference.describe(), "fine": r.fine.describe(),
                     "smallest_region_px": r.smallest_region_px, "fits": "yes" if r.fits else "no"})
    table = _indexed(rows, ["model", "real_set", "arm"])
    return declare(table, titles={"input_px": "input (px)", "reference": "reference map", "fine": "region map",
                                  "smallest_region_px": "smallest region (px, median)", "fits": "cell < region"},
                   decimals={"smallest_region_px": 1})


def exclusion_table(studies: Sequence[RegionStudy]) -> pd.DataFrame:
    """Per study: faces in the region statistics and faces left out for an all-zero map, per domain (the null arm's
    where any study has one)."""
    rows = []
    nulls = any(s.null_tests is not None for s in studies)
    for s in studies:
        t = s.report.table
        row = {"model": s.model, "regime": s.regime, "real_set": s.real_set, "arm": s.arm}
        for domain, label in ((s.real_domain, "real"), ("synthetic", "synthetic"), *([(NULL, NULL)] if nulls else [])):
            part = t[t["domain"] == domain]
            row[f"used_{label}"] = int((part["excluded"] == "").sum())
            row[f"zero_{label}"] = int((part["excluded"] == "zero map").sum())
        rows.append(row)
    table = _indexed(rows, ["model", "regime", "real_set", "arm"])
    titles = {f"{kind}_{label}": f"{title}, {label}" for label in ("real", "synthetic", *([NULL] if nulls else []))
              for kind, title in (("used", "used"), ("zero", "zero maps"))}
    return declare(table, titles=titles)


def summary_table(studies: Sequence[RegionStudy]) -> pd.DataFrame:
    """Per study: the design (synthetic grids per emotion, the ICC of shares within grids) and the median minimal detectable difference
    of the tested pairs (80 % power), emotions compared, tests, which test, Holm-significant pairs (shown),
    and accuracy on the explained faces (in the CSV)."""
    rows = []
    for s in studies:
        tested = s.tests[s.tests["p_value"].notna()]
        kinds = sorted(set(tested["test"]))
        grids = s.tests.drop_duplicates("emotion").set_index("emotion")["grids"]
        rows.append({"model": s.model, "regime": s.regime, "real_set": s.real_set, "arm": s.arm,
                     "grids": f"{s.grids.removesuffix(' grids')}: " + (", ".join(f"{e} {int(g)}" for e, g in grids.items()) or "none"),
                     "median_mde": float(100 * tested["mde"].median()) if len(tested) else np.nan,
                     "icc": share_icc(s.report.table).text().replace(" emotions)", " (emotion, region) pairs)"),
                     "emotions": int(tested["emotion"].nunique()), "tests": len(tested), "test": "; ".join(kinds) or TOO_FEW,
                     "significant": int((tested["p_holm"] < ALPHA).sum()),
                     "accuracy_real": s.accuracy.get(s.real_domain, np.nan), "accuracy_synthetic": s.accuracy.get("synthetic", np.nan)})
    table = _indexed(rows, ["model", "regime", "real_set", "arm"])
    return declare(table, percent=["accuracy_real", "accuracy_synthetic"], decimals={"median_mde": 1},
                   show=["grids", "icc", "median_mde", "tests", "test", "significant"],  # emotions compared: the CSV
                   titles={"grids": "synthetic grids (splits: per emotion)", "icc": "ICC of shares within grids", "median_mde": "MDE (pp, median)", "emotions": "emotions", "tests": "Holm tests", "test": "test", "significant": f"Holm p < {ALPHA}",
                           "accuracy_real": "accuracy, real", "accuracy_synthetic": "accuracy, synthetic"})


def significant_table(studies: Sequence[RegionStudy]) -> pd.DataFrame:
    """Every (emotion, region) difference with Holm p < alpha, across studies (``comparison``: the
    real set and the arm); the shown columns are the shares, the difference with its interval and
    Holm's p; the CSV keeps faces, grids, the test and the raw p too."""
    parts = []
    for s in studies:
        sig = s.significant()
        if len(sig):
            parts.append(sig.assign(model=s.model, regime=s.regime,
                                    comparison=f"{s.real_set}, {'as they come' if s.arm == 'raw' else 'matched'}, {s.grids}"))
    columns = ["model", "regime", "comparison", "emotion", "region", "n_real", "n_synthetic", "grids", "mean_real",
               "mean_synthetic", "density_real", "density_synthetic", "difference", "low", "high", "mde", "test", "p_value", "p_holm"]
    table = (pd.concat(parts) if parts else pd.DataFrame(columns=columns))[columns]
    table["region"] = table["region"].map(REGION_TITLES)
    table = table.set_index(["model", "regime", "comparison", "emotion", "region"])
    return declare(table, percent=["mean_real", "mean_synthetic"], points=["difference", "mde"], ci={"difference": ("low", "high")},
                   p=["p_value", "p_holm"], decimals={"density_real": 2, "density_synthetic": 2},
                   titles={"n_real": "faces, real", "n_synthetic": "faces, synthetic", "grids": "grids",
                           "mean_real": "share real", "mean_synthetic": "share synthetic", "density_real": "per unit area, real",
                           "density_synthetic": "per unit area, synthetic", "difference": "real - synthetic", "mde": "MDE",
                           "p_value": "p", "p_holm": "Holm p"},
                   show=["grids", "mean_real", "mean_synthetic", "density_real", "density_synthetic", "difference", "p_holm"])


# --------------------------------------------------------------------------- figures


def mean_figure(studies: Sequence[RegionStudy], model: str, regime: str, real_set: str, out: str | Path) -> Path | None:
    """Canonical-frame mean maps of one model and regime: real faces, synthetic faces as they come
    and matched, for the region map and then the last-stage Grad-CAM (reference)."""
    mine = {s.arm: s for s in studies if (s.model, s.regime, s.real_set) == (model, regime, real_set)}
    if RAW not in mine:
        return None
    rows: dict[str, dict[str, np.ndarray]] = {}
    for kind, label in (("fine", "region map"), ("reference", "Grad-CAM, last stage")):
        sources = [(f"{real_set}\n{label}", mine[RAW], mine[RAW].real_domain), (f"synthetic\n{label}", mine[RAW], "synthetic")]
        if MATCHED in mine:
            sources.append((f"synthetic, matched\n{label}", mine[MATCHED], "synthetic"))
        for row, s, domain in sources:
            maps = {e: m for (k, d, e), m in s.report.mean_maps.items() if k == kind and d == domain}
            if maps:
                rows[row] = maps
    if not rows:
        return None
    path = Path(out) / f"cam_mean_{slug(model)}_{slug(regime)}_{slug(real_set)}"
    plots.cam_canonical(rows, canonical_labels(), path)
    return path.with_suffix(".png")


def difference_figure(studies: Sequence[RegionStudy], model: str, real_set: str, out: str | Path) -> Path | None:
    """Per-emotion region differences (real - synthetic) of one model and real set: a panel per regime and arm."""
    panels, marks = {}, {}
    for s in studies:
        if (s.model, s.real_set) != (model, real_set):
            continue
        tested = s.tests[s.tests["p_value"].notna()]
        if tested.empty:
            continue
        title = f"{s.regime}, {'as they come' if s.arm == 'raw' else 'matched'}"
        grid = tested.pivot(index="region", columns="emotion", values="difference")
        star = tested.assign(mark=np.where(tested["p_holm"] < ALPHA, "*", "")).pivot(index="region", columns="emotion", values="mark")
        order = [r for r in REGIONS if r in grid.index]
        emotions = [e for e in CLASSES if e in grid.columns]
        panels[title] = grid.loc[order, emotions].rename(index=REGION_TITLES)
        marks[title] = star.loc[order, emotions].fillna("").rename(index=REGION_TITLES)
    if not panels:
        return None
    path = Path(out) / f"region_differences_{slug(model)}_{slug(real_set)}"
    plots.region_difference_panels(panels, marks, path)
    return path.with_suffix(".png")


def region_gallery(samples: pd.DataFrame, panels: Mapping[str, tuple[str, ImageTransform | None]], out: str | Path, *,
                   face_cache: str | Path | None = None, per_domain: int = 4, seed: int = 0) -> Path:
    """Faces with their regions outlined and landmarks marked, so a reader can check the regions:
    ``panels`` maps a row title to (``domain`` value in ``samples``, transform or None), e.g.
    ``{"FER2013": ("real", None), "synthetic": ("synthetic", None), "synthetic, matched": ("synthetic", matched)}``."""
    images, label_maps, points, titles = [], [], [], []
    detector = faces.make_face_detector("mtcnn")
    for name, (domain, transform) in panels.items():
        part = samples[samples["domain"] == domain].sample(frac=1.0, random_state=seed)  # a seeded order
        shown = [transform(load_rgb(p)) if transform is not None else load_rgb(p) for p in part["path"]]
        found = faces.detect_faces([np.asarray(im.convert("RGB")) for im in shown], detector, cache_dir=face_cache, progress=False)
        chosen = []
        for image, detection, emotion in zip(shown, found, part["label"], strict=True):
            marks = detection.landmarks
            try:
                labels = regions.label_map(marks, image.size, (image.size[1] * 2, image.size[0] * 2)) if marks is not None else None
            except regions.ImplausibleLandmarks:
                labels, marks = None, None
            chosen.append((labels is None, np.asarray(image.convert("RGB")), labels, marks, f"{name}:\n{CLASSES[int(emotion)]}"))
        chosen.sort(key=lambda item: item[0])  # faces with landmarks first: the figure is there to check regions
        for _, image, labels, marks, title in chosen[:per_domain]:
            images.append(image)
            label_maps.append(labels)
            points.append(marks)
            titles.append(title)
    path = Path(out) / "regions"
    plots.region_gallery(images, label_maps, points, titles, path, ncols=per_domain)
    return path.with_suffix(".png")


def caption(figure: str | Path, model: str, regime: str, real_set: str, arm: str) -> str:
    """The caption of a gallery figure of :func:`study` (``cam_<domain>_<outcome>``)."""
    _, domain, outcome = Path(figure).stem.split("_", 2)
    return (f"Region map (LayerCAM) over {domain} faces that {model} ({regime}) classifies "
            f"{'correctly' if outcome == 'correct' else 'wrongly'}, on crops aligned by the eyes, labelled true -> predicted "
            f"({real_set} against synthetic faces, {'as they come' if arm == 'raw' else 'matched'}).")


# --------------------------------------------------------------------------- text


def findings(studies: Sequence[RegionStudy]) -> list[str]:
    """Per study, :func:`fercore.studies.rq3_tests.study_findings` (worded by the one wording function),
    then the raw-against-matched contrasts (:func:`contrasts`)."""
    out = []
    for s in studies:
        out += study_findings(where(s.model, s.regime, s.real_set, s.arm), s.tests)
    out += contrasts(studies)
    return out


def contrasts(studies: Sequence[RegionStudy]) -> list[str]:
    """Per (model, regime, real set) with both arms: the change of the largest raw (emotion, region)
    difference from matching, a paired contrast over the same grids (never significance compared across arms)."""
    raw = {(s.model, s.regime, s.real_set): s for s in studies if s.arm == RAW}
    out = []
    for s in studies:
        key = (s.model, s.regime, s.real_set)
        if s.arm != MATCHED or key not in raw:
            continue
        emotions = sorted(set(raw[key].tests["emotion"]) & set(s.tests["emotion"]))
        contrast = arm_contrast(raw[key].report.table, s.report.table, real=s.real_domain, emotions=emotions)
        line = contrast_finding(f"{s.model}, {s.regime}, {s.real_set}", contrast, raw[key].tests)
        if line is not None:
            out.append(line)
    return out


def glue_values(studies: Sequence[RegionStudy]) -> dict[str, float | str]:
    """``rq3_studies_<arm>``, ``rq3_with_significant_regions_<arm>`` (studies with at least one
    Holm-significant pair), ``rq3_landmark_rate_<domain slug>`` (raw arm), and per study
    ``rq3_<model>_<regime>_<set>_<arm>_significant``. The null arm's sentence is :func:`fercore.studies.rq3_null.glue_values`'s."""
    values: dict[str, float | str] = {}
    for s in studies:
        values[f"rq3_{slug(s.model)}_{slug(s.regime)}_{slug(s.real_set)}_{s.arm}_significant"] = float(len(s.significant()))
    for arm in ("raw", "matched"):
        mine = [s for s in studies if s.arm == arm]
        values[f"rq3_studies_{arm}"] = float(len(mine))
        values[f"rq3_with_significant_regions_{arm}"] = float(sum(len(s.significant()) > 0 for s in mine))
    if studies:
        for (real_set, arm, grids, domain), rate in landmark_table(studies)["rate"].items():
            suffix = "" if grids == TEST_GRIDS else "_all_grids"
            values[f"rq3_landmark_rate_{slug(real_set)}_{arm}_{slug(str(domain))}{suffix}"] = float(rate)
    return values

