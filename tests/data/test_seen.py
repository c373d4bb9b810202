"""Which real faces each model saw: a fercore checkpoint records its training and selection splits (and inherits its
starting weights'); a foreign file is declared; unseen_real_faces returns the rest or says what to provide."""

from __future__ import annotations

import shutil

import pytest

from fercore import training as T
from fercore.data import NoUnseenFacesError, SeenSplit, discover, parse_seen, unseen_real_faces
from fercore.models import load_model
from fercore.studies.regimes import model_specs
from fercore.training.loop import seen_metadata


def tiny_config(root):
    return T.TrainConfig(experiment="seen", data_root=str(root), val_fraction=0.34, arch="resnet10t", image_size=32, batch_size=8,
                         epochs=1, workers=0, progress=False, class_weights=False)


def test_checkpoints_record_what_they_saw_and_inherit_it(tiny_dataset, tmp_path):
    first = T.train(tiny_config(tiny_dataset), out=tmp_path / "a").run_dir / "checkpoint.pt"
    facts = load_model(first).facts
    assert {(s.dataset, s.split, s.role) for s in facts.seen} == {(str(tiny_dataset), "train", "train"),
                                                                 (str(tiny_dataset), "train", "selection")}
    counts = facts.metadata["class_counts"]
    assert set(counts) == {"Anger", "Happiness", "Sadness"} and sum(counts.values()) + 3 <= 12  # the selection part is not counted
    assert facts.training_counts(["Anger", "Happiness", "Sadness"]) == [float(counts[c]) for c in ("Anger", "Happiness", "Sadness")]
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    train = discover(other, ["train"])  # a run fine-tuning the first checkpoint on another set: what its checkpoint stores
    second = seen_metadata(str(first), train, train.iloc[:0])
    assert second["seen_complete"] and {(s["dataset"], s["split"]) for s in second["seen"]} == {(str(tiny_dataset), "train"),
                                                                                                (str(other), "train")}
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(b"not a checkpoint")
    assert seen_metadata(str(foreign), train, train.iloc[:0])["seen_complete"] is False  # the parameter file declares it then


def test_unseen_real_faces_leave_out_every_seen_split(tiny_dataset, tmp_path):
    other = tmp_path / "affectnet"
    shutil.copytree(tiny_dataset / "train", other / "train")
    shutil.copytree(tiny_dataset / "test", other / "holdout")
    roots = {"fer": tiny_dataset, "affectnet": other}
    seen = {"b0": [SeenSplit(str(tiny_dataset), "train", "train")], "hsemotion": parse_seen(["AffectNet:train"])}
    faces = unseen_real_faces(roots, seen, exclude_splits=["test"])
    assert sorted(set(zip(faces["dataset"], faces["split"], strict=True))) == [("affectnet", "holdout")] and len(faces) == 6
    assert len(unseen_real_faces(roots, seen)) == 12  # fer/test and affectnet/holdout when the test split is not kept apart
    with pytest.raises(NoUnseenFacesError, match=r"declare it in the parameter file's models entry, e.g. seen: \[\"affectnet:train\"\]"):
        unseen_real_faces(roots, {**seen, "enet_b2": None})
    with pytest.raises(NoUnseenFacesError, match=r"taken fer/train \(b0\), affectnet/holdout \(b2\), affectnet/train \(hsemotion\); excluded test. Set a split aside"):
        unseen_real_faces(roots, {**seen, "b2": parse_seen(["affectnet:holdout"])}, exclude_splits=["test"])
    with pytest.raises(ValueError, match="not 'dataset:split'"):
        parse_seen(["affectnet"])


def test_parameter_file_declares_a_foreign_files_seen_splits(tmp_path):
    specs = model_specs({"b0": {"weights": "enet_b0_8_best_afew.pt", "trust_pickle": True, "seen": "affectnet:train"}})
    assert specs["b0"].seen == ("affectnet:train",)
    with pytest.raises(ValueError, match="models.b2.seen"):
        model_specs({"b2": {"weights": "x.pt", "seen": ["affectnet"]}})


def test_a_models_seen_splits_join_record_and_declaration():
    from fercore.models import Classifier
    from fercore.models.classifier import ModelFacts

    foreign = Classifier(None, ModelFacts("efficientnet_b0", 224, ()))
    recorded = Classifier(None, ModelFacts("resnet10t", 32, (), metadata={"seen": [{"dataset": "/d/fer", "split": "train"}]}))
    partial = Classifier(None, ModelFacts("resnet10t", 32, (), metadata={"seen": [], "seen_complete": False}))
    declared, bare = model_specs({"hs": {"weights": "a.pt", "seen": ["affectnet:train"]}, "x": {"weights": "b.pt"}}).values()
    assert bare.seen_by(foreign) is None and bare.seen_by(partial) is None
    assert [(s.dataset, s.split, s.role) for s in declared.seen_by(foreign)] == [("affectnet", "train", "declared")]
    assert [(s.dataset, s.split) for s in declared.seen_by(recorded)] == [("/d/fer", "train"), ("affectnet", "train")]
