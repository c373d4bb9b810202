"""The one inference pass: logits and features from one forward pass, the cache and its key, the
caller's model left alone, and every scoring path going through :func:`fercore.inference.infer`."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
import torch

import fercore.inference
from fercore import studies
from fercore.core import audit as inference_audit
from fercore.core.labels import CLASSES
from fercore.data import discover
from fercore.data.images import Preprocess, load_rgb
from fercore.explain import embeddings
from fercore.inference import engine as inference
from fercore.inference.engine import Inference, InferenceCache, infer
from fercore.inference.evaluate import evaluate_folder
from fercore.inference.predictions import predict
from fercore.models import Classifier, create_model, features, load_model, save_model
from fercore.training import experiments


def count_forwards(net: torch.nn.Module) -> list[int]:
    calls: list[int] = []
    net.register_forward_hook(lambda module, inputs, output: calls.append(int(inputs[0].shape[0])))
    return calls


@pytest.mark.parametrize("arch", ["test_efficientnet", "resnet10t"])
def test_one_pass_gives_the_logits_and_the_features_of_the_network(arch, images):
    torch.manual_seed(0)
    net = create_model(arch).eval()
    model = Classifier.wrap(net, image_size=32)
    result = infer(model, images, workers=0, progress=False)
    x = torch.stack([Preprocess(32)(load_rgb(p)) for p in images])
    with torch.inference_mode():
        expected_logits, expected_feats = net(x).numpy(), features(net, x).numpy()
    assert result.logits.shape == (5, 8) and result.features.shape == expected_feats.shape
    assert np.allclose(result.logits, expected_logits, atol=1e-4) and np.allclose(result.features, expected_feats, atol=1e-4)
    assert result.paths == images and result.errors == [""] * 5 and not result.cached


def test_the_cache_answers_the_same_key_and_only_that(tiny_model, images, tmp_path):
    """PyTorch forward passes are counted here; tests/models/test_onnx.py checks the ONNX Runtime backend's key and export."""
    cache = tmp_path / "cache"
    calls = count_forwards(tiny_model.net)
    first = infer(tiny_model, images, workers=0, progress=False, cache_dir=cache, backend="torch")
    assert len(calls) == 1 and not first.cached and len(list(cache.glob("*.npz"))) == 1
    again = infer(tiny_model, images, workers=0, progress=False, cache_dir=cache, backend="torch")
    assert len(calls) == 1 and again.cached  # no forward pass
    assert np.array_equal(again.logits, first.logits) and np.array_equal(again.features, first.features)
    # every part of the key: the size, a transform, the images, the weights
    infer(tiny_model.with_image_size(40), images, workers=0, progress=False, cache_dir=cache, backend="torch")

    class Grey:
        name = "greyscale"

        def __call__(self, image):
            return image.convert("L").convert("RGB")

    grey = infer(tiny_model, images, transform=Grey(), workers=0, progress=False, cache_dir=cache, backend="torch")
    assert not grey.cached and not np.allclose(grey.logits, first.logits)
    infer(tiny_model, images[:4], workers=0, progress=False, cache_dir=cache, backend="torch")
    stamp = time.time() + 5
    os.utime(images[0], (stamp, stamp))  # the file changed (its modification time)
    infer(tiny_model, images, workers=0, progress=False, cache_dir=cache, backend="torch")
    with torch.no_grad():
        next(tiny_model.net.parameters()).add_(0.5)  # new weights in memory
    changed = infer(tiny_model, images, workers=0, progress=False, cache_dir=cache, backend="torch")
    assert not changed.cached and not np.allclose(changed.logits, first.logits)
    assert len(calls) == 6 and len(list(cache.glob("*.npz"))) == 6  # six keys, each computed once


def test_a_damaged_cache_file_is_computed_again(tiny_model, images, tmp_path, caplog):
    first = infer(tiny_model, images, workers=0, progress=False, cache_dir=tmp_path)
    (cached,) = tmp_path.glob("*.npz")
    cached.write_bytes(b"not a numpy file")
    again = infer(tiny_model, images, workers=0, progress=False, cache_dir=tmp_path)
    assert not again.cached and np.allclose(again.logits, first.logits) and "unreadable" in caplog.text


def test_the_callers_model_is_not_moved_or_changed(tiny_model, images):
    tiny_model.net.train()
    before = {k: v.clone() for k, v in tiny_model.net.state_dict().items()}
    infer(tiny_model, images, workers=0, progress=False, device="cpu")
    assert tiny_model.net.training  # the mode is the caller's
    after = tiny_model.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics included
    conv = next(m for m in tiny_model.net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()  # not switched to channels_last in place


def test_unreadable_images_are_rows_with_an_error(tiny_model, images, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    result = infer(tiny_model, [*images, str(broken)], workers=0, progress=False)
    assert result.readable.tolist() == [True] * 5 + [False] and "broken.png" not in result.errors[0]
    assert np.isnan(result.logits[5]).all() and np.isnan(result.features[5]).all() and result.errors[5]
    preds = predict(tiny_model, [*images, str(broken)], workers=0, progress=False)
    assert preds["pred"].isna().tolist() == [False] * 5 + [True]


def test_subset_and_join_keep_rows_in_order(tiny_model, images):
    a = infer(tiny_model, images[:3], workers=0, progress=False)
    b = infer(tiny_model, images[3:], workers=0, progress=False)
    joined = Inference.join([a, b])
    assert joined.paths == images and joined.key is None
    picked = joined.subset([images[4], images[0]])
    assert np.array_equal(picked.logits, np.stack([b.logits[1], a.logits[0]]))
    with pytest.raises(KeyError, match="not part of this inference"):
        joined.subset(["elsewhere.png"])


def test_the_audit_records_passes_and_forward_kinds(tiny_model, images, tmp_path, monkeypatch):
    audit = tmp_path / "audit.jsonl"
    monkeypatch.setenv(inference_audit.AUDIT_ENV, str(audit))
    inference_audit.watch_forward_passes(tiny_model.net, "tiny")
    infer(tiny_model, images, workers=0, progress=False, cache_dir=tmp_path / "c", backend="torch")
    infer(tiny_model, images, workers=0, progress=False, cache_dir=tmp_path / "c", backend="torch")
    with torch.no_grad():
        tiny_model.net(torch.zeros(2, 3, 32, 32))  # a pass outside inference
    log = inference_audit.read_audit(audit)
    calls = log[log["event"] == "infer"]
    assert calls["cached"].tolist() == [False, True] and calls["images"].tolist() == [5, 5]
    forwards = log[log["event"] == "forward"]
    assert forwards[["kind", "batch"]].values.tolist() == [["inference", 5], ["other", 2]]


# ----------------------------------------------------------------------------- one entry point


@pytest.fixture
def small_root(tiny_dataset, tmp_path) -> tuple:
    """tiny_dataset (angry / happy / sad, 2 test images each) and an untrained resnet10t checkpoint."""
    return tiny_dataset, save_model(tmp_path / "c.pt", create_model("resnet10t"), arch="resnet10t", image_size=32)


def test_every_scoring_path_goes_through_the_one_entry_point(small_root, tmp_path, monkeypatch):
    """Replace :func:`fercore.inference.infer` with a fake whose logits always pick Sadness and
    whose features are constant: predict, evaluate, embeddings, cross-validation's scoring and
    the studies' scoring must all show it."""
    root, checkpoint = small_root
    calls: list[int] = []

    def fake_infer(model, samples, **kwargs):
        paths = samples["path"].astype(str).tolist() if isinstance(samples, pd.DataFrame) else [str(p) for p in samples]
        calls.append(len(paths))
        logits = np.zeros((len(paths), len(CLASSES)), dtype=np.float32)
        logits[:, CLASSES.index("Sadness")] = 9.0
        return Inference(paths, logits, np.full((len(paths), 4), 7.0, dtype=np.float32), [""] * len(paths), None,
                         tuple(model.trained_classes))

    monkeypatch.setattr(inference, "infer", fake_infer)  # the implementation, called inside fercore.inference
    monkeypatch.setattr(fercore.inference, "infer", fake_infer)  # the door, called by every other package
    model = load_model(checkpoint)
    test = discover(root, ["test"])

    assert set(predict(model, test, workers=0, progress=False)["pred"]) == {"Sadness"}
    assert evaluate_folder(model, root, tmp_path / "ev", workers=0, progress=False)["accuracy"] == pytest.approx(1 / 3)
    assert (embeddings.extract(model, test, workers=0, progress=False) == 7.0).all()
    scored = experiments.evaluate_parts(checkpoint, {"all": test, "happy": test[test["emotion"] == "Happiness"]},
                                        ["Anger", "Happiness", "Sadness"], workers=0)
    assert scored["all"]["accuracy"] == pytest.approx(1 / 3) and scored["happy"]["accuracy"] == 0.0
    sets = studies.data.test_sets({"tiny": root}, root, max_per_class=None)
    scores = studies.scoring.score_models({"m": model}, sets, InferenceCache(workers=0, progress=False), regime="trained on real")
    assert [s.accuracy for s in scores.values()] == pytest.approx([1 / 3, 1 / 3])
    feats, table = studies.rq4.pair_features(InferenceCache(workers=0, progress=False), model, sets, "tiny")
    assert feats.shape == (len(table), 4) and (feats == 7.0).all()
    assert len(calls) == 8  # predict, evaluate, embeddings, one pass for both CV parts, two sets scored, two for the pair


# --------------------------------------------------------------------------- preprocess: exact | fast


def test_fast_preprocessing_is_its_own_cache_key_and_close_to_exact(tiny_model, images, tmp_path):
    exact = infer(tiny_model, images, workers=0, progress=False, cache_dir=tmp_path, backend="torch")
    fast = infer(tiny_model, images, workers=0, progress=False, cache_dir=tmp_path, backend="torch", preprocess="fast")
    assert exact.key.preprocessing == "pil-bilinear-antialias+imagenet-norm"
    assert fast.key.preprocessing == "torch-bilinear-antialias-rounded+imagenet-norm" and not fast.cached
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert np.abs(fast.logits - exact.logits).max() < 0.05 * np.abs(exact.logits).max()
    assert infer(tiny_model, images, workers=0, progress=False, cache_dir=tmp_path, backend="torch", preprocess="fast").cached
    with pytest.raises(ValueError, match="preprocess must be one of exact, fast"):
        infer(tiny_model, images, workers=0, progress=False, preprocess="gpu")


def test_fast_preprocessing_keeps_unreadable_rows_and_mixed_sizes(tiny_model, images, tmp_path):
    from conftest import pattern_image

    big = tmp_path / "big.png"
    pattern_image(300, 200, seed=9).save(big)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    paths = [images[0], str(big), str(broken), images[1]]
    result = infer(tiny_model, paths, workers=0, progress=False, backend="torch", preprocess="fast", batch_size=4)
    alone = [infer(tiny_model, [p], workers=0, progress=False, backend="torch", preprocess="fast") for p in (images[0], str(big))]
    assert result.errors[2].startswith("UnidentifiedImageError") and np.isnan(result.logits[2]).all()
    np.testing.assert_allclose(result.logits[[0, 1]], np.concatenate([a.logits for a in alone]), atol=1e-5)


@pytest.mark.slow
def test_fast_and_exact_agree_on_fer2013_val(fer2013_root, fer2013_small_model):
    """Top-1 agreement of `fast` and `exact` on all 3,589 FER2013 `val` faces (48 px grey JPEG, upsampled
    to 56), with a trained, non-degenerate model: >= 99.5 % (measured: 99.78 %, 8 of 3,589 differ;
    the model's logits are flat: largest |logit| 2.3, largest logit difference 0.007)."""
    samples = discover(fer2013_root, ["val"])
    classes = ["Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
    runs = {mode: predict(fer2013_small_model, samples, classes=classes, workers=0, progress=False, backend="torch",
                          preprocess=mode) for mode in ("exact", "fast")}
    exact, fast = runs["exact"], runs["fast"]
    assert (exact["error"] == "").all() and len(exact) == 3589
    shares = exact["pred"].value_counts(normalize=True)
    assert shares.max() <= 0.6 and len(shares) >= 4, shares.to_dict()  # not degenerate
    assert (exact["pred"] == exact["label"]).mean() > 0.18  # better than chance (1/7)
    agreement = float((exact["pred"] == fast["pred"]).mean())
    assert agreement >= 0.995, agreement
    logit_cols = [f"logit_{c}" for c in classes]
    assert np.abs(exact[logit_cols].to_numpy() - fast[logit_cols].to_numpy()).max() < 0.05
