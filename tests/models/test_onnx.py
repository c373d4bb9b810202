"""ONNX Runtime as the CPU inference backend: the same logits and features as PyTorch, one export per
(weights, size) reused, a stale or altered export never used, a failed check never trusted,
the audit counting its runs, CUDA left to PyTorch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fercore.core import audit as inference_audit
from fercore.data import discover
from fercore.inference import engine as inference
from fercore.inference.engine import infer
from fercore.inference.predictions import predict
from fercore.models import Classifier, create_model
from fercore.models import onnx as export
from fercore.models import onnx as onnxrt

pytest.importorskip("onnxruntime")


@pytest.fixture
def exports(monkeypatch) -> list[str]:
    """Records every export made (the file written)."""
    made: list[str] = []
    real = export.export_module

    def counting(module, example, out, output_names, **kwargs):
        made.append(str(out))
        return real(module, example, out, output_names, **kwargs)

    monkeypatch.setattr(export, "export_module", counting)
    return made


def onnx_files(cache) -> list:
    return sorted((cache / "onnx").glob("*.onnx"))


@pytest.mark.parametrize("arch", ["test_efficientnet", "resnet10t"])
def test_onnxruntime_gives_the_logits_and_features_of_pytorch(arch, images, tmp_path):
    torch.manual_seed(0)
    model = Classifier.wrap(create_model(arch).eval(), image_size=32)
    with torch.no_grad():  # BatchNorm statistics away from 0 / 1, so a wrong fold of them shows
        for module in model.net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    ref = infer(model, images, workers=0, progress=False, backend="torch")
    got = infer(model, images, workers=0, progress=False, backend="onnxruntime", cache_dir=tmp_path / "c")
    assert ref.key.backend == "torch" and got.key.backend == "onnxruntime" and ref.key.digest() != got.key.digest()
    assert got.logits.shape == ref.logits.shape and got.features.shape == ref.features.shape
    assert np.abs(got.logits - ref.logits).max() < 1e-4 and np.abs(got.features - ref.features).max() < 1e-4
    assert np.abs(ref.logits).max() > 0.01  # the comparison is between numbers that are not all zero
    assert (got.logits.argmax(1) == ref.logits.argmax(1)).all()
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "c" / "onnx").glob("*.json")]
    assert record["parity"]["ok"] and record["parity"]["images"] == 5 and record["parity"]["max_abs_logit"] < 1e-4


def test_auto_is_onnxruntime_on_cpu_and_pytorch_on_cuda(tiny_model, images):
    assert onnxrt.resolve_backend("auto", torch.device("cpu")) == onnxrt.CPU_DEFAULT
    assert onnxrt.resolve_backend("auto", torch.device("cuda")) == "torch"
    assert onnxrt.resolve_backend("torch", torch.device("cpu")) == "torch"
    with pytest.raises(ValueError, match="CPU only"):
        onnxrt.resolve_backend("onnxruntime", torch.device("cuda"))
    with pytest.raises(ValueError, match="unknown inference backend"):
        onnxrt.resolve_backend("tensorrt", torch.device("cpu"))
    assert infer(tiny_model, images, workers=0, progress=False).key.backend == onnxrt.CPU_DEFAULT
    plain = Classifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 8)).eval(), tiny_model.facts)
    assert not onnxrt.exportable(plain.net) and onnxrt.exportable(tiny_model.net)  # auto keeps such a network on PyTorch
    with pytest.raises(ValueError, match="cannot be exported"):
        infer(plain, images, workers=0, progress=False, backend="onnxruntime")


def test_one_export_per_weights_and_size_and_a_stale_one_is_never_used(tiny_model, images, tmp_path, exports):
    cache = tmp_path / "c"
    first = infer(tiny_model, images, workers=0, progress=False, backend="onnxruntime", cache_dir=cache)
    again = infer(tiny_model, images[:3], workers=0, progress=False, backend="onnxruntime", cache_dir=cache)
    assert len(exports) == 1 and np.allclose(again.logits, first.logits[:3], atol=1e-6)  # other images: export reused
    resized = tiny_model.with_image_size(40)
    at_40 = infer(resized, images, workers=0, progress=False, backend="onnxruntime", cache_dir=cache)
    assert len(exports) == 2 and np.allclose(at_40.logits, infer(resized, images, workers=0, progress=False, backend="torch").logits,
                                             atol=1e-4)
    with torch.no_grad():
        next(tiny_model.net.parameters()).add_(0.5)  # other weights, same architecture and size
    changed = infer(tiny_model, images, workers=0, progress=False, backend="onnxruntime", cache_dir=cache)
    expected = infer(tiny_model, images, workers=0, progress=False, backend="torch")
    assert len(exports) == 3 and len(onnx_files(cache)) == 3
    assert np.allclose(changed.logits, expected.logits, atol=1e-4) and not np.allclose(changed.logits, first.logits, atol=1e-3)


def test_an_export_altered_on_disk_is_made_again(tiny_model, images, tmp_path, exports):
    """An export file replaced by another model's graph (same key, other bytes) is not trusted."""
    cache = tmp_path / "c"
    infer(tiny_model, images, workers=0, progress=False, backend="onnxruntime", cache_dir=cache)
    (mine,) = onnx_files(cache)
    torch.manual_seed(1)
    other = Classifier.wrap(create_model("test_efficientnet").eval(), image_size=32)
    infer(other, images, workers=0, progress=False, backend="onnxruntime", cache_dir=cache)
    (theirs,) = [p for p in onnx_files(cache) if p != mine]
    mine.write_bytes(theirs.read_bytes())
    result = infer(tiny_model, images[:4], workers=0, progress=False, backend="onnxruntime", cache_dir=cache)
    assert len(exports) == 3 and exports[-1] == str(mine)
    expected = infer(tiny_model, images[:4], workers=0, progress=False, backend="torch")
    assert np.allclose(result.logits, expected.logits, atol=1e-4)


def test_an_export_that_fails_the_check_is_refused_or_replaced_by_pytorch(tiny_model, images, tmp_path, monkeypatch, caplog):
    real_forward = onnxrt.LogitsAndFeatures.forward

    def off_by_one(self, x):
        logits, feats = real_forward(self, x)
        return logits + 1.0, feats

    monkeypatch.setattr(onnxrt.LogitsAndFeatures, "forward", off_by_one)
    cache = tmp_path / "c"
    with pytest.raises(onnxrt.OnnxParityError, match="differs from PyTorch"):
        infer(tiny_model, images, workers=0, progress=False, backend="onnxruntime", cache_dir=cache)
    (record,) = [json.loads(p.read_text()) for p in (cache / "onnx").glob("*.json")]
    assert not record["parity"]["ok"] and record["parity"]["max_abs_logit"] == pytest.approx(1.0, abs=1e-4)
    result = infer(tiny_model, images, workers=0, progress=False, backend="auto", cache_dir=cache)
    assert result.key.backend == "torch" and "this pass runs on PyTorch" in caplog.text
    assert np.allclose(result.logits, infer(tiny_model, images, workers=0, progress=False, backend="torch").logits)
    assert len(list(cache.glob("*.npz"))) == 1  # stored under the PyTorch key it was computed with


def test_cached_results_are_per_backend(tiny_model, images, tmp_path):
    cache = tmp_path / "c"
    ort = infer(tiny_model, images, workers=0, progress=False, backend="onnxruntime", cache_dir=cache)
    assert infer(tiny_model, images, workers=0, progress=False, backend="onnxruntime", cache_dir=cache).cached
    pt = infer(tiny_model, images, workers=0, progress=False, backend="torch", cache_dir=cache)
    assert not pt.cached and not ort.cached and len(list(cache.glob("*.npz"))) == 2


def test_the_audit_counts_runs_of_the_export_and_names_the_check(tiny_model, images, tmp_path, monkeypatch):
    audit = tmp_path / "audit.jsonl"
    monkeypatch.setenv(inference_audit.AUDIT_ENV, str(audit))
    inference_audit.watch_forward_passes(tiny_model.net, "tiny")
    infer(tiny_model, images, workers=0, progress=False, batch_size=4, backend="onnxruntime", cache_dir=tmp_path / "c")
    infer(tiny_model, images, workers=0, progress=False, batch_size=4, backend="onnxruntime", cache_dir=tmp_path / "c")
    infer(tiny_model, images[:3], workers=0, progress=False, batch_size=4, backend="onnxruntime", cache_dir=tmp_path / "c")
    log = inference_audit.read_audit(audit)
    assert log[log["event"] == "infer"]["cached"].tolist() == [False, True, False]
    forwards = log[log["event"] == "forward"]
    # the PyTorch check on the first batch of the first pass only; then the export's runs, batch by batch
    assert forwards[["kind", "batch"]].values.tolist() == [["onnx-parity", 4], ["inference", 4], ["inference", 1],
                                                           ["inference", 3]]
    assert set(forwards["model"]) == {"tiny"}


def test_threads_follow_the_machine_or_the_option(tiny_model, images, tmp_path):
    x = torch.randn(2, 3, 32, 32)
    reference = inference.TorchRunner(tiny_model.net, torch.device("cpu"))
    default = onnxrt.OrtRunner(tiny_model.net, 32, "w", tmp_path)
    default.prepare(x, reference)
    assert default.session.get_session_options().intra_op_num_threads == onnxrt.cpu_cores()
    one = onnxrt.OrtRunner(tiny_model.net, 32, "w", tmp_path, threads=1)
    one.prepare(x, reference)
    assert one.session.get_session_options().intra_op_num_threads == 1


def test_predict_on_real_fer2013_faces_agrees_with_pytorch(fer2013_root, tmp_path):
    """Real 48 px faces (grey, upscaled): the same predictions and logits from both backends."""
    samples = discover(fer2013_root, ["val"]).groupby("emotion").head(6).reset_index(drop=True)
    torch.manual_seed(0)
    model = Classifier.wrap(create_model("test_efficientnet").eval(), image_size=48)
    ref = predict(model, samples, workers=0, progress=False, backend="torch")
    got = predict(model, samples, workers=0, progress=False, backend="onnxruntime", cache_dir=tmp_path / "c")
    logit_columns = [c for c in ref.columns if c.startswith("logit_")]
    assert (got["pred"] == ref["pred"]).all() and (got["error"] == "").all()
    assert np.abs(got[logit_columns].to_numpy() - ref[logit_columns].to_numpy()).max() < 1e-4
