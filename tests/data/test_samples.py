import pytest
import torch
from conftest import pattern_image
from torch.utils.data import DataLoader

from fercore.core.labels import to_index
from fercore.data import loading as LD
from fercore.data import samples as D
from fercore.data import splits as SP
from fercore.data.images import Preprocess


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
    dataset = LD.FaceDataset.from_folder(tiny_dataset, "train", 40)
    x, y = dataset[0]
    assert x.shape == (3, 40, 40) and x.dtype == torch.float32 and y == to_index("Anger")

    def order(seed):
        loader = LD.make_loader(dataset, 4, shuffle=True, seed=seed, workers=0)
        return torch.cat([labels for _, labels in loader]).tolist()

    assert order(1) == order(1)
    assert sorted(order(1)) == sorted(dataset.labels.tolist())


def test_dataset_names_the_bad_file(tiny_dataset):
    bad = tiny_dataset / "train" / "sad" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    dataset = LD.FaceDataset(D.discover(tiny_dataset, ["train"]), Preprocess(32))
    index = dataset.paths.index(str(bad))
    with pytest.raises(OSError, match="broken.png.*check-data"):
        dataset[index]


def test_stratified_split_keeps_proportions(tiny_dataset):
    samples = D.discover(tiny_dataset, ["train"])
    train, val = SP.stratified_split(samples, 0.25, seed=0)
    assert len(train) == 9 and len(val) == 3
    assert sorted(val["emotion"]) == ["Anger", "Happiness", "Sadness"]
    again, _ = SP.stratified_split(samples, 0.25, seed=0)
    assert train["path"].tolist() == again["path"].tolist()


def test_size_buckets_keep_the_batch_order_of_mixed_sizes():
    from fercore.data.images import native_uint8

    pictures = [pattern_image(w, h, seed=i) for i, (w, h) in enumerate([(48, 48), (400, 300), (48, 48), (90, 60), (400, 300)])]
    batch = LD.collate_native([(native_uint8(p), i, f"f{i}") for i, p in enumerate(pictures)])
    buckets, index, names = batch
    assert isinstance(buckets, LD.SizeBuckets) and len(buckets) == 5 and index.tolist() == [0, 1, 2, 3, 4]
    assert list(names) == ["f0", "f1", "f2", "f3", "f4"]
    assert [(rows.tolist(), tuple(images.shape)) for rows, images in buckets.groups] == [
        ([0, 2], (2, 3, 48, 48)), ([1, 4], (2, 3, 300, 400)), ([3], (1, 3, 60, 90))]
    fast = LD.InputPipeline("fast", 64)
    together = fast.prepare(buckets, "cpu")
    one_by_one = torch.cat([fast.prepare(LD.collate_native([(native_uint8(p),)])[0], "cpu") for p in pictures])
    assert together.shape == (5, 3, 64, 64) and torch.equal(together, one_by_one)
    exact = LD.InputPipeline("exact", 64)
    reference = exact.prepare(exact.collate([(exact.item(p),) for p in pictures])[0], "cpu")
    assert float((together - reference).abs().max()) <= 2 / (255 * 0.224) + 1e-6
    assert fast.prepare(buckets, "cpu", channels_last=True).is_contiguous(memory_format=torch.channels_last)


def test_input_pipeline_modes_and_training_batches(tiny_dataset):
    samples = D.discover(tiny_dataset, ["train"])
    with pytest.raises(ValueError, match="preprocess must be one of exact, fast"):
        LD.InputPipeline("turbo", 32)
    assert LD.InputPipeline("exact").name != LD.InputPipeline("fast").name
    for mode in ("exact", "fast"):
        for augment in (False, True):
            pipe = LD.InputPipeline(mode, 40, augment=augment)
            loader = DataLoader(LD.FaceDataset(samples, pipe.item), batch_size=5, collate_fn=pipe.collate)
            x, y = next(iter(loader))
            assert isinstance(x, LD.SizeBuckets) == (mode == "fast")
            ready = pipe.prepare(x, "cpu", generator=torch.Generator().manual_seed(0))
            assert ready.shape == (5, 3, 40, 40) and ready.dtype == torch.float32 and y.shape == (5,)
            assert -2.2 < float(ready.min()) and float(ready.max()) < 2.7  # ImageNet-normalised 0-255 values
