"""What every chapter opens with: the chapter folder, the models, the paths, the run's inference cache."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from fercore.book import Chapter, open_chapter
from fercore.data import unseen_real_faces
from fercore.faces import MatchedFormat, SetFormat, format_table
from fercore.inference import ImageTransform, InferenceCache
from fercore.models import Classifier
from fercore.studies import regimes
from fercore.studies.data import NULL_ARM, TestSets, real_names, test_sets
from fercore.studies.labelcheck import LabelCheck, label_check

log = logging.getLogger(__name__)

#: The two arms of every real-vs-synthetic comparison.
RAW, MATCHED = "raw", "matched"


@dataclass
class Arms:
    """Per real set, the matched-format transform for the synthetic faces; every set's measured format."""

    transforms: dict[str, MatchedFormat]
    formats: dict[str, SetFormat]
    null_transforms: dict[str, MatchedFormat] = field(default_factory=dict)  # the null arm's faces to each real set's format

    def transform(self, real_set: str, arm: str, source: str = "synthetic") -> MatchedFormat | None:
        """None for the raw arm; for the matched arm, the transform that brings ``source``'s faces (``synthetic``, or
        ``null``: the null arm, matched from its own measured format like the synthetic faces from theirs) to ``real_set``'s format."""
        if arm == RAW:
            return None
        if arm != MATCHED:
            raise ValueError(f"arm must be {RAW!r} or {MATCHED!r}, not {arm!r}")
        if source == NULL_ARM:
            if real_set not in self.null_transforms:
                raise KeyError(f"no null arm was measured for {real_set}: call Study.matched_arms with the null set among the sets")
            return self.null_transforms[real_set]
        return self.transforms[real_set]

    def table(self):
        """One row per set: grey share, native size, JPEG quality, framing (display table)."""
        table = format_table(self.formats)
        keep = {"images": "images measured", "grey_fraction": "grey share", "size": "native size (px)", "jpeg_quality": "JPEG quality",
                "eye_y": "eye line (height)", "iod": "inter-ocular (width)", "eye_mouth": "eye to mouth (height)",
                "landmark_rate": "landmarks found"}
        return declare(table[list(keep)].rename(columns=keep), percent=["grey share", "landmarks found"])
from fercore.core.present import declare
from fercore.core.provenance import model_record, sample_record
from fercore.faces import match_transform, matched_arms, measure_format
from fercore.studies.regimes import ModelSpec


@dataclass
class Study:
    """One chapter's set-up, shared by its cells."""

    chapter: Chapter
    specs: dict[str, ModelSpec]
    real_roots: dict[str, str]
    synthetic_root: str
    inference: InferenceCache
    seed: int = 0
    labels: LabelCheck = field(default_factory=LabelCheck)  # the person's check of the synthetic labels (fercore.studies.labelcheck)

    @property
    def run_dir(self) -> Path:
        """The suite run folder (the notebook's ``output_dir``)."""
        return self.chapter.output_dir

    def test_sets(self, *, real_split: str = "test", synthetic_split: str | Sequence[str] = "test",
                  max_per_class: int | None = None) -> TestSets:
        """Every real test set and the synthetic one (:func:`fercore.studies.data.test_sets`)."""
        sets = test_sets(self.real_roots, self.synthetic_root, real_split=real_split, synthetic_split=synthetic_split,
                         max_per_class=max_per_class, seed=self.seed)
        self.record_samples(sets)
        return sets

    def record_samples(self, sets: Mapping[str, Any], prefix: str = "") -> None:
        """Write each set's sample table into the chapter's ``samples/`` and record its sha256
        (``chapter.json``'s provenance; the book's run page)."""
        records = self.chapter.provenance.setdefault("samples", {})
        for name, samples in sets.items():
            records[f"{prefix}{name}"] = sample_record(f"{prefix}{name}", samples, self.chapter.path("samples"))

    def _record_model(self, name: str, regime: str, weights: str | Path, model: Classifier) -> None:
        self.chapter.provenance.setdefault("models", {})[f"{name} · {regime}"] = model_record(
            name, weights, arch=model.arch, image_size=model.image_size, regime=regime)

    def matched_arms(self, sets: TestSets, *, limit: int = 200) -> Arms:
        """For every real set, the transform that brings the synthetic test faces (and the null arm's, when ``sets``
        holds ``null``) to its format and framing (:mod:`fercore.faces.matching`), measured on at most ``limit`` images of each set;
        ``formats.json`` and the face detections are kept in the run folder's ``matching/``."""
        transforms, formats = matched_arms({name: sets[name] for name in [*real_names(sets), "synthetic"]},
                                           out=self.run_dir / "matching", limit=limit, seed=self.seed)
        if NULL_ARM not in sets:
            return Arms(transforms, formats)
        formats[NULL_ARM] = measure_format(sets[NULL_ARM], cache_dir=self.run_dir / "matching" / "faces", limit=limit, seed=self.seed)
        nulls = {real: match_transform(formats[NULL_ARM], formats[real], real) for real in transforms}
        for real, arm in nulls.items():
            log.info("null-arm faces matched to %s: %s", real, arm.name)
        return Arms(transforms, formats, nulls)

    def inference_with(self, transform: ImageTransform | None) -> InferenceCache:
        """The run's inference cache with ``transform`` applied to every image first (a matched arm)."""
        return replace(self.inference, transform=transform)

    def models(self) -> dict[str, Classifier]:
        """Each model as given (trained on real faces)."""
        loaded = {name: spec.load() for name, spec in self.specs.items()}
        for name, model in loaded.items():
            self._record_model(name, regimes.REAL, self.specs[name].weights, model)
        return loaded

    def unseen_real_faces(self, models: Mapping[str, Classifier], *, exclude_splits: tuple[str, ...] = ("test",)) -> pd.DataFrame:
        """The faces of the run's real sets that none of ``models`` trained or selected on (their checkpoints' records
        and the parameter file's ``seen``), without ``exclude_splits``; raises
        :class:`~fercore.data.NoUnseenFacesError` saying what to provide (:mod:`fercore.data.seen`)."""
        seen = {name: self.specs[name].seen_by(model) for name, model in models.items()}
        return unseen_real_faces(self.real_roots, seen, exclude_splits=exclude_splits)

    def regimes(self, regimes_wanted: tuple[str, ...] = regimes.REGIMES) -> tuple[dict[tuple[str, str], Classifier], list[str]]:
        """``{(model, regime): classifier}`` for every regime found in this run, and what is missing."""
        found: dict[tuple[str, str], Classifier] = {}
        missing = []
        for name, spec in self.specs.items():
            loaded, absent = regimes.load_regimes(spec, self.run_dir, regimes_wanted)
            found.update({(name, regime): model for regime, model in loaded.items()})
            for regime, model in loaded.items():
                weights = spec.weights if regime == regimes.REAL else regimes.regime_dir(self.run_dir, name, regime) / "checkpoint.pt"
                self._record_model(name, regime, weights, model)
            missing += [f"{name}: {regime}" for regime in absent]
        return found, missing


def open_study(
    chapter: str,
    *,
    output_dir: str,
    real_roots: Mapping[str, str],
    synthetic_root: str,
    models: Mapping[str, Mapping[str, Any]] | None = None,
    weights: str | None = None,
    arch: str | None = None,
    image_size: int | None = None,
    trust_pickle: bool = False,
    seed: int = 0,
    batch_size: int = 64,
    workers: int | None = None,
    device: str = "auto",
    progress: bool = True,
    extra_paths: Mapping[str, Any] | None = None,
    label_sheet: str | None = None,
    label_key: str | None = None,
) -> tuple[Study, dict[str, Any]]:
    """Resolve and check every path parameter (naming the one to set when data are missing), seed,
    show library logs in the notebook, and open the chapter. ``models`` (or the single-model
    shorthand ``weights`` / ``arch`` / ``image_size`` / ``trust_pickle``) names the models compared.
    ``label_sheet`` (and ``label_key``): a filled label sheet (:mod:`fercore.studies.labelcheck`); the chapter opens with
    a line saying whether the synthetic labels were checked. Returns the :class:`Study` and the resolved ``extra_paths``."""
    specs = regimes.model_specs(models, weights=weights, arch=arch, image_size=image_size, trust_pickle=trust_pickle)
    weight_paths = regimes.weight_paths(specs)
    extra = dict(extra_paths or {})
    opened, paths = open_chapter(chapter, output_dir, seed=seed, files=weight_paths,
                                 paths={"real_roots": dict(real_roots), "synthetic_root": synthetic_root, **weight_paths, **extra})
    cache = InferenceCache(opened.output_dir / "inference", batch_size=batch_size, workers=workers, device=device, progress=progress)
    study = Study(opened, regimes.with_paths(specs, paths), paths["real_roots"], paths["synthetic_root"], cache, seed,
                  label_check(opened, paths["synthetic_root"], label_sheet, label_key))
    opened.provenance["inference"] = {"backend": cache.backend, "device": cache.device, "preprocess": cache.preprocess,
                                      "batch_size": cache.batch_size, "seed": seed}
    return study, {key: paths[key] for key in extra}
