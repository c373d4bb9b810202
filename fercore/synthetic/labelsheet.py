"""Synthetic labels checked by a person: a blind label sheet, reading it back, and agreement between prompt and person.

:func:`write_blind_sheet` numbers the kept faces of an extraction manifest in a shuffled order (across grids), writes
contact-sheet pages that show each face with its number and nothing else, and one CSV with a row per face number and
blank columns for the person (``emotion``, ``gender``, ``usable``, ``comment``). The key (face number -> face file,
source grid, prompt emotion and gender) goes to a separate file that the person does not open; the prompt is joined
back only by :func:`read_label_sheet`, which validates the filled sheet. :func:`label_agreement` computes Cohen's kappa
between prompt and person per emotion and overall, with a percentile interval from a bootstrap of whole source grids
(faces of one grid are not independent); :func:`confirmed_faces` keeps the faces whose prompt label the person confirmed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont
from sklearn.metrics import cohen_kappa_score

from fercore.analysis import kappa_codes, percentile_interval, stratified_weights
from fercore.core.files import check_output, write_csv, write_image
from fercore.core.labels import CLASSES, UnknownLabelError, accepted_names, canonical_gender, canonical_name
from fercore.data import load_rgb, load_samples

#: The columns of the blank sheet the person fills (``face`` is given).
SHEET_COLUMNS = ["face", "emotion", "gender", "usable", "comment"]
KEY_COLUMNS = ["face", "path", "source", "split", "prompt_emotion", "prompt_gender"]
YES, NO = ("yes", "y", "true", "1", ""), ("no", "n", "false", "0")


class LabelSheetError(ValueError):
    """A filled label sheet (or its key) that cannot be read as it is; the message names the file, the rows and the fix."""


@dataclass(frozen=True)
class BlindSheet:
    """The files :func:`write_blind_sheet` wrote."""

    sheet: Path  # the CSV the person fills
    pages: tuple[Path, ...]  # contact-sheet images: each face with its number
    key: Path  # face number -> face file and prompt: kept away from the person
    faces: int


def default_key(sheet_dir: str | Path) -> Path:
    """Where the key of a sheet folder goes by default: a sibling folder ``<sheet folder>-key/label_key.csv``."""
    sheet_dir = Path(sheet_dir)
    return sheet_dir.parent / f"{sheet_dir.name}-key" / "label_key.csv"


def write_blind_sheet(manifest: str | Path, out: str | Path, *, key: str | Path | None = None, split: str | None = None,
                      seed: int = 0, per_page: int = 48, columns: int = 8, thumb: int = 128, force: bool = False) -> BlindSheet:
    """Write ``out/label_sheet.csv`` (a row per face number, blank person columns), ``out/pages/page_NN.png`` (faces
    with their numbers, ``per_page`` a page) and the key (default :func:`default_key`) for the kept faces of
    ``manifest`` (one ``split``, or all), shuffled across grids with ``seed``."""
    faces = load_samples(manifest)
    if split is not None:
        faces = faces[faces["split"].astype(str) == split] if "split" in faces.columns else faces.iloc[:0]
    if faces.empty:
        raise LabelSheetError(f"{manifest}: no kept faces{f' in split {split!r}' if split else ''} to put on a label sheet")
    out = Path(out)
    key_path = Path(key) if key is not None else default_key(out)
    if key_path.resolve().is_relative_to(out.resolve()):
        raise LabelSheetError(f"the key {key_path} lies inside the sheet folder {out}: the person would see the prompts; "
                              "give --key outside it")
    check_output(out, force=force, folder=True)
    check_output(key_path, force=force)
    order = np.random.default_rng(seed).permutation(len(faces))
    shuffled = faces.iloc[order].reset_index(drop=True)
    numbers = np.arange(1, len(shuffled) + 1)
    blank = pd.DataFrame({"face": numbers, **{c: "" for c in SHEET_COLUMNS[1:]}})
    sheet = write_csv(out / "label_sheet.csv", blank)
    column = (lambda name: shuffled[name].astype(str) if name in shuffled.columns else "")
    write_csv(key_path, pd.DataFrame({"face": numbers, "path": shuffled["path"].astype(str), "source": column("source"),
                                      "split": column("split"), "prompt_emotion": shuffled["emotion"],
                                      "prompt_gender": column("gender")}))
    pages = [write_image(out / "pages" / f"page_{i + 1:02d}.png",
                         _page(shuffled["path"].tolist()[start:start + per_page], numbers[start:start + per_page], columns, thumb))
             for i, start in enumerate(range(0, len(shuffled), per_page))]
    return BlindSheet(sheet, tuple(pages), key_path, len(shuffled))


def _page(paths: Sequence[str], numbers: Sequence[int], columns: int, thumb: int) -> Image.Image:
    """One contact-sheet page: faces in rows of ``columns``, each with its number under it."""
    label_h = max(18, thumb // 5)
    rows = math.ceil(len(paths) / columns)
    page = Image.new("RGB", (columns * (thumb + 8) + 8, rows * (thumb + label_h + 8) + 8), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=label_h - 4)
    for i, (path, number) in enumerate(zip(paths, numbers, strict=True)):
        x, y = 8 + (i % columns) * (thumb + 8), 8 + (i // columns) * (thumb + label_h + 8)
        page.paste(load_rgb(path).resize((thumb, thumb), Image.BILINEAR), (x, y))
        draw.text((x + thumb // 2, y + thumb + 2), str(int(number)), fill=(0, 0, 0), font=font, anchor="ma")
    return page


# --------------------------------------------------------------------------- reading the filled sheet


def read_label_sheet(sheet: str | Path, key: str | Path | None = None) -> pd.DataFrame:
    """The filled sheet joined with its key: one row per face with ``path``, ``source``, ``split``, ``prompt_emotion``,
    ``prompt_gender``, ``person_emotion`` (canonical; '' where unusable and left blank), ``person_gender``, ``usable``
    and ``confirmed`` (usable and the person's emotion is the prompt's). Folder-name synonyms (``happy``,
    ``surprised`` ...) are accepted. Every problem is reported at once (:class:`LabelSheetError`)."""
    sheet = Path(sheet)
    key = Path(key) if key is not None else default_key(sheet.parent)
    for path, what in ((sheet, "filled label sheet"), (key, "label key (written beside the sheet by `fercore label-sheet`)")):
        if not path.is_file():
            raise LabelSheetError(f"{what} {path} does not exist")
    table = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    keys = pd.read_csv(key, dtype=str, keep_default_na=False)
    missing = [c for c in SHEET_COLUMNS[:4] if c not in table.columns]
    if missing:
        raise LabelSheetError(f"{sheet} lacks the columns {missing}; keep the header face,emotion,gender,usable,comment as written")
    problems = _problems(table, set(keys["face"].astype(int)), sheet)
    if problems:
        more = f"\n  ... and {len(problems) - 12} more" if len(problems) > 12 else ""
        raise LabelSheetError(f"{sheet}: {len(problems)} problem(s):\n  " + "\n  ".join(problems[:12]) + more)
    filled = table.assign(face=table["face"].astype(int),
                          person_emotion=[canonical_name(e) if e.strip() else "" for e in table["emotion"]],
                          person_gender=[canonical_gender(g) for g in table["gender"]],
                          usable=[u.strip().lower() in YES for u in table["usable"]])
    joined = keys.assign(face=keys["face"].astype(int)).merge(filled[["face", "person_emotion", "person_gender", "usable"]], on="face")
    joined["prompt_emotion"] = [canonical_name(e) for e in joined["prompt_emotion"]]
    joined["confirmed"] = joined["usable"] & (joined["person_emotion"] == joined["prompt_emotion"])
    return joined.sort_values("face").reset_index(drop=True)


def _problems(table: pd.DataFrame, faces: set[int], sheet: Path) -> list[str]:
    """Every problem of a filled sheet, each naming the CSV line and the fix."""
    problems, seen = [], {}
    names = ", ".join(accepted_names()[:12]) + " ..."
    for i, row in table.iterrows():
        line = int(i) + 2  # the header is line 1
        text = str(row["face"]).strip()
        if not text.isdigit() or int(text) not in faces:
            problems.append(f"line {line}: face {text!r} is not a face number of this sheet (1-{max(faces)}); restore the number")
            continue
        if int(text) in seen:
            problems.append(f"line {line}: face {text} is listed twice (lines {seen[int(text)]} and {line}); keep one row")
            continue
        seen[int(text)] = line
        usable = str(row["usable"]).strip().lower()
        if usable not in YES + NO:
            problems.append(f"line {line} (face {text}): usable {row['usable']!r}: write yes or no (blank counts as yes)")
        emotion = str(row["emotion"]).strip()
        if not emotion and usable not in NO:
            problems.append(f"line {line} (face {text}): no emotion; write one ({names}) or usable = no")
        elif emotion:
            try:
                canonical_name(emotion)
            except UnknownLabelError:
                problems.append(f"line {line} (face {text}): unknown emotion {emotion!r}; write one of {', '.join(CLASSES)} "
                                "(or a folder name such as happy, surprised)")
        try:
            canonical_gender(str(row["gender"]))
        except UnknownLabelError:
            problems.append(f"line {line} (face {text}): unknown gender {row['gender']!r}; write female, male or leave it blank")
    absent = sorted(faces - set(seen))
    if absent:
        shown = ", ".join(map(str, absent[:10])) + (" ..." if len(absent) > 10 else "")
        problems.append(f"{len(absent)} face(s) have no row: {shown}; add a row for each (usable = no if it cannot be judged)")
    return problems


# --------------------------------------------------------------------------- agreement


@dataclass(frozen=True)
class LabelAgreement:
    """Prompt against person on the usable faces: for one emotion (one-vs-rest Cohen's kappa), or ``"all"`` (Cohen's
    kappa over every emotion); interval: the 2.5 and 97.5 percentiles of a bootstrap of whole source grids within each
    prompt emotion, widened for few grids (:func:`fercore.analysis.clustered.percentile_interval`; none where an emotion
    has one grid); its coverage is checked by the calibration harness (``kappa-bootstrap``)."""

    emotion: str
    faces: int  # prompted with this emotion (all: every face)
    usable: int
    confirmed: int  # usable and the person chose the prompt's emotion
    grids: int
    kappa: float
    kappa_low: float
    kappa_high: float


def _kappa(prompt: np.ndarray, person: np.ndarray, emotion: str | None) -> float:
    """Cohen's kappa (scikit-learn's), one-vs-rest for ``emotion``; NaN where undefined (one category on both sides)."""
    if emotion is not None:
        prompt, person = prompt == emotion, person == emotion
    if len(prompt) == 0 or (len(np.unique(prompt)) == 1 and len(np.unique(person)) == 1):
        return float("nan")
    return float(cohen_kappa_score(prompt, person))


def label_agreement(joined: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> list[LabelAgreement]:
    """:class:`LabelAgreement` per prompt emotion and overall (last) from :func:`read_label_sheet`'s table."""
    usable = joined[joined["usable"]].reset_index(drop=True)
    groups = usable["source"].where(usable["source"].astype(str) != "", usable["path"]).astype(str).to_numpy()
    prompt, person = usable["prompt_emotion"].to_numpy(), usable["person_emotion"].to_numpy()
    emotions = [c for c in CLASSES if c in set(joined["prompt_emotion"])]
    weights = stratified_weights(groups, prompt, n_boot, np.random.default_rng(seed))  # whole grids within each prompt emotion
    per_emotion = pd.Series(groups).groupby(prompt).nunique().tolist()  # grids per prompt emotion: the interval's widening
    names = sorted(set(prompt) | set(person))
    a, b = (np.searchsorted(names, x).astype(int) for x in (prompt, person))
    rows = []
    for emotion in [*emotions, None]:
        point = _kappa(prompt, person, emotion)
        if emotion is None:
            boots = kappa_codes(a, b, len(names), weights)
        else:
            code = names.index(emotion) if emotion in names else -1
            boots = kappa_codes((a == code).astype(int), (b == code).astype(int), 2, weights)
        boots = boots[np.isfinite(boots)]
        low, high = (percentile_interval(point, boots, per_emotion) if len(boots) >= 20 and np.isfinite(point) else (np.nan, np.nan))
        low, high = max(low, -1.0), min(high, 1.0)  # the widening may reach past kappa's range (NaN stays NaN)
        mine = joined if emotion is None else joined[joined["prompt_emotion"] == emotion]
        held = usable if emotion is None else usable[usable["prompt_emotion"] == emotion]
        rows.append(LabelAgreement(emotion or "all", len(mine), int(mine["usable"].sum()), int(mine["confirmed"].sum()),
                                   int(held["source"].nunique()), point, float(low), float(high)))
    return rows


def confirmed_faces(samples: pd.DataFrame, joined: pd.DataFrame) -> pd.DataFrame:
    """The rows of a sample table (``path``) whose face the person confirmed (:func:`read_label_sheet`'s ``confirmed``);
    faces not on the sheet are left out."""
    confirmed = {str(Path(p).resolve()) for p in joined.loc[joined["confirmed"], "path"]}
    keep = [str(Path(p).resolve()) in confirmed for p in samples["path"]]
    return samples[keep].reset_index(drop=True)
