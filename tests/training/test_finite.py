"""Finite or refused (issue 29, rule 1): training stops at the first non-finite loss, gradient or
weight and names the last checkpoint whose weights and probe logits are finite; a model with
non-finite tensors is not loaded; predict and evaluate refuse non-finite logits; config bounds
refuse non-finite numbers."""

from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

from fercore import cli
from fercore import training as T
from fercore.training import loop
from fercore.training.step import train_step


def _config(root, **overrides) -> T.TrainConfig:
    base = dict(experiment="finite", data_root=str(root), val_fraction=0.25, arch="resnet10t", image_size=32,
                batch_size=4, epochs=1, lr=1e-3, optimizer="adamw", workers=0, progress=False)
    return T.TrainConfig(**{**base, **overrides})


def _no_validation(root):
    """(train, val, test) tables of ``root``'s train split with no validation images: no selection."""
    from fercore.data import discover

    return discover(root, ["train"]), None, None


def test_huge_lr_is_refused_not_reported_as_a_best_epoch(tiny_dataset, tmp_path, capsys):
    """`train --set lr=1.0e30` used to exit 0 with "best epoch 1" and NaN-giving weights (one step: the loss
    was finite, the weights it left give NaN logits)."""
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(_config(tiny_dataset, batch_size=8).to_dict()))
    code = cli.main(["train", "--config", str(tmp_path / "cfg.yaml"), "--set", "lr=1.0e30", "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 2 and "best epoch" not in out
    assert "training stopped" in err and "Last good checkpoint: none" in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_one_step_per_epoch_is_caught_by_the_probe_batch(tiny_dataset, tmp_path):
    """With one training step per epoch the loss never sees the broken weights: the probe logits do."""
    with pytest.raises(T.TrainingDivergedError, match="(validation loss|weights) became .*after epoch 1"):
        T.train(_config(tiny_dataset, lr=1e30, batch_size=8), out=tmp_path / "run")


def test_a_run_without_validation_checks_the_probe_batch(tiny_dataset, tmp_path, monkeypatch):
    """No validation images: the logits of a fixed batch of training images must stay finite."""
    real = loop._train_batches

    def breaks(run, epoch):
        result = real(run, epoch)
        with torch.no_grad():
            run.model.fc.weight.fill_(3e38)  # finite weights, overflowing logits
        return result

    monkeypatch.setattr(loop, "_train_batches", breaks)
    with pytest.raises(T.TrainingDivergedError, match="logits on a probe batch of 8 training images became NaN"):
        T.train(_config(tiny_dataset), samples=_no_validation(tiny_dataset), out=tmp_path / "run")


def test_divergence_names_the_last_checkpoint_whose_logits_are_finite(tiny_dataset, tmp_path, monkeypatch):
    """Epoch 1 is fine; epoch 2 ends with finite but huge weights that give non-finite logits."""
    real = loop._train_batches

    def second_epoch_breaks(run, epoch):
        result = real(run, epoch)
        if epoch == 2:
            with torch.no_grad():
                run.model.fc.weight.fill_(3e38)
        return result

    monkeypatch.setattr(loop, "_train_batches", second_epoch_breaks)
    with pytest.raises(T.TrainingDivergedError) as err:
        T.train(_config(tiny_dataset, epochs=3), out=tmp_path / "run")
    message = str(err.value)
    assert "after epoch 2" in message and f"{tmp_path / 'run' / 'last.pt'} (epoch 1" in message
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


@pytest.mark.parametrize("what", ["weight", "gradient"])
def test_train_step_refuses_a_non_finite_weight_or_gradient(what):
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(net.parameters(), lr=float("inf") if what == "weight" else 0.1)
    if what == "gradient":
        net.weight.register_hook(lambda g: g * float("nan"))
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    before = net.weight.detach().clone()
    with pytest.raises(T.TrainingDivergedError, match=f"the {what} of weight became NaN or infinite"):
        train_step(net, optimizer, nn.CrossEntropyLoss(), x, y)
    if what == "gradient":  # refused before the step: the weights did not move
        assert torch.equal(net.weight, before)


def test_check_finite_names_the_tensor():
    from fercore.training.step import check_finite

    check_finite("weight", [("a", torch.ones(2)), ("b", None)])
    with pytest.raises(T.TrainingDivergedError, match="weight of b became"):
        check_finite("weight", [("a", torch.ones(2)), ("b", torch.tensor([1.0, float("inf")]))])


# --------------------------------------------------------------------------- loading and inference


def _checkpoint(tmp_path, *, value: float, key: str = "fc.weight"):
    """A fercore checkpoint (resnet10t, 32 px) whose tensor ``key`` is filled with ``value``."""
    from fercore.models import create_model, save_model

    torch.manual_seed(0)
    net = create_model("resnet10t", 8)
    with torch.no_grad():
        net.state_dict()[key].fill_(value)
    return save_model(tmp_path / f"m{value}.pt", net, arch="resnet10t", image_size=32)


@pytest.mark.parametrize("value, key", [(float("nan"), "fc.weight"), (float("inf"), "bn1.running_var")])
def test_loading_refuses_non_finite_parameters_and_buffers(tmp_path, value, key):
    from fercore.models import WeightsError, load_model

    path = _checkpoint(tmp_path, value=value, key=key)
    with pytest.raises(WeightsError, match=rf"{path}: 1 of \d+ tensors hold NaN or infinite values \({key}\)"):
        load_model(path)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_predict_and_evaluate_refuse_a_nan_classifier(tmp_path, tiny_dataset, capsys, command):
    path = _checkpoint(tmp_path, value=float("nan"))
    argv = ([command, str(path), str(tiny_dataset / "test"), "--out", str(tmp_path / "p.csv")] if command == "predict"
            else [command, str(path), str(tiny_dataset), "--out", str(tmp_path / "ev")])
    assert cli.main([*argv, "-q", "--backend", "torch"]) == 2
    assert "NaN or infinite values (fc.weight)" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "ev" / "metrics.json").exists()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_predict_and_evaluate_refuse_non_finite_logits(tmp_path, tiny_dataset, capsys, command):
    """Finite weights (3e38) whose logits overflow: no 'Anger at p = 0.25', no 'ECE 0.0000'."""
    path = _checkpoint(tmp_path, value=3e38)
    argv = ([command, str(path), str(tiny_dataset / "test"), "--out", str(tmp_path / "p.csv")] if command == "predict"
            else [command, str(path), str(tiny_dataset), "--out", str(tmp_path / "ev")])
    assert cli.main([*argv, "-q", "--backend", "torch"]) == 2
    assert "gives NaN or infinite logits on 6 of 6 readable images" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "ev" / "metrics.json").exists()


# --------------------------------------------------------------------------- config bounds


@pytest.mark.parametrize("override, says", [
    ("lr=.inf", "lr=inf: must be a finite number"),
    ("lr=.nan", "lr=nan: must be a finite number"),
    ("stages=[{epochs: 1, lr: .inf}]", "stages[0]: lr=inf: must be a finite number"),
    ("seed=4294967296", "seed=4294967296: must be <= 4294967295"),
    ("seed=99999999999999999999", "seed=99999999999999999999: must be <= 4294967295"),
    ("stages=[{epochs: 1, learning_rate: 0.1}]", "unknown config key 'learning_rate'"),
])
def test_config_refuses_non_finite_and_out_of_range_numbers(tmp_path, capsys, override, says):
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({"data_root": str(tmp_path), "arch": "resnet10t"}))
    assert cli.main(["train", "--config", str(tmp_path / "cfg.yaml"), "--set", override]) == 2
    err = capsys.readouterr().err
    assert f"--set {override}: " in err and says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
