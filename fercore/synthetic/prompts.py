"""Prompts for synthetic face grids, a generation plan for a credit budget, and generator backends.

Nothing here calls a network: ``files`` imports images made elsewhere; ``diffusers`` runs a
local text-to-image pipeline only from weights already on disk (``local_files_only``).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fercore.core.files import write_csv, write_image
from fercore.core.labels import CLASSES, canonical_name
from fercore.data import is_image_file

log = logging.getLogger(__name__)

#: The template that gave the best grids (Flux dev) in the seed's experiments.
TEMPLATE = (
    "A photo grid of a {rows}x{cols} dimension headshot movie portraits, each image cell containing a distinct "
    "{gender} individuals with diverse ethnicities, hair, age ranges and skin tones. Faces are front-facing and show "
    "{intensity}{emotion} emotional expressions and well light environment.{background} It is important that the "
    "layout must be equally spaced, and each face should be full shown and clearly separated from the others."
)

INTENSITIES = {"none": "", "high": "high ", "extreme": "extreme "}

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
                 rows: int = 6, cols: int = 6) -> str:
    """The best-known prompt for one emotion and gender ('female' / 'male')."""
    if intensity not in INTENSITIES:
        raise ValueError(f"intensity must be one of {sorted(INTENSITIES)}, not {intensity!r}")
    gender_word = {"female": "female", "male": "male", "women": "female", "men": "male"}.get(gender.lower())
    if gender_word is None:
        raise ValueError(f"gender must be 'female' or 'male', not {gender!r}")
    name = canonical_name(emotion)
    level = "" if name == "Neutral" else INTENSITIES[intensity]
    return TEMPLATE.format(rows=rows, cols=cols, gender=gender_word, intensity=level, emotion=EMOTION_WORDS[name],
                           background=f" Plain {background} background." if background else "")


def generation_plan(
    budget: int = 30,
    *,
    emotions: tuple[str, ...] = CLASSES,
    genders: tuple[str, ...] = ("female", "male"),
    intensity: str = "high",
    generator: str = "flux-dev",
    seed: int = 0,
    rows: int = 6,
    cols: int = 6,
) -> pd.DataFrame:
    """``budget`` images spread as evenly as possible over emotion x gender (round-robin, so
    every pair gets floor or ceil of budget / pairs). Columns: file, emotion, gender,
    intensity, prompt, generator, seed, layout."""
    pairs = [(canonical_name(e), g) for e in emotions for g in genders]
    plan = []
    for k in range(budget):
        emotion, gender = pairs[k % len(pairs)]
        copy = k // len(pairs)
        plan.append({
            "file": f"{emotion.lower()}_{gender}_{copy:02d}.png",
            "emotion": emotion, "gender": gender, "intensity": "none" if emotion == "Neutral" else intensity,
            "prompt": build_prompt(emotion, gender, intensity=intensity, rows=rows, cols=cols),
            "generator": generator, "seed": seed + k, "layout": f"{rows}x{cols}",
        })
    return pd.DataFrame(plan)


def write_plan(plan: pd.DataFrame, path: str | Path) -> Path:
    """Write a plan as grids.csv, atomically; an existing plan is never replaced."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; a plan is a record of what was asked for: write a new one elsewhere")
    return write_csv(path, plan)


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
