"""Canonical emotion classes, folder-name aliases, per-dataset label maps and emotion groups.

Every label inside fercore is an index into :data:`CLASSES` (HSEmotion's 8-class order).
Datasets that lack a class (FER2013 has no Contempt) keep canonical indices; only the
evaluation restricts the model's logits to the classes the dataset can contain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

#: Canonical classes; the index of a class is its position (HSEmotion's order).
CLASSES: tuple[str, ...] = (
    "Anger",
    "Contempt",
    "Disgust",
    "Fear",
    "Happiness",
    "Neutral",
    "Sadness",
    "Surprise",
)
NUM_CLASSES = len(CLASSES)
CLASS_TO_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}
CONTEMPT = CLASS_TO_INDEX["Contempt"]

#: The 7 classes of FER2013-style datasets (canonical order, Contempt removed).
SEVEN_CLASSES: tuple[str, ...] = tuple(c for c in CLASSES if c != "Contempt")

#: Folder / label-name aliases, matched case-insensitively after stripping spaces, '-' and '_'.
ALIASES: dict[str, str] = {
    **{name.lower(): name for name in CLASSES},
    "angry": "Anger",
    "anger": "Anger",
    "mad": "Anger",
    "contemptuous": "Contempt",
    "disgusted": "Disgust",
    "fearful": "Fear",
    "afraid": "Fear",
    "scared": "Fear",
    "happy": "Happiness",
    "joy": "Happiness",
    "neutrality": "Neutral",
    "calm": "Neutral",
    "sad": "Sadness",
    "surprised": "Surprise",
    "suprise": "Surprise",  # common misspelling in public dataset folders
}

#: AffectNet's numeric expression ids (0-7). Ids 8-10 (None, Uncertain, Non-face) are not emotions.
AFFECTNET_IDS: dict[int, str] = {
    0: "Neutral",
    1: "Happiness",
    2: "Sadness",
    3: "Surprise",
    4: "Fear",
    5: "Disgust",
    6: "Anger",
    7: "Contempt",
}

#: FER2013's numeric ids in its CSV release (0 Angry ... 6 Neutral).
FER2013_IDS: dict[int, str] = {
    0: "Anger",
    1: "Disgust",
    2: "Fear",
    3: "Happiness",
    4: "Sadness",
    5: "Surprise",
    6: "Neutral",
}

#: Emotion groups by valence. Choice: Surprise counts as positive (as in most FER valence
#: groupings, e.g. the circumplex places it near neutral-positive valence); Contempt as negative.
#: Pass another mapping to :func:`group_of` to use a different grouping.
EMOTION_GROUPS: dict[str, str] = {
    "Anger": "negative",
    "Contempt": "negative",
    "Disgust": "negative",
    "Fear": "negative",
    "Happiness": "positive",
    "Neutral": "neutral",
    "Sadness": "negative",
    "Surprise": "positive",
}
GROUPS: tuple[str, ...] = ("positive", "negative", "neutral")


class UnknownLabelError(ValueError):
    """A label or folder name that no alias maps to a canonical class."""


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "").replace("-", "").replace("_", "")


_ALIAS_KEYS: dict[str, str] = {_key(k): v for k, v in ALIASES.items()}


def accepted_names() -> list[str]:
    """All accepted label spellings (lower case), sorted."""
    return sorted(ALIASES)


def canonical_name(label: str | int) -> str:
    """Map a folder name, alias or canonical index to the canonical class name.

    >>> canonical_name("happy"), canonical_name("SURPRISED"), canonical_name(0)
    ('Happiness', 'Surprise', 'Anger')
    """
    if isinstance(label, (int, np.integer)):
        if 0 <= int(label) < NUM_CLASSES:
            return CLASSES[int(label)]
        raise UnknownLabelError(f"class index {label} is outside 0..{NUM_CLASSES - 1}")
    name = _ALIAS_KEYS.get(_key(str(label)))
    if name is None:
        raise UnknownLabelError(
            f"unknown emotion label {label!r}; accepted names (case-insensitive): "
            + ", ".join(accepted_names())
        )
    return name


#: Gender spellings (matched like emotion names: any case, spaces / '-' / '_' ignored) -> the
#: canonical 'female' / 'male' that the gender-split study uses.
GENDER_ALIASES: dict[str, str] = {
    **dict.fromkeys(("female", "females", "woman", "women", "f", "w", "girl", "girls"), "female"),
    **dict.fromkeys(("male", "males", "man", "men", "m", "boy", "boys"), "male"),
}


def canonical_gender(value: str) -> str:
    """'women', 'F', 'Woman' ... -> 'female'; 'men', 'M' ... -> 'male'; an empty value stays ''.

    >>> canonical_gender("Women"), canonical_gender("m")
    ('female', 'male')
    """
    text = "" if value is None else str(value)
    if _key(text) in ("", "nan", "none"):
        return ""
    name = GENDER_ALIASES.get(_key(text))
    if name is None:
        raise UnknownLabelError(f"unknown gender {value!r}; accepted (case-insensitive): {', '.join(sorted(GENDER_ALIASES))}")
    return name


def to_index(label: str | int) -> int:
    """Canonical index of a label given by name, alias or index."""
    return CLASS_TO_INDEX[canonical_name(label)]


def from_affectnet(expression_id: int) -> int:
    """Canonical index of an AffectNet expression id (0 Neutral ... 7 Contempt)."""
    try:
        return CLASS_TO_INDEX[AFFECTNET_IDS[int(expression_id)]]
    except KeyError:
        raise UnknownLabelError(
            f"AffectNet id {expression_id} is not an emotion (valid: 0-7; 8 None, 9 Uncertain, 10 Non-face)"
        ) from None


def from_fer2013(emotion_id: int) -> int:
    """Canonical index of a FER2013 CSV emotion id (0 Angry ... 6 Neutral)."""
    try:
        return CLASS_TO_INDEX[FER2013_IDS[int(emotion_id)]]
    except KeyError:
        raise UnknownLabelError(f"FER2013 id {emotion_id} is outside 0-6") from None


def class_indices(classes: Iterable[str | int]) -> list[int]:
    """Canonical indices (sorted) of a set of classes given by name, alias or index."""
    return sorted({to_index(c) for c in classes})


def class_set(
    declared: Iterable[str | int] | None = None,
    *,
    available: Iterable[str | int] | None = None,
    within: Iterable[str | int] | None = None,
) -> list[str]:
    """The one rule that decides which classes a model is scored (or trained) on.

    In this order: the ``declared`` list (a config or notebook parameter) if given; else the
    classes ``available`` in the data (the union of the class folders over *all* splits of a
    dataset root, or the emotions of a whole manifest; see :func:`fercore.data.dataset_classes`);
    else all 8. The result is then intersected with ``within`` (the checkpoint's
    ``trained_classes`` when the model was trained on fewer, or a second set's classes).
    A subset of the data that lacks a class by chance is still scored on this full set.

    >>> class_set(available=["happy", "sad", "angry"], within=CLASSES)
    ['Anger', 'Happiness', 'Sadness']
    """
    base = declared if declared is not None else available if available is not None else CLASSES
    chosen = set(class_indices(base))
    if within is not None:
        chosen &= set(class_indices(within))
    if not chosen:
        raise ValueError(
            f"no class left to score: declared={_names(declared)}, available={_names(available)}, within={_names(within)}"
        )
    return [CLASSES[i] for i in sorted(chosen)]


def _names(classes: Iterable[str | int] | None) -> list[str] | None:
    return None if classes is None else [canonical_name(c) for c in classes]


def restrict_logits(
    logits: torch.Tensor | np.ndarray, classes: Sequence[str | int] = SEVEN_CLASSES
) -> torch.Tensor | np.ndarray:
    """Keep only the logit columns of ``classes`` (canonical order): the one restriction.

    Every path that turns logits into a prediction, a probability or a loss (predict,
    evaluate, calibration, training, Grad-CAM targets) goes through this function, so a
    model can never predict a class outside the set (e.g. Contempt on FER2013).
    """
    cols = class_indices(classes)
    if logits.shape[-1] != NUM_CLASSES:
        raise ValueError(f"expected {NUM_CLASSES} logits per row, got {logits.shape[-1]}")
    if isinstance(logits, torch.Tensor):
        return logits[..., torch.as_tensor(cols, device=logits.device)]
    return logits[..., cols]


def predict_restricted(
    logits: torch.Tensor | np.ndarray, classes: Sequence[str | int] = SEVEN_CLASSES
) -> np.ndarray:
    """Canonical class index predicted from 8-class logits when only ``classes`` can occur."""
    cols = np.asarray(class_indices(classes))
    arg = restrict_logits(logits, classes).argmax(-1)
    arg = arg.cpu().numpy() if isinstance(arg, torch.Tensor) else np.asarray(arg)
    return cols[arg]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``logits / temperature`` over the last axis (the largest logit subtracted first)."""
    z = np.asarray(logits) / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def restricted_probabilities(logits: np.ndarray, classes: Sequence[str | int]) -> np.ndarray:
    """N x 8 softmax probabilities over ``classes`` only (0 for the other columns)."""
    cols = class_indices(classes)
    sub = np.asarray(restrict_logits(np.asarray(logits, dtype=np.float64), classes))
    probs = np.zeros(np.asarray(logits).shape, dtype=np.float64)
    probs[..., cols] = softmax(sub)
    return probs


def group_of(label: str | int, groups: dict[str, str] | None = None) -> str:
    """Valence group ('positive', 'negative', 'neutral') of a class."""
    return (groups or EMOTION_GROUPS)[canonical_name(label)]
