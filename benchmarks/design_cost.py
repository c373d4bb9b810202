"""What RQ2's replicates and control and the null arm of RQ1, RQ3 and RQ4 cost at thesis scale: an estimate, printed.

    .venv/bin/python benchmarks/design_cost.py [--params configs/suite_thesis.yaml] [--grids 30] [--faces-per-grid 36]
                                               [--kept 0.97] [--real-test 7589] [--train-share 0.5]

No GPU was lent to the session that wrote this, so nothing here is timed: the figures are training and inference
image counts (from the parameter file and the thesis plan's 30 grids of 36 faces) divided by throughputs measured
earlier and recorded in the docs, which the options can replace with new measurements (``benchmarks/gpu_check.sh``
prints them on a GPU: ``bench_train.py`` and ``bench_predict.py``):

* GPU (1 H200, bf16, channels_last): B0 at 224 trains at ~646 img/s with SAM (docs/training.md: 40 s per FER2013
  epoch of 25,849 faces, validation included), predicts at 3,100 img/s (docs/onnx.md); B2 at 260 is taken as B0 / 2.4
  (its forward pass against B0's on the CPU: 20.4 against 49.0 img/s, docs/onnx.md). Peak GPU memory of one SAM
  step at batch 64: B0 2.9 GiB, B2 5.8 GiB (docs/training.md); runs are sequential, so that is the peak of the whole
  design (batch 128 in the thesis file: about twice).
* CPU (2 cores): B0 trains at ~9 img/s and predicts at ~50 img/s (the project guide), B2 / 2.4 again.
* Null-arm extraction is on the CPU whatever the device: 0.46 CPU s per grid (MTCNN, docs/grids.md).
* Every training run also pays a start (model load, loader workers, checkpoint writes): 20 s assumed on the GPU,
  not measured; on the CPU it is small beside the training itself and left out.

The last line: ``RESULT`` with the added GPU and CPU hours per model and the null arm's minutes.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import yaml

RATES = {  # images per second: (train, predict) per model and device
    ("B0", "gpu"): (646.0, 3100.0), ("B2", "gpu"): (646.0 / 2.4, 3100.0 / 2.4),
    ("B0", "cpu"): (9.0, 50.0), ("B2", "cpu"): (9.0 / 2.4, 50.0 / 2.4),
}
PEAK_GIB_BATCH64 = {"B0": 2.9, "B2": 5.8}
EXTRACT_S_PER_GRID = 0.46
RUN_START_S = {"gpu": 20.0, "cpu": 0.0}  # assumed, not measured


def added_runs(p: dict, gender: bool) -> int:
    """Training runs of one model the replicated design adds to one fine-tuning run, one CV and one gender study
    (``gender``: this model is the gender study's, the first model unless ``gender_model`` names another)."""
    gender_runs = 4 * len(p["gender_percents"]) + 1  # growing and fixed arm per base gender, the full set (an upper bound)
    control = p["replicates"] if p.get("control", True) else 0
    return (p["replicates"] - 1 + control + (p["cv_replicates"] - 1) * p["cv_folds"]
            + (p["gender_replicates"] - 1) * gender_runs * gender)


def training_images(p: dict, train_faces: float) -> dict[str, float]:
    """Images passed through training per model, by part of RQ2 (epochs x faces x runs)."""
    share_faces = max(1.0, p["replicate_share"] * train_faces)
    runs = p["replicates"]
    control = runs if p.get("control", True) else 0
    folds = p["cv_folds"]
    percents = p["gender_percents"]
    half = train_faces / 2  # one gender's faces
    growing = sum(half * (1 + q / 100) for q in percents) * 2  # both base genders
    fixed = len(percents) * 2 * half  # at the smallest growing size
    return {
        "fine-tuned on synthetic (replicates)": runs * share_faces * p["epochs"],
        "fine-tuned on real (control)": control * share_faces * p["epochs"],
        "before the replicates: one fine-tuning run": train_faces * p["epochs"],
        "synthetic only (once)": train_faces * p["synthetic_only_epochs"],
        "grouped CV (cv_replicates x folds)": p["cv_replicates"] * folds * train_faces * (folds - 1) / folds * p["synthetic_only_epochs"],
        "gender study (gender_replicates x runs)": p["gender_replicates"] * (growing + fixed + train_faces) * p["gender_epochs"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="configs/suite_thesis.yaml")
    parser.add_argument("--grids", type=int, default=30, help="generated grids in all (the thesis plan: 30)")
    parser.add_argument("--faces-per-grid", type=int, default=36)
    parser.add_argument("--kept", type=float, default=0.97, help="share of cells kept by extraction")
    parser.add_argument("--train-share", type=float, default=0.5, help="share of the grids in the training split")
    parser.add_argument("--real-test", type=int, default=3589 + 4000, help="real test images scored by each new checkpoint")
    args = parser.parse_args()
    params = yaml.safe_load(Path(args.params).read_text())
    p = {**params.get("parameters", {}), **params["notebooks"]["02"]}
    faces = args.grids * args.faces_per_grid * args.kept
    train_faces = faces * args.train_share
    parts = training_images(p, train_faces)
    before = parts.pop("before the replicates: one fine-tuning run")
    extra_checkpoints = 2 * p["replicates"] - 1 if p.get("control", True) else p["replicates"] - 1
    null = params["parameters"].get("null_arm", True)
    null_grids = params["parameters"].get("null_grids") or args.grids  # None: as many as the synthetic grids RQ1 scores (all)
    print(f"thesis scale: {args.grids} grids, {faces:.0f} kept faces, {train_faces:.0f} training faces; {args.params}")
    print(f"added training runs: B0 {added_runs(p, True)} (with the gender study's), B2 {added_runs(p, False)}")
    print(f"RQ2 trains per model (images through the network): {', '.join(f'{k} {v:,.0f}' for k, v in parts.items())}")
    result = []
    for model in ("B0", "B2"):
        for device in ("gpu", "cpu"):
            train_rate, predict_rate = RATES[(model, device)]
            added_train = (parts["fine-tuned on synthetic (replicates)"] + parts["fine-tuned on real (control)"] - before
                           + parts["grouped CV (cv_replicates x folds)"] * (1 - 1 / p["cv_replicates"])
                           + parts["gender study (gender_replicates x runs)"] * (1 - 1 / p["gender_replicates"]) * (model == "B0"))
            added_predict = extra_checkpoints * (args.real_test + faces * (1 - args.train_share))
            hours = (added_train / train_rate + added_predict / predict_rate + added_runs(p, model == "B0") * RUN_START_S[device]) / 3600
            result.append(f"{model}_{device}_h={hours:.2f}")
            memory = f", peak GPU memory {2 * PEAK_GIB_BATCH64[model]:.1f} GiB at batch 128" if device == "gpu" else ""
            print(f"{model} on the {device.upper()}: replicates, control and replicated CV{' / gender study' * (model == 'B0')} add {added_train:,.0f} "
                  f"training and {added_predict:,.0f} inference images: {hours:.2f} h{memory}")
    null_minutes = (null_grids * EXTRACT_S_PER_GRID + null_grids * args.faces_per_grid * 3 * 2 / RATES[("B2", "gpu")][1]) / 60
    print(f"null arm ({'on' if null else 'off'}): {null_grids} grids composed and extracted on the CPU "
          f"({null_grids * EXTRACT_S_PER_GRID:.0f} s), one inference pass per model and arm: {math.ceil(null_minutes)} min at most")
    print("RESULT " + " ".join(result) + f" null_min={null_minutes:.1f}")


if __name__ == "__main__":
    main()
