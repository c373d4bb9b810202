import pytest
import torch

from fercore import data as D
from fercore.images import Preprocess
from fercore.labels import to_index


def test_discover_maps_aliases_and_sorts(tiny_dataset):
    (tiny_dataset / "train" / "happy" / "notes.txt").write_text("not an image")
    samples = D.discover(tiny_dataset)
    assert list(samples.columns) == D.SAMPLE_COLUMNS
    assert len(samples) == 18
    assert set(samples["emotion"]) == {"Anger", "Happiness", "Sadness"}
    assert (samples.loc[samples.folder == "angry", "label"] == to_index("Anger")).all()
    assert samples["path"].tolist() == sorted(samples["path"].tolist(), key=lambda p: ("/train/" in p, p))
    counts = D.class_counts(samples)
    assert counts.loc["train", "Happiness"] == 4 and counts.loc["test", "Contempt"] == 0
    assert D.present_classes(samples) == ["Anger", "Happiness", "Sadness"]


def test_unknown_folder_lists_accepted_names(tiny_dataset):
    (tiny_dataset / "train" / "grumpy").mkdir()
    with pytest.raises(D.DatasetLayoutError) as err:
        D.discover(tiny_dataset)
    assert "grumpy" in str(err.value) and "surprised" in str(err.value)


def test_missing_root_and_split_are_clear(tmp_path, tiny_dataset):
    with pytest.raises(D.DatasetLayoutError, match="does not exist"):
        D.discover(tmp_path / "nope")
    with pytest.raises(D.DatasetLayoutError, match="no split folder"):
        D.discover(tiny_dataset, ["val"])


def test_dataset_and_seeded_loader(tiny_dataset):
    dataset = D.FaceDataset.from_folder(tiny_dataset, "train", 40)
    x, y = dataset[0]
    assert x.shape == (3, 40, 40) and x.dtype == torch.float32 and y == to_index("Anger")

    def order(seed):
        loader = D.make_loader(dataset, 4, shuffle=True, seed=seed, workers=0)
        return torch.cat([labels for _, labels in loader]).tolist()

    assert order(1) == order(1)
    assert sorted(order(1)) == sorted(dataset.labels.tolist())


def test_dataset_names_the_bad_file(tiny_dataset):
    bad = tiny_dataset / "train" / "sad" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    dataset = D.FaceDataset(D.discover(tiny_dataset, ["train"]), Preprocess(32))
    index = dataset.paths.index(str(bad))
    with pytest.raises(OSError, match="broken.png.*check-data"):
        dataset[index]


def test_stratified_split_keeps_proportions(tiny_dataset):
    samples = D.discover(tiny_dataset, ["train"])
    train, val = D.stratified_split(samples, 0.25, seed=0)
    assert len(train) == 9 and len(val) == 3
    assert sorted(val["emotion"]) == ["Anger", "Happiness", "Sadness"]
    again, _ = D.stratified_split(samples, 0.25, seed=0)
    assert train["path"].tolist() == again["path"].tolist()
