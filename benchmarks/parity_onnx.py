"""ONNX Runtime against PyTorch on a whole data split: top-1 agreement and the largest differences.

    .venv/bin/python benchmarks/parity_onnx.py CHECKPOINT DATA_ROOT [--split val] [--image-size S]

Runs :func:`fercore.inference.infer` once per backend over ``DATA_ROOT/<split>`` (no result
cache; the export goes to a temporary ``FERCORE_CACHE``) and compares the predictions among the
model's classes restricted to the data set's (FER2013: 7), the logits and the features. Also
prints each class's share of the predictions (a degenerate model puts most images in one class)
and the accuracy. Last line: ``RESULT images=... top1_agreement=... max_abs_logit=... ...``.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from fercore.core import labels
from fercore.data import dataset_classes, discover, within_classes
from fercore.inference import infer
from fercore.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("data_root")
    parser.add_argument("--split", default="val")
    parser.add_argument("--image-size", type=int, default=None, help="feed this size instead of the checkpoint's")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    model = load_model(args.checkpoint)
    if args.image_size:
        model = model.with_image_size(args.image_size)
    classes = labels.class_set(None, available=dataset_classes(args.data_root), within=model.trained_classes)
    samples = within_classes(discover(args.data_root, [args.split]), classes)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FERCORE_CACHE"] = tmp
        runs = {b: infer(model, samples, batch_size=args.batch, workers=None, progress=False, backend=b, threads=args.threads)
                for b in ("torch", "onnxruntime")}
    ref, got = runs["torch"], runs["onnxruntime"]
    ok = ref.readable & got.readable
    columns = [labels.CLASSES.index(c) for c in classes]
    pred_ref = ref.probabilities(classes)[ok].argmax(1)
    pred_got = got.probabilities(classes)[ok].argmax(1)
    truth = np.array([labels.CLASSES.index(labels.canonical_name(e)) for e in samples["emotion"]])[ok]
    d_logit = np.abs(ref.logits[ok][:, columns] - got.logits[ok][:, columns])
    d_feat = np.abs(ref.features[ok] - got.features[ok])
    shares = {labels.CLASSES[c]: float((pred_ref == c).mean()) for c in columns}
    print(f"{args.checkpoint} at {model.image_size} px on {args.data_root}/{args.split}: {int(ok.sum())} images, {len(classes)} classes")
    print("share of PyTorch's predictions: " + ", ".join(f"{k} {v:.1%}" for k, v in shares.items()))
    print(f"accuracy: torch {(pred_ref == truth).mean():.4f}, onnxruntime {(pred_got == truth).mean():.4f}")
    print(f"top-1 agreement {(pred_ref == pred_got).mean():.5f} ({int((pred_ref != pred_got).sum())} differ); "
          f"max |dlogit| {d_logit.max():.2e} (mean {d_logit.mean():.1e}); max |dfeature| {d_feat.max():.2e}; "
          f"largest |logit| {np.abs(ref.logits[ok][:, columns]).max():.1f}")
    print(f"RESULT images={int(ok.sum())} image_size={model.image_size} top1_agreement={(pred_ref == pred_got).mean():.5f} "
          f"max_abs_logit={d_logit.max():.3e} max_abs_feature={d_feat.max():.3e} accuracy_torch={(pred_ref == truth).mean():.4f} "
          f"accuracy_ort={(pred_got == truth).mean():.4f} max_class_share={max(shares.values()):.3f}")


if __name__ == "__main__":
    main()
