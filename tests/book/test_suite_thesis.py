"""configs/suite_thesis.yaml (two models, two real sets) end to end on constructed small data, with
tiny timm EfficientNets standing in for HSEmotion's B0 and B2; and the inference audit of that run:
each (network, image set) goes through the network once."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from conftest import REPO, assert_every_chapter_finished
from PIL import Image
from torch import nn

from fercore.book.suite import SuiteParams, run_suite
from fercore.core import audit as inference_audit
from fercore.models import create_model


def _fer_like(source, out, size: int = 48) -> None:
    """A FER2013-like copy of a demo split: greyscale, 48 px, no Contempt."""
    for path in sorted(source.rglob("*.jpg")):
        if path.parent.name.lower() == "contempt":
            continue
        target = out / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(path).convert("L").resize((size, size)).save(target.with_suffix(".png"))


@pytest.fixture(scope="session")
def thesis_run(demo_root, tmp_path_factory):
    """The thesis parameter file with its paths pointed at constructed data; returns (run folder, audit table)."""
    from fercore.demo.pipeline import DEMO_EXTRACT
    from fercore.grids.extract import extract_grids

    base = tmp_path_factory.mktemp("thesis")
    _fer_like(demo_root / "real", base / "fer2013")
    extract_grids(demo_root / "synthetic" / "raw_grids", demo_root / "synthetic" / "processed",
                  DEMO_EXTRACT, workers=2, progress=False)  # the demo's options: demo_suite writes the same folder
    torch.manual_seed(0)
    b0 = create_model("test_efficientnet")
    b0.classifier = nn.Sequential(b0.classifier)  # pickled like HSEmotion's enet_b0_8_best_afew.pt
    torch.save(b0, base / "enet_b0_8_best_afew.pt")
    backbone = create_model("test_efficientnet")
    backbone.classifier = nn.Identity()  # saved like state_vggface2_enet0_new.pt (no emotion head)
    torch.save(backbone.state_dict(), base / "state_vggface2_enet0_new.pt")
    torch.save(create_model("test_efficientnet").state_dict(), base / "enet_b2_8.pt")
    models = {"B0": {"weights": str(base / "enet_b0_8_best_afew.pt"), "arch": "test_efficientnet", "image_size": 32,
                     "trust_pickle": True, "backbone": str(base / "state_vggface2_enet0_new.pt"), "seen": ["affectnet:train"]},
              "B2": {"weights": str(base / "enet_b2_8.pt"), "arch": "test_efficientnet", "image_size": 40, "trust_pickle": True,
                     "backbone": None, "seen": ["affectnet:train"]}}  # as the thesis file declares HSEmotion's: the control and
    # the null arm draw from the faces outside them (fer2013 train and holdout, affectnet holdout)
    overrides = [f"models={json.dumps(models)}", f"real_roots={json.dumps({'fer2013': str(base / 'fer2013'), 'affectnet': str(demo_root / 'real')})}",
                 f"synthetic_root={demo_root / 'synthetic' / 'processed'}", "max_per_class=6", "workers=0", "batch_size=32",
                 "02.epochs=1", "02.head_epochs=0", "02.synthetic_only_epochs=1", "02.synthetic_only_head_epochs=0", "02.cv_folds=2",
                 "02.gender_percents=[0,100]", "02.gender_epochs=1", "02.max_train_per_class=20",
                 "02.replicates=2", "02.cv_replicates=2", "02.gender_replicates=1", "03.cam_per_class=2",
                 "04.permutations=20", "04.tsne=false"]
    params = SuiteParams.from_yaml(REPO / "configs" / "suite_thesis.yaml", overrides)
    params.results_dir, params.notebooks_dir = str(base / "results"), str(REPO / "notebooks")
    audit = base / "audit.jsonl"
    mp = pytest.MonkeyPatch()
    mp.setenv(inference_audit.AUDIT_ENV, str(audit))  # the notebooks' kernels inherit it
    try:
        run = run_suite(params, progress=False)
    finally:
        mp.undo()
    return run.run_dir, inference_audit.read_audit(audit)


@pytest.mark.slow
def test_the_thesis_parameter_file_runs_with_two_models_and_two_real_sets(thesis_run):
    run_dir, _ = thesis_run
    assert_every_chapter_finished(run_dir)
    summary = pd.read_csv(run_dir / "rq1" / "tables" / "summary.csv")
    sets = ("fer2013", "affectnet", "synthetic", "synthetic matched to fer2013", "synthetic matched to affectnet", "null arm",
            "null arm matched to fer2013", "null arm matched to affectnet")
    assert sorted(zip(summary["model"], summary["test set"], strict=True)) == sorted((m, s) for m in ("B0", "B2") for s in sets)
    assert summary.set_index(["model", "test set"]).loc[("B0", "fer2013"), "classes"] == 7  # FER2013 on its 7 classes
    compared = pd.read_csv(run_dir / "rq1" / "tables" / "real_vs_synthetic.csv")
    # each model, each real set against the synthetic faces, raw and matched to that set's format
    assert sorted(zip(compared["model"], compared["real set"], compared["synthetic faces"], strict=True)) == sorted(
        (m, r, a) for m in ("B0", "B2") for r in ("fer2013", "affectnet") for a in ("raw", "matched"))
    assert (compared.set_index(["real set"]).loc["fer2013", "classes"] == 7).all()  # the classes both sets hold
    assert {"p (Holm)", "p equivalence (TOST)", "MDE (80% power)", "grids per class (min)"} <= set(compared.columns)
    design = pd.read_csv(run_dir / "rq1" / "tables" / "design.csv")
    assert len(design) == len(compared) and design["ICC"].astype(str).str.len().gt(0).all()
    formats = pd.read_csv(run_dir / "rq1" / "tables" / "formats.csv").set_index("set")
    assert formats.loc["fer2013", "native size (px)"] == 48 and formats.loc["fer2013", "grey share"] == 1.0
    arms = json.loads((run_dir / "matching" / "formats.json").read_text())["arms"]
    assert arms["fer2013"]["size"] == 48 and arms["fer2013"]["grey_fraction"] == 1.0 and arms["affectnet"]["size"] == 96
    changes = pd.read_csv(run_dir / "rq2" / "tables" / "finetuned_vs_original.csv")
    assert sorted(zip(changes["model"], changes["test set"], strict=True)) == [("B0", "affectnet"), ("B0", "fer2013"),
                                                                               ("B2", "affectnet"), ("B2", "fer2013")]
    cv = pd.read_csv(run_dir / "rq2" / "tables" / "synthetic_only_cv.csv")
    assert cv["model"].tolist() == ["B0", "B2"] and (cv["folds"] == 2).all() and (cv["grouped by"] == "source").all()
    assert (cv["replicates"] == 2).all()
    effects = pd.read_csv(run_dir / "rq2" / "tables" / "replicate_effects.csv")  # two replicates and the control (fer2013/train: unseen)
    arms = ("fine-tuned on synthetic", "fine-tuned on real (control)", "synthetic − control")
    assert set(zip(effects["model"], effects["test set"], effects["arm"], strict=True)) == {
        (m, s, a) for m in ("B0", "B2") for s in ("fer2013", "affectnet") for a in arms}
    assert (effects["runs"] == 2).all() and (run_dir / "models" / "b2" / "fine-tuned_on_real_control-rep1" / "checkpoint.pt").is_file()
    null = pd.read_csv(run_dir / "rq1" / "tables" / "excess_over_null.csv")  # the null arm in the thesis file: on
    assert set(zip(null["model"], null["real set"], null["arm"], strict=True)) == {
        (m, s, a) for m in ("B0", "B2") for s in ("fer2013", "affectnet") for a in ("raw", "matched")}
    assert null["excess over null"].notna().all() and (null["grids null"] > 0).all()
    b0_scratch = torch.load(run_dir / "models" / "b0" / "trained_on_synthetic_only" / "checkpoint.pt", weights_only=True)
    assert b0_scratch["config"]["weights"].endswith("state_vggface2_enet0_new.pt")  # B0 starts from its backbone
    b2_scratch = torch.load(run_dir / "models" / "b2" / "trained_on_synthetic_only" / "checkpoint.pt", weights_only=True)
    assert b2_scratch["config"]["weights"] is None and b2_scratch["image_size"] == 40  # B2 from scratch, at its size
    for chapter, table in (("rq3", "summary"), ("rq4", "domain_gap")):  # every real set, both arms: nothing takes the first
        rows = pd.read_csv(run_dir / chapter / "tables" / f"{table}.csv")
        found = set(zip(rows["model"], rows["regime"], rows["real set"], rows["synthetic faces"], strict=True))
        assert found == {(m, r, s, a) for m in ("B0", "B2") for r in ("trained on real", "fine-tuned on synthetic", "trained on synthetic only")
                         for s in ("fer2013", "affectnet") for a in ("raw", "matched")}, chapter


@pytest.mark.slow
def test_each_network_sees_each_image_set_once(thesis_run):
    """Counts :func:`fercore.inference.infer` calls and forward passes of every network the notebooks
    load (forward hooks, via FERCORE_INFERENCE_AUDIT; runs of an ONNX export under the network's
    label). Excluded by design and named here: training's own passes (the networks ``train``
    builds are not watched), Grad-CAM's forward and backward passes (kind ``grad-cam``), the
    one-image dummy pass that measures each stage's map size for the CAM layers (kind
    ``cam-layers``) and the PyTorch check of a new ONNX export on its first batch (kind ``onnx-parity``)."""
    _, audit = thesis_run
    calls = audit[audit["event"] == "infer"]
    computed = calls[~calls["cached"].astype(bool)]
    assert computed.groupby(["model", "digest"]).size().eq(1).all()  # every (network, image set, size) once
    forwards = audit[audit["event"] == "forward"]
    kinds = ["inference", "grad-cam", "cam-layers", "onnx-parity"]
    assert set(forwards["kind"]) <= set(kinds), forwards[~forwards["kind"].isin(kinds)]
    assert (forwards.loc[forwards["kind"] == "cam-layers", "batch"] == 1).all()
    inferred = forwards[forwards["kind"] == "inference"].groupby("model")["batch"].sum()
    expected = computed.groupby("model")["images"].sum()
    assert inferred.to_dict() == expected.to_dict()  # the network ran over exactly the computed passes' images
    notebooks = list(dict.fromkeys(calls["pid"]))  # kernels in the order the notebooks ran
    assert len(notebooks) == 4
    rq1, rq2, rq3, rq4 = (calls[calls["pid"] == pid] for pid in notebooks)
    # two models on four test sets (two real, synthetic, the null arm) and on the synthetic and the null faces matched to
    # each of the two real sets, all computed in RQ1
    assert not rq1["cached"].any() and len(rq1) == 2 * (4 + 4) and (rq1["transform"] != "none").sum() == 2 * 4, rq1
    assert rq2["cached"].astype(bool).sum() >= 6  # RQ2's "before" scores come from RQ1's passes
    # RQ3 computes only what RQ1 and RQ2 did not: for the regimes RQ2 trained (2 models x 2 regimes), the synthetic faces
    # matched to each real set (2), and the null faces raw (1) and matched to each real set (2); RQ4 reads them all
    fresh = rq3[~rq3["cached"].astype(bool)]
    assert len(fresh) == 2 * 2 * (2 + 1 + 2) and (fresh["transform"] == "none").sum() == 2 * 2, fresh
    assert rq4["cached"].all()
    assert (forwards["kind"] == "grad-cam").any()
