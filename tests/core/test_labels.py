import numpy as np
import pytest
import torch

from fercore.core import labels as L


def test_canonical_order_is_hsemotion_order():
    assert L.CLASSES == ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")
    assert L.SEVEN_CLASSES == ("Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("angry", "Anger"), ("ANGER", "Anger"), ("happy", "Happiness"), ("Happiness", "Happiness"),
        ("sad", "Sadness"), ("sadness", "Sadness"), ("surprise", "Surprise"), ("Surprised", "Surprise"),
        ("fear", "Fear"), ("fearful", "Fear"), ("disgust", "Disgust"), ("disgusted", "Disgust"),
        ("neutral", "Neutral"), ("contempt", "Contempt"), (" Happy ", "Happiness"), ("sur_prise", "Surprise"),
    ],
)
def test_aliases(name, expected):
    assert L.canonical_name(name) == expected
    assert L.to_index(name) == L.CLASSES.index(expected)


def test_unknown_label_lists_accepted_names():
    with pytest.raises(L.UnknownLabelError) as err:
        L.canonical_name("grumpy")
    assert "grumpy" in str(err.value) and "happy" in str(err.value) and "surprised" in str(err.value)
    with pytest.raises(L.UnknownLabelError):
        L.canonical_name(8)


def test_affectnet_ids():
    names = [L.CLASSES[L.from_affectnet(i)] for i in range(8)]
    assert names == ["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger", "Contempt"]
    with pytest.raises(L.UnknownLabelError, match="Non-face"):
        L.from_affectnet(10)


def test_fer2013_ids():
    assert [L.CLASSES[L.from_fer2013(i)] for i in range(7)] == [
        "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Neutral"
    ]


def test_restrict_logits_drops_contempt_before_argmax():
    # Contempt has the largest logit in row 0; restricted to 7 classes the answer is Happiness.
    logits = torch.tensor([[0.0, 9.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0]])
    sub = L.restrict_logits(logits)
    assert sub.shape == (2, 7)
    assert torch.equal(sub[0], torch.tensor([0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0]))
    pred = L.predict_restricted(logits)
    assert pred.tolist() == [L.to_index("Happiness"), L.to_index("Surprise")]
    assert L.CONTEMPT not in L.predict_restricted(np.random.default_rng(0).normal(size=(500, 8)))


def test_restrict_logits_checks_width():
    with pytest.raises(ValueError, match="8 logits"):
        L.restrict_logits(np.zeros((2, 7)))


def test_groups_cover_every_class():
    assert set(L.EMOTION_GROUPS) == set(L.CLASSES)
    assert set(L.EMOTION_GROUPS.values()) == set(L.GROUPS)
    assert L.group_of("happy") == "positive" and L.group_of("angry") == "negative" and L.group_of(5) == "neutral"
    assert L.group_of("surprised", {**L.EMOTION_GROUPS, "Surprise": "neutral"}) == "neutral"
