import subprocess
import sys

import pytest
import timm
import torch

from fercore import cli

SUBCOMMANDS = [["check-data"], ["weights"], ["weights", "inspect"], ["weights", "convert"], ["demo-data"], ["demo"],
               ["suite", "run"], ["suite", "book"], ["plan-power"], ["label-sheet"], ["label-agreement"]]


def test_help_lists_subcommands():
    result = subprocess.run([sys.executable, "-m", "fercore.cli", "--help"], capture_output=True, text=True, check=True)
    for name in ("check-data", "weights", "demo-data", "demo"):
        assert name in result.stdout


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w))
def test_every_subcommand_has_help(words, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*words, "--help"])
    assert exit_.value.code == 0
    assert "usage: fercore " + " ".join(words) in capsys.readouterr().out


def test_weights_inspect_and_convert(tmp_path, capsys):
    model = timm.create_model("tf_efficientnet_b0", num_classes=8)
    torch.save(model, tmp_path / "enet_b0_8.pt")
    assert cli.main(["weights", "inspect", str(tmp_path / "enet_b0_8.pt")]) == 2
    assert "--trust" in capsys.readouterr().err
    assert cli.main(["weights", "inspect", str(tmp_path / "enet_b0_8.pt"), "--trust"]) == 0
    out = capsys.readouterr().out
    assert "pickled_module" in out and "tf_efficientnet_b0" in out and "sha256" in out
    assert cli.main(["weights", "convert", str(tmp_path / "enet_b0_8.pt"), str(tmp_path / "plain.pt"), "--trust"]) == 0
    assert set(torch.load(tmp_path / "plain.pt", weights_only=True)) == set(model.state_dict())
    assert cli.main(["weights", "convert", str(tmp_path / "enet_b0_8.pt"), str(tmp_path / "plain.pt"), "--trust"]) == 2
    assert "--force" in capsys.readouterr().err


def test_missing_dataset_is_a_clear_cli_error(tmp_path, capsys):
    assert cli.main(["check-data", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_suite_run_reports_a_bad_parameter_file(tmp_path, capsys):
    bad = tmp_path / "suite_bad.yaml"
    bad.write_text("parameters: {epochz: 1}\n")
    assert cli.main(["suite", "run", "--params", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "['epochz'] are declared by no notebook" in err and "fercore suite: error" in err


def test_predict_and_evaluate_take_one_preprocess_option(capsys):
    parser = cli.build_parser()
    for command in (["predict", "ckpt.pt", "face.png", "--out", "p.csv"], ["evaluate", "ckpt.pt", "root", "--out", "ev"]):
        assert parser.parse_args(command).preprocess == "exact"  # HSEmotion's preprocessing stays the default
        assert parser.parse_args([*command, "--preprocess", "fast"]).preprocess == "fast"
        with pytest.raises(SystemExit) as exit_:
            cli.main([*command, "--preprocess", "gpu"])
        assert exit_.value.code == 2
        assert "argument --preprocess: invalid choice: 'gpu'" in capsys.readouterr().err
