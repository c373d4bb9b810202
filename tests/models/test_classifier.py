"""Model building and weight loading, on checkpoints the tests write in every format seen in practice."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import pytest
import timm
import torch
from torch import nn

from fercore.core.labels import CLASSES
from fercore.models import architectures as A
from fercore.models import classifier as M
from fercore.models import weights as W

X64 = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def randomised(model: nn.Module, seed: int = 1) -> nn.Module:
    """Perturb every parameter and BN statistic so that a load that silently fails is visible."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=gen) * 0.05
                tensor.copy_(tensor.abs() + 0.5 + noise if "running_var" in name else tensor + noise)
    return model.eval()


def logits(model: nn.Module, x: torch.Tensor = X64) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(x)


@pytest.fixture(scope="module")
def b0_source() -> nn.Module:
    return randomised(timm.create_model("tf_efficientnet_b0", num_classes=8))


# ----------------------------------------------------------------------------- names and sizes


@pytest.mark.parametrize(
    "name, expected",
    [
        ("tf_efficientnet_b0_ns", "tf_efficientnet_b0"),
        ("tf_efficientnet_b2_ns", "tf_efficientnet_b2"),
        ("tf_efficientnet_b0.ns_jft_in1k", "tf_efficientnet_b0"),
        ("b0", "tf_efficientnet_b0"),
        ("B2", "tf_efficientnet_b2"),
        ("efficientnet_b0", "efficientnet_b0"),
    ],
)
def test_resolve_arch(name, expected):
    assert A.resolve_arch(name) == expected


def test_unknown_arch_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown architecture 'enet_b9'"):
        A.resolve_arch("enet_b9")


def test_default_image_sizes_follow_hsemotion():
    assert A.default_image_size("tf_efficientnet_b0_ns") == 224
    assert A.default_image_size("b2") == 260


@pytest.mark.parametrize("arch, features", [("tf_efficientnet_b0_ns", 1280), ("tf_efficientnet_b2_ns", 1408)])
def test_create_and_feature_shapes(arch, features):
    model = A.create_model(arch).eval()
    assert model.num_classes == 8
    with torch.inference_mode():
        assert tuple(model(X64).shape) == (2, 8)
        assert tuple(A.features(model, X64).shape) == (2, features)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("arch", ["tf_efficientnet_b0", "tf_efficientnet_b2"])
def test_state_dict_round_trip(tmp_path, arch):
    source = randomised(timm.create_model(arch, num_classes=8))
    path = tmp_path / "state.pt"
    torch.save(source.state_dict(), path)
    model = A.create_model(arch)
    report = W.load_weights(model, path)
    assert report.format == "state_dict"
    assert report.head == "loaded"
    assert torch.allclose(logits(model), logits(source), atol=1e-5)


@pytest.mark.parametrize("family", ["b0", "b2"])
def test_vggface2_backbone_only_gets_a_fresh_head(tmp_path, family):
    backbone = randomised(timm.create_model(f"tf_efficientnet_{family}", num_classes=1000), seed=3)
    backbone.classifier = nn.Identity()  # how state_vggface2_enet0_new.pt was saved
    path = tmp_path / "state_vggface2_enet0_new.pt"
    torch.save(backbone.state_dict(), path)
    assert not any(k.startswith("classifier") for k in torch.load(path, weights_only=True))
    model = A.create_model(f"tf_efficientnet_{family}_ns", num_classes=7)
    assert W.load_weights(model, path).head == "fresh: file has no head"
    with torch.inference_mode():
        assert torch.allclose(A.features(model.eval(), X64), backbone(X64), atol=1e-5)
        assert tuple(model(X64).shape) == (2, 7)
    with pytest.raises(W.WeightsError, match="backbone-only"):
        A.create_model(family, weights=path, head="load")


def test_wrapper_prefix_and_sequential_head_are_remapped(tmp_path, b0_source):
    state = {f"module.{k.replace('classifier.', 'classifier.0.')}": v for k, v in b0_source.state_dict().items()}
    path = tmp_path / "dataparallel.pt"
    torch.save({"epoch": 5, "state_dict": state, "best_acc": 0.61}, path)
    model = A.create_model("b0")
    report = W.load_weights(model, path)
    assert report.format == "training_checkpoint" and report.renamed == len(state)
    assert torch.allclose(logits(model), logits(b0_source), atol=1e-5)
    assert W.read_checkpoint(path).metadata == {"epoch": 5, "best_acc": 0.61}


def test_checkpoint_without_num_batches_tracked_loads(tmp_path, b0_source):
    state = {k: v for k, v in b0_source.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pt")
    model = A.create_model("b0", weights=tmp_path / "old.pt")
    assert torch.allclose(logits(model), logits(b0_source), atol=1e-5)


def test_safetensors_round_trip(tmp_path, b0_source):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in b0_source.state_dict().items()}, tmp_path / "w.safetensors")
    model = A.create_model("b0", weights=tmp_path / "w.safetensors")
    assert torch.allclose(logits(model), logits(b0_source), atol=1e-5)


# ----------------------------------------------------------------------------- pickled HSEmotion-style


@pytest.mark.parametrize("family", ["b0", "b2"])
def test_pickled_module_needs_trust(tmp_path, family):
    source = randomised(timm.create_model(f"tf_efficientnet_{family}", num_classes=8))
    expected = logits(source)
    source.classifier = nn.Sequential(source.classifier)  # HSEmotion's head
    path = tmp_path / f"enet_{family}_8_best_afew.pt"
    torch.save(source, path)
    with pytest.raises(W.UntrustedCheckpointError) as err:
        A.create_model(f"tf_efficientnet_{family}_ns", weights=path)
    message = str(err.value)
    assert str(path) in message and "trust_pickle=True" in message and "fercore weights convert" in message
    model = A.create_model(f"tf_efficientnet_{family}_ns")
    assert W.load_weights(model, path, trust_pickle=True).format == "pickled_module"
    assert torch.allclose(logits(model), expected, atol=1e-5)


OLD_TIMM_SCRIPT = textwrap.dedent(
    """
    # Pickle a B0 whose classes live in a module that will not exist when the file is loaded,
    # shaped like timm 0.4.5's: SqueezeExcite holds gate_fn (a function) instead of a gate module.
    import sys, types, torch, timm
    from torch import nn
    out = sys.argv[1]
    old = types.ModuleType("old_timm_045")
    sys.modules["old_timm_045"] = old
    def sigmoid(x):
        return x.sigmoid()
    sigmoid.__module__ = "old_timm_045"
    old.sigmoid = sigmoid
    torch.manual_seed(7)
    model = timm.create_model("tf_efficientnet_b0", num_classes=8)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.classifier = nn.Sequential(model.classifier)
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.save({"x": x, "logits": model(x)}, out + "/reference.pt")
    made = {}
    for m in model.modules():
        cls = type(m)
        if cls.__module__.startswith("timm"):
            if cls not in made:
                made[cls] = type(cls.__name__, (cls,), {"__module__": "old_timm_045"})
                setattr(old, cls.__name__, made[cls])
            m.__class__ = made[cls]
        if cls.__name__ == "SqueezeExcite":
            del m.gate
            m.gate_fn = sigmoid
    torch.save(model, out + "/enet_b0_8_old_timm.pt")
    """
)


def test_pickled_module_with_unimportable_classes(tmp_path):
    script = tmp_path / "make_old.py"
    script.write_text(OLD_TIMM_SCRIPT)
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, timeout=120)
    path = tmp_path / "enet_b0_8_old_timm.pt"
    assert "old_timm_045" not in sys.modules
    with pytest.raises(ModuleNotFoundError):  # what a plain torch.load does with such a file
        torch.load(path, weights_only=False)
    with pytest.raises(W.UntrustedCheckpointError):
        W.read_checkpoint(path)
    ckpt = W.read_checkpoint(path, trust_pickle=True)
    assert ckpt.format == "pickled_module"
    assert "old_timm_045.SqueezeExcite" in ckpt.module_classes
    reference = torch.load(tmp_path / "reference.pt", weights_only=True)
    model = A.create_model("tf_efficientnet_b0_ns", weights=path, trust_pickle=True)
    assert torch.allclose(logits(model, reference["x"]), reference["logits"], atol=1e-5)
    info = W.inspect_weights(path, trust_pickle=True)
    assert info.arch_guess == "tf_efficientnet_b0"  # Conv2dSame seen in the pickle
    assert info.head_classes == 8


# ----------------------------------------------------------------------------- errors


def test_wrong_head_size_is_a_clear_error(tmp_path):
    seven = randomised(timm.create_model("tf_efficientnet_b0", num_classes=7))
    torch.save(seven.state_dict(), tmp_path / "b0_7.pt")
    with pytest.raises(W.WeightsError) as err:
        A.create_model("b0", num_classes=8, weights=tmp_path / "b0_7.pt")
    assert "7-class head" in str(err.value) and "head='fresh'" in str(err.value) and "b0_7.pt" in str(err.value)
    model = A.create_model("b0", num_classes=8)
    assert W.load_weights(model, tmp_path / "b0_7.pt", head="fresh").head == "fresh: replaced as asked"
    with torch.inference_mode():
        assert torch.allclose(A.features(model.eval(), X64), A.features(seven, X64), atol=1e-5)


def test_wrong_architecture_is_a_clear_error(tmp_path):
    b2 = timm.create_model("tf_efficientnet_b2", num_classes=8)
    torch.save(b2.state_dict(), tmp_path / "b2.pt")
    with pytest.raises(W.WeightsError) as err:
        A.create_model("b0", weights=tmp_path / "b2.pt")
    message = str(err.value)
    assert "b2.pt does not fit tf_efficientnet_b0" in message
    assert "looks like tf_ or plain efficientnet_b2" in message and "mismatched" in message


def test_not_a_weight_file(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    with pytest.raises(W.WeightsError, match="notes.pt is not a PyTorch weight file"):
        A.create_model("b0", weights=bad)
    with pytest.raises(W.WeightsError, match="does not exist"):
        A.create_model("b0", weights=tmp_path / "missing.pt")


# ----------------------------------------------------------------------------- inspect / convert


def test_inspect_weights(tmp_path, b0_source):
    path = tmp_path / "b0.pt"
    torch.save(b0_source.state_dict(), path)
    info = W.inspect_weights(path)
    assert info.format == "state_dict"
    assert info.arch_guess == "tf_ or plain efficientnet_b0"
    assert info.tensors == len(b0_source.state_dict())
    assert info.head_classes == 8 and info.num_features == 1280
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_convert_pickled_to_plain_state_dict(tmp_path, b0_source):
    src, dst = tmp_path / "enet.pt", tmp_path / "enet_state.pt"
    torch.save(b0_source, src)
    W.convert_weights(src, dst, trust_pickle=True)
    state = torch.load(dst, weights_only=True)
    assert set(state) == set(b0_source.state_dict())
    model = A.create_model("b0", weights=dst)
    assert torch.allclose(logits(model), logits(b0_source), atol=1e-5)
    with pytest.raises(FileExistsError, match="--force"):
        W.convert_weights(src, dst, trust_pickle=True)
    with pytest.raises(W.UntrustedCheckpointError):
        W.convert_weights(src, tmp_path / "other.pt")


# ----------------------------------------------------------------------------- freezing, saving


def test_set_trainable_stages():
    model = A.create_model("b0")
    head = sum(p.numel() for p in model.classifier.parameters())
    assert A.set_trainable(model, "head") == head == 1280 * 8 + 8
    assert all(not p.requires_grad for p in model.blocks.parameters())
    last_two = A.set_trainable(model, 2)
    expected = head + sum(p.numel() for m in (model.conv_head, model.bn2, model.blocks[-2], model.blocks[-1]) for p in m.parameters())
    assert last_two == expected
    assert A.set_trainable(model, "all") == sum(p.numel() for p in model.parameters())
    assert A.set_trainable(model, "none") == 0
    with pytest.raises(ValueError):
        A.set_trainable(model, 99)


def test_train_mode_keeps_frozen_batchnorm_statistics():
    model = A.create_model("b0")
    A.set_trainable(model, "head")
    A.train_mode(model)
    assert model.classifier.training
    assert not model.bn1.training and not model.blocks[0][0].bn1.training
    before = model.bn1.running_mean.clone()
    model(torch.randn(4, 3, 64, 64))
    assert torch.equal(before, model.bn1.running_mean)
    A.set_trainable(model, "all")
    A.train_mode(model)
    assert model.bn1.training


def test_save_and_load_model(tmp_path, b0_source):
    path = M.save_model(tmp_path / "checkpoint.pt", b0_source, arch="b0", image_size=224, best_epoch=3)
    payload = torch.load(path, weights_only=True)  # safe to load without trust
    assert payload["arch"] == "tf_efficientnet_b0" and payload["image_size"] == 224 and payload["best_epoch"] == 3
    model = M.load_model(path)
    assert torch.allclose(logits(model.net), logits(b0_source), atol=1e-5)
    assert model.facts.metadata["classes"][1] == "Contempt" and model.arch == "tf_efficientnet_b0"
    assert model.image_size == 224 and model.trained_classes == list(CLASSES) and model.facts.weights == str(path)
    assert not hasattr(model.net, "fercore_metadata") and not hasattr(model.net, "fercore_arch")  # facts live beside the net
    with pytest.raises(FileExistsError):
        M.save_model(path, b0_source, arch="b0", image_size=224)


def test_load_classifier_from_a_fercore_checkpoint_and_a_state_dict(tmp_path):
    model = A.create_model("resnet10t")
    M.save_model(tmp_path / "m.pt", model, arch="resnet10t", image_size=48, trained_classes=["Anger", "Happiness", "Sadness"])
    loaded = M.load_classifier(tmp_path / "m.pt", "b0")  # the checkpoint's own architecture wins
    assert loaded.arch == "resnet10t" and loaded.image_size == 48 and loaded.trained_classes == ["Anger", "Happiness", "Sadness"]
    assert M.load_classifier(tmp_path / "m.pt", image_size=64).image_size == 64
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    plain = M.load_classifier(tmp_path / "plain.pt", "resnet10t")
    assert plain.image_size == A.default_image_size("resnet10t") == 176 and len(plain.trained_classes) == 8
    assert plain.facts.training_config == {} and plain.facts.load_report.format == "state_dict"
    with pytest.raises(W.WeightsError, match="give arch"):
        M.load_classifier(tmp_path / "plain.pt")
    with pytest.raises(W.WeightsError, match="no 'arch' metadata"):
        M.load_model(tmp_path / "plain.pt")
    wrapped = M.Classifier.wrap(model, image_size=32)
    assert wrapped.arch == "resnet10t" and wrapped.image_size == 32 and wrapped.with_image_size(40).image_size == 40


def test_preprocess_for_arch_uses_trained_sizes():
    from fercore.models import preprocess_for

    assert preprocess_for("tf_efficientnet_b0_ns").image_size == 224
    assert preprocess_for("tf_efficientnet_b2_ns").image_size == 260
