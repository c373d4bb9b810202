"""Prompts for synthetic face grids, a generation plan for a credit budget, and generator backends.

Nothing here calls a network: ``files`` imports images made elsewhere; ``diffusers`` runs a
local text-to-image pipeline only from weights already on disk (``local_files_only``).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fercore.core.files import write_csv, write_image
from fercore.core.labels import CLASSES, canonical_name
from fercore.data import is_image_file
from fercore.synthetic.design import assign_levels, assign_splits, detectable_effects

log = logging.getLogger(__name__)

#: The template that gave the best grids (Flux dev) in the seed's experiments.
TEMPLATE = (
    "A photo grid of a {rows}x{cols} dimension headshot movie portraits, each image cell containing a distinct "
    "{gender} individuals with diverse ethnicities, hair, age ranges and skin tones. Faces are front-facing and show "
    "{intensity}{emotion} emotional expressions and well light environment.{background} It is important that the "
    "layout must be equally spaced, and each face should be full shown and clearly separated from the others."
)

#: Named prompt templates: the best-known one and the variants the seed's notes describe, so a plan can compare them.
TEMPLATES: dict[str, str] = {
    "movie": TEMPLATE,  # the best grids (Flux dev)
    "emotion-first": "{Lead} faces. " + TEMPLATE,  # the emotion word at the beginning: "raises intensity"
    "no-movie": TEMPLATE.replace("headshot movie portraits", "headshot portraits"),  # control for "movie raises the emotion"
    "realistic": TEMPLATE.replace("headshot movie portraits", "realistic headshot movie portraits"),  # "makes faces cartoonish"
}
#: What each named template tests (the finding it puts to a measurement).
TEMPLATE_NOTES = {
    "movie": "the best-known prompt (Flux dev gave the best grids with it)",
    "emotion-first": "the emotion word at the beginning as well: reported to raise intensity",
    "no-movie": "the best-known prompt without 'movie': 'movie' is reported to raise the emotion shown",
    "realistic": "'realistic' added: reported to make faces more cartoonish",
}

INTENSITIES = {"none": "", "subtle": "subtle ", "high": "high ", "extreme": "extreme "}
#: What the seed's experiments found, kept as data next to the template.
KNOWN_EFFECTS: list[dict[str, str]] = [
    {"change": "emotion named early in the prompt", "effect": "raises expression intensity"},
    {"change": "the word 'movie'", "effect": "raises expressiveness"},
    {"change": "the word 'realistic'", "effect": "makes faces cartoonish"},
    {"change": "adding 'no smiling'", "effect": "breaks the images (grids fall apart)"},
    {"change": "generator: Flux dev", "effect": "best grids; DALL-E, Stable Diffusion and Flux schnell were worse"},
    {"change": "any prompt", "effect": "some images come out 3x3 or 5x5, uneven rows, touching faces, hands, a wrong gender"},
]

#: Adjectives used for each canonical emotion in prompts.
EMOTION_WORDS = {
    "Anger": "angry", "Contempt": "contemptuous", "Disgust": "disgusted", "Fear": "fearful",
    "Happiness": "happy", "Neutral": "neutral", "Sadness": "sad", "Surprise": "surprised",
}


def build_prompt(emotion: str, gender: str, *, intensity: str = "high", background: str | None = None,
                 rows: int = 6, cols: int = 6, template: str = "movie") -> str:
    """The prompt of a named template (:data:`TEMPLATES`; default the best-known one) for one emotion and
    gender ('female' / 'male'); Neutral gets no intensity word."""
    if intensity not in INTENSITIES:
        raise ValueError(f"intensity must be one of {sorted(INTENSITIES)}, not {intensity!r}")
    if template not in TEMPLATES:
        raise ValueError(f"template must be one of {sorted(TEMPLATES)}, not {template!r}")
    gender_word = {"female": "female", "male": "male", "women": "female", "men": "male"}.get(gender.lower())
    if gender_word is None:
        raise ValueError(f"gender must be 'female' or 'male', not {gender!r}")
    name = canonical_name(emotion)
    level = "" if name == "Neutral" else INTENSITIES[intensity]
    lead = f"{level}{EMOTION_WORDS[name]}"
    return TEMPLATES[template].format(rows=rows, cols=cols, gender=gender_word, intensity=level, emotion=EMOTION_WORDS[name],
                                      Lead=lead[:1].upper() + lead[1:], background=f" Plain {background} background." if background else "")


#: Neutral is outside the intensity contrast: its prompts carry no intensity word, recorded as this level.
NEUTRAL_INTENSITY = ("Neutral", "none")


def _levels(name: str, given: str | Sequence[str], allowed: Mapping[str, str] | None) -> tuple[str, ...]:
    levels = (given,) if isinstance(given, str) else tuple(given)
    if not levels or len(set(levels)) != len(levels):
        raise ValueError(f"{name}: give one or more distinct levels, not {list(levels)}")
    unknown = [v for v in levels if allowed is not None and v not in allowed]
    if unknown:
        raise ValueError(f"{name}: {unknown} unknown; choose from {sorted(allowed)}")
    return levels


def generation_plan(
    budget: int = 30,
    *,
    emotions: tuple[str, ...] = CLASSES,
    genders: tuple[str, ...] = ("female", "male"),
    intensity: str | Sequence[str] = "high",
    generator: str | Sequence[str] = "flux-dev",
    template: str | Sequence[str] = "movie",
    test_share: float | None = None,
    seed: int = 0,
    rows: int = 6,
    cols: int = 6,
) -> pd.DataFrame:
    """``budget`` grids spread as evenly as possible over emotion x gender (round-robin, so every pair
    gets floor or ceil of budget / pairs), crossing the levels of ``intensity``, ``generator`` and
    ``template`` (one or several each) balanced on the margins (:mod:`fercore.synthetic.design`): each
    level used equally often (within one) overall and within each emotion. Neutral is outside the
    intensity contrast (intensity ``none``, no word in its prompt) and, when intensity varies, takes the
    single-grid slots. ``test_share``: a ``split`` column, test grids apportioned per emotion and gender
    and balanced the same way. Columns: file, emotion, gender, intensity, prompt, generator, seed, layout,
    template (, split)."""
    factors = {"intensity": _levels("intensity", intensity, INTENSITIES), "generator": _levels("generator", generator, None),
               "template": _levels("template", template, TEMPLATES)}
    names = [canonical_name(e) for e in emotions]
    if len(factors["intensity"]) > 1:  # Neutral is filled last: its grids add nothing to the intensity contrast
        names = [e for e in names if e != NEUTRAL_INTENSITY[0]] + [e for e in names if e == NEUTRAL_INTENSITY[0]]
    pairs = [(e, g) for e in names for g in genders]
    grids = []
    for k in range(budget):
        emotion, gender = pairs[k % len(pairs)]
        grids.append({"file": f"{emotion.lower()}_{gender}_{k // len(pairs):02d}.png", "emotion": emotion, "gender": gender,
                      "seed": seed + k})
    table = pd.DataFrame(grids)
    table["split"] = assign_splits(table, test_share) if test_share is not None else "all"
    exempt = {"intensity": NEUTRAL_INTENSITY}
    table = table.join(assign_levels(table, factors, exempt))
    table["prompt"] = [build_prompt(r.emotion, r.gender, intensity=r.intensity, rows=rows, cols=cols, template=r.template)
                       for r in table.itertuples(index=False)]
    table["layout"] = f"{rows}x{cols}"
    columns = ["file", "emotion", "gender", "intensity", "prompt", "generator", "seed", "layout", "template"]
    return table[columns + (["split"] if test_share is not None else [])]


def plan_effects(plan: pd.DataFrame, **design: float) -> pd.DataFrame:
    """What ``plan`` can estimate: :func:`fercore.synthetic.design.detectable_effects` for the factors
    that vary in it (Neutral outside the intensity contrast); ``design``: kept, icc, n_real, classes, accuracy."""
    return detectable_effects(plan, ["template", "intensity", "generator"], exempt={"intensity": NEUTRAL_INTENSITY}, **design)


def write_plan(plan: pd.DataFrame, path: str | Path) -> Path:
    """Write a plan as grids.csv, atomically; an existing plan is never replaced."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; a plan is a record of what was asked for: write a new one elsewhere")
    return write_csv(path, plan)


def write_plans(plan: pd.DataFrame, raw_dir: str | Path) -> list[Path]:
    """Write a plan with a ``split`` column as ``raw_dir/<split>/grids.csv`` (one per split, without the
    column: the folder is the split), atomically; refuses when any of them exists."""
    if "split" not in plan.columns:
        raise ValueError("the plan has no split column: make it with generation_plan(test_share=...), or write it with write_plan")
    targets = {split: Path(raw_dir) / str(split) / "grids.csv" for split in sorted(plan["split"].unique())}
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing:
        raise FileExistsError(f"{', '.join(existing)} exist(s); a plan is a record of what was asked for: write a new one elsewhere")
    return [write_plan(plan[plan["split"] == split].drop(columns="split"), target) for split, target in targets.items()]


@dataclass
class FilesBackend:
    """Import grid images made elsewhere (a web UI, another machine) and match them to plan rows.

    Files are matched by name: a plan row's ``file`` (e.g. ``anger_female_00.png``), or that
    stem with any image suffix. Matched images are copied into ``out_dir``; the source is untouched.
    """

    source_dir: Path

    def import_into(self, plan: pd.DataFrame, out_dir: str | Path) -> pd.DataFrame:
        out_dir = Path(out_dir)
        available = {p.stem: p for p in Path(self.source_dir).iterdir() if p.is_file() and is_image_file(p)}
        rows = []
        for row in plan.to_dict(orient="records"):
            found = available.get(Path(row["file"]).stem)
            if found is None:
                log.warning("no image for plan row %s in %s", row["file"], self.source_dir)
                continue
            target = out_dir / (Path(row["file"]).stem + found.suffix.lower())
            if not target.exists():
                out_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(found, target)
            rows.append({**row, "file": target.name})
        unmatched = sorted(set(available) - {Path(f).stem for f in plan["file"]})
        if unmatched:
            log.warning("%d images in %s match no plan row: %s", len(unmatched), self.source_dir, ", ".join(unmatched[:5]))
        return pd.DataFrame(rows, columns=plan.columns)


@dataclass
class DiffusersBackend:
    """A local diffusers text-to-image pipeline (optional extra). Never downloads: the model
    folder must already hold the weights."""

    model_dir: Path
    steps: int = 28
    guidance: float = 3.5
    device: str = "cuda"

    def generate(self, plan: pd.DataFrame, out_dir: str | Path, size: int = 1024) -> pd.DataFrame:
        try:
            import torch
            from diffusers import DiffusionPipeline
        except ImportError:
            raise ImportError("the diffusers backend needs: pip install diffusers transformers accelerate") from None
        if not Path(self.model_dir).is_dir():
            raise FileNotFoundError(f"{self.model_dir} does not exist: download the model weights there yourself first")
        pipe = DiffusionPipeline.from_pretrained(str(self.model_dir), local_files_only=True).to(self.device)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for row in plan.to_dict(orient="records"):
            target = out_dir / row["file"]
            if target.exists():
                continue
            generator = torch.Generator(self.device).manual_seed(int(row["seed"]))
            image = pipe(row["prompt"], height=size, width=size, num_inference_steps=self.steps,
                         guidance_scale=self.guidance, generator=generator).images[0]
            write_image(target, image)
        return plan
