"""The ``fercore`` argument parser: one function per sub-command group."""

from __future__ import annotations

import argparse
import typing

from fercore import __version__
from fercore.cli.commands import (
    cmd_check_data,
    cmd_cv,
    cmd_demo,
    cmd_demo_data,
    cmd_evaluate,
    cmd_export_onnx,
    cmd_extract,
    cmd_gender_splits,
    cmd_label_agreement,
    cmd_label_sheet,
    cmd_plan_power,
    cmd_plan_prompts,
    cmd_predict,
    cmd_suite_book,
    cmd_suite_run,
    cmd_train,
    cmd_weights_convert,
    cmd_weights_inspect,
)


def _int_at_least(low: int):
    """An argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is too small: give an integer >= {low}")
        return value
    return parse


def _layout_arg(text: str) -> str:
    """An argparse type: 'auto' or ROWSxCOLS, checked here (not in a worker process)."""
    from fercore.grids import parse_layout

    if text == "auto":
        return text
    try:
        rows, cols = parse_layout(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return f"{rows}x{cols}"


def _add_config_options(parser: argparse.ArgumentParser, *, config_required: bool = True) -> None:
    parser.add_argument("--config", required=config_required, help="training config YAML (see configs/)")
    parser.add_argument("--data-root", help="dataset folder ROOT/<split>/<emotion>/ (overrides data_root)")
    parser.add_argument("--out", help="run folder (default results/<experiment>/<run-id>/); must be new or empty")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")


def _add_inference_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=_int_at_least(1), default=64)
    parser.add_argument("--workers", type=_int_at_least(0), default=None, help="loader processes (default: 0 on <= 2 cores, else up to 4)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 | mps")
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime"],
                        help="how the network runs: auto (ONNX Runtime on CPU, measured faster; PyTorch on CUDA / MPS), "
                        "torch, or onnxruntime (CPU; exported once per weights and size, checked against PyTorch)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the cores this process may use)")
    parser.add_argument("--preprocess", default="exact", choices=["exact", "fast"],
                        help="exact: PIL resize in the loader (HSEmotion's preprocessing, the default); fast: the loader "
                        "only decodes, resizing and normalisation run batched on the device (within one 8-bit level of exact)")
    parser.add_argument("--trust", action="store_true", help="allow unpickling the checkpoint (trusted files only)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line and a pointer to --help (exit 2), not the whole usage text."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\nsee `{self.prog} --help`\n")


def _add_check_data(sub: argparse._SubParsersAction) -> None:
    """check-data: a folder dataset's problems."""
    p = sub.add_parser("check-data", help="check a folder dataset ROOT/<split>/<emotion>/* for problems",
                       description="Counts per split and class; unreadable, truncated and near-uniform images; "
                       "exact duplicates (decoded pixels) within and across splits and those with conflicting labels. "
                       "Prints a table and writes a JSON report. Nothing is modified.")
    p.add_argument("root", help="dataset folder holding <split>/<emotion>/ subfolders")
    p.add_argument("--out", help="JSON report path (default results/check-data/<name>-<path digest>.json: one per folder, "
                   "rewritten when the same folder is checked again); an existing --out is refused unless --force")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--workers", type=_int_at_least(0), default=2, help="decoding processes (default 2; 0 or 1: none)")
    p.add_argument("--strict", action="store_true", help="exit 1 when unreadable or truncated files are found")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_check_data)


def _add_weights(sub: argparse._SubParsersAction) -> None:
    """weights inspect | convert."""
    w = sub.add_parser("weights", help="inspect or convert model weight files",
                       description="Inspect or convert local weight files (state dicts, VGGFace2 backbones, HSEmotion checkpoints).")
    wsub = w.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    wi = wsub.add_parser("inspect", help="print format, architecture guess, tensor count, head size, sha256",
                         description="Describe a weight file without building a model.")
    wi.add_argument("file")
    wi.add_argument("--trust", action="store_true", help="allow unpickling (only for files from a source you trust)")
    wi.set_defaults(func=cmd_weights_inspect)
    wc = wsub.add_parser("convert", help="write a plain, safe state dict (e.g. from an HSEmotion checkpoint)",
                         description="Read IN (with --trust for pickled HSEmotion models) and write OUT as a plain "
                         "state dict that torch.load(weights_only=True) accepts, keys in timm 1.x names.")
    wc.add_argument("src", metavar="IN")
    wc.add_argument("dst", metavar="OUT")
    wc.add_argument("--trust", action="store_true", help="allow unpickling IN (only for files from a source you trust)")
    wc.add_argument("--force", action="store_true", help="replace OUT if it exists")
    wc.set_defaults(func=cmd_weights_convert)


def _add_demo_data(sub: argparse._SubParsersAction) -> None:
    """demo-data: the embedded demo dataset."""
    d = sub.add_parser("demo-data", help="write the embedded demo dataset (procedural faces, two domains)",
                       description="Deterministic, offline demo data: real-style faces under OUT/real/{train,test}/<emotion>/ "
                       "and 1024x1024 6x6 synthetic grids with grids.csv under OUT/synthetic/raw_grids/{train,test}/. "
                       "Demo numbers are not research results.")
    d.add_argument("out", help="folder to write (e.g. data/demo)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--force", action="store_true", help="rewrite even if demo data with other settings is there")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_demo_data)


def _add_training(sub: argparse._SubParsersAction) -> None:
    """train, cv and gender-splits: training runs and the experiments made of them."""
    t = sub.add_parser("train", help="train / fine-tune a model from a config (SAM, staged unfreezing, resumable)",
                       description="Train or fine-tune as the config says. Writes config.yaml, log.csv, checkpoint.pt "
                       "(best validation epoch), last.pt (resumable state) and metrics.json into a new run folder. "
                       "Under `torchrun --nproc_per_node N` it trains with DistributedDataParallel.")
    _add_config_options(t, config_required=False)
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (its config is used)")
    t.add_argument("--force", action="store_true", help="replace --out when it holds an earlier fercore train run "
                   "(a folder without fercore's marker is never replaced)")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("cv", help="k-fold cross-validation, grouped by source grid when known",
                       description="Train k models, each scored on its held-out fold; faces from one grid image are "
                       "never on both sides when the samples have a 'source' column. Writes folds.csv and summary.json.")
    _add_config_options(c)
    c.add_argument("--samples", help="sample table CSV (path, emotion, source ...; e.g. the extraction manifest) "
                   "instead of the config's data_root")
    c.add_argument("--k", type=_int_at_least(2), default=None,
                   help="number of folds (default 5, fewer when the data has fewer source grids; a --k the data cannot fill is an error)")
    c.set_defaults(func=cmd_cv)

    g = sub.add_parser("gender-splits", help="train on one gender + p%% of the other; test per gender",
                       description="For each p: train on 100%% women + p%% men and on 100%% men + p%% women; "
                       "evaluate on women, men and all test faces. Writes results.csv and an accuracy-vs-p plot.")
    _add_config_options(g)
    g.add_argument("--samples", required=True, help="sample table CSV with path, emotion, gender (and split)")
    g.add_argument("--test-samples", help="test table CSV (default: rows of --samples whose split is the test split)")
    g.add_argument("--percents", type=float, nargs="+", default=[0, 25, 50, 75, 100])
    g.set_defaults(func=cmd_gender_splits)


def _add_extract(sub: argparse._SubParsersAction) -> None:
    """extract: faces from generated grid images."""
    x = sub.add_parser("extract", help="extract validated, quality-checked faces from generated grid images",
                       description="Reads RAW_DIR/<split>/*.png|jpg with RAW_DIR/<split>/grids.csv (file, emotion, gender ...); "
                       "writes OUT_DIR/<split>/<emotion>/<grid>_r<row>c<col>.png, OUT_DIR/manifest.csv (one row per cell: "
                       "box, kept, reason, quality scores) and a contact sheet per grid. Raw images are never modified; a "
                       "rerun skips grids already extracted (by content hash). The demo extracts its cartoon faces with "
                       "--layout auto --framing portrait (framed like its real-style faces).")
    x.add_argument("raw_dir")
    x.add_argument("out_dir")
    x.add_argument("--layout", default="6x6", type=_layout_arg, help="ROWSxCOLS for a uniform split, or auto (the candidate layout that "
                   "best explains the faces found on the grid)")
    x.add_argument("--layout-strategy", default="evidence", choices=["evidence", "cascade"],
                   help="auto layout: evidence (candidates from the expected split, gutters, seams, face clusters, "
                   "weighed by the faces found) or cascade (gutters, else seams, else face clusters: the older chooser)")
    x.add_argument("--expected", default="6x6", type=_layout_arg, help="layout the prompt asked for; auto reports differences")
    x.add_argument("--detector", default="mtcnn", choices=["mtcnn", "haar", "none"],
                   help="face detector that validates each cell: mtcnn (facenet-pytorch, installed by make venv), "
                   "haar (OpenCV's cascade; misses more tight or tilted faces) or none")
    x.add_argument("--face-size", type=_int_at_least(16), default=128)
    x.add_argument("--crop", default="face", choices=["face", "cell"],
                   help="face: around each detected face with one framing for the whole set (--framing), not clamped to "
                   "the cell, padded past the canvas (recorded in the manifest); cell: inside the cell (the older crops)")
    x.add_argument("--framing", default="fer2013", choices=["fer2013", "portrait"],
                   help="--crop face: fer2013 (framed like FER2013's faces) or portrait (looser, hair and chin inside)")
    x.add_argument("--margin", type=float, default=0.25, help="--crop cell: margin around a detected face (share of its size)")
    x.add_argument("--strict", action="store_true", help="exit 1 when a grid could not be extracted (default: a warning)")
    x.add_argument("--min-blur", type=float, help="Laplacian-variance threshold (default 12)")
    x.add_argument("--workers", type=_int_at_least(0), default=2)
    x.add_argument("--force", action="store_true", help="redo grids already extracted")
    x.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    x.set_defaults(func=cmd_extract)


def _add_inference(sub: argparse._SubParsersAction) -> None:
    """predict, evaluate and export-onnx: using a trained model."""
    pr = sub.add_parser("predict", help="predict images or folders with a trained model into a CSV",
                        description="One row per image: path, label (when a parent folder names an emotion), pred, "
                        "p_<Class> for the 8 classes (or logit_<Class> with --logits). Unreadable files are listed "
                        "with their error instead of stopping the run.")
    pr.add_argument("checkpoint", help="checkpoint.pt written by fercore train")
    pr.add_argument("inputs", nargs="+", metavar="IMAGES_OR_DIRS")
    pr.add_argument("--out", required=True, help="CSV to write (refused if it exists, unless --force)")
    pr.add_argument("--force", action="store_true", help="replace --out if it exists")
    pr.add_argument("--logits", action="store_true", help="write raw logits instead of probabilities")
    pr.add_argument("--classes", nargs="+", metavar="CLASS",
                    help="predict among these classes only (names or folder aliases; default: the classes the model was trained on)")
    _add_inference_options(pr)
    pr.set_defaults(func=cmd_predict)

    ev = sub.add_parser("evaluate", help="predictions, metrics and figures of a model on a dataset split",
                        description="Writes OUT/predictions.csv, OUT/metrics.json (classification-report shape at top "
                        "level plus balanced accuracy, top-k, ROC/AUC, AP, calibration, bootstrap CIs, group metrics) and "
                        "OUT/figures/. Predictions are restricted to the classes of the data set (FER2013: 7). Test images with a "
                        "pixel-identical twin in the training data, or with another label elsewhere, are dropped and counted "
                        "(--keep-duplicates keeps them).")
    ev.add_argument("checkpoint")
    ev.add_argument("data_root", help="dataset folder ROOT/<split>/<emotion>/")
    ev.add_argument("--split", default="test")
    ev.add_argument("--calibrate-on", metavar="SPLIT", help="fit temperature scaling on this (validation) split")
    ev.add_argument("--classes", nargs="+", metavar="CLASS",
                    help="score on these classes (default: the class folders of every split of DATA_ROOT, within the model's trained classes)")
    ev.add_argument("--keep-duplicates", action="store_true",
                    help="keep test images that have a pixel-identical twin in the training data or another label (default: drop them)")
    ev.add_argument("--train-root", metavar="DIR",
                    help="training data to check for twins (ROOT or ROOT/<split>), besides DATA_ROOT/train and the checkpoint's own data")
    ev.add_argument("--out", required=True, help="new (or empty) folder")
    ev.add_argument("--force", action="store_true", help="replace --out when it holds an earlier fercore evaluate output "
                    "(a folder without fercore's marker is never replaced)")
    _add_inference_options(ev)
    ev.set_defaults(func=cmd_evaluate)

    ex = sub.add_parser("export-onnx", help="export a checkpoint to ONNX (parity-checked with onnxruntime)",
                        description="Dynamic batch axis; input 'image' N x 3 x S x S preprocessed like fercore, output "
                        "'logits' N x 8. Needs the onnx extra: pip install 'fercore[onnx]'.")
    ex.add_argument("checkpoint")
    ex.add_argument("out", metavar="OUT.onnx")
    ex.add_argument("--opset", type=int, default=18)
    ex.add_argument("--force", action="store_true", help="replace OUT if it exists")
    ex.set_defaults(func=cmd_export_onnx)


def _add_suite(sub: argparse._SubParsersAction) -> None:
    """suite run | book: the thesis notebooks and the book."""
    su = sub.add_parser("suite", help="run the thesis notebooks (papermill) and build the book (Jupyter Book)",
                        description="Execute notebooks/NN_*.ipynb with a parameter file, then render them as HTML or PDF.")
    susub = su.add_subparsers(dest="suite_command", required=True)
    sr = susub.add_parser("run", help="execute all notebooks with a parameter file into results/suite/<name>/<run-id>/",
                          description="Stops at the first failing notebook, naming the cell; --resume carries on.")
    sr.add_argument("--params", help="suite parameter file, e.g. configs/suite_demo.yaml")
    sr.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a parameter (YAML value); NN.KEY=VALUE for one notebook, e.g. 02.epochs=1")
    sr.add_argument("--resume", metavar="RUN_DIR", help="carry on with an interrupted or failed run")
    sr.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks (numbers or names)")
    sr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sr.set_defaults(func=cmd_suite_run)
    sb = susub.add_parser("book", help="render the newest finished run (or --run DIR) into book/_build/",
                          description="Stages the book's sources (_config.yml, _toc.yml, book/, the run's executed notebooks "
                          "with code folded, parameters cells removed, figures and tables numbered and captioned, and the run "
                          "page with its provenance) under book/_source/ and runs jupyter-book on exactly that "
                          "(execute_notebooks off). PDF: --builder pdflatex, needs LaTeX (make pdf installs it).")
    sb.add_argument("--run", help="suite run folder (default: the newest finished one under results/suite/)")
    sb.add_argument("--builder", choices=["html", "pdflatex"], default="html")
    sb.set_defaults(func=cmd_suite_book)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    """demo: the main job on the demo data."""
    r = sub.add_parser("demo", help="run the main job on the demo data (data, train, evaluate)",
                       description="Make the demo data if missing, train the two demo models (resnet10t and a tiny "
                       "EfficientNet) on the real-style faces, evaluate them, and write results under RESULTS/<run-id>/<model>/ "
                       "(never overwriting a run).")
    r.add_argument("--data", default="data/demo", help="demo data folder (default data/demo)")
    r.add_argument("--results", default="results/demo", help="results parent folder (default results/demo)")
    r.add_argument("--arch", default=None,
                   help="train this one timm architecture instead of the two demo models (B0 from scratch does not learn "
                   "the small demo set)")
    r.add_argument("--weights", help="start from a local weight file (with --arch; e.g. an HSEmotion or VGGFace2 file with --arch b0)")
    r.add_argument("--trust", action="store_true", help="allow unpickling --weights (HSEmotion checkpoints)")
    r.add_argument("--epochs", type=_int_at_least(1), default=20)
    r.add_argument("--image-size", type=_int_at_least(8), default=64)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--force-data", action="store_true", help="rewrite demo data made with other settings or an older version")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=cmd_demo)


#: fercore.analysis.power.DEFAULTS, repeated so ``fercore --help`` does not import the analysis stack
#: (tests/analysis/test_plan_power_cli.py checks they agree).
PLAN_DEFAULTS = {"credits": 30, "kept": 30.0, "test_share": 0.5, "n_real": 3000, "icc": 0.2, "emotions": 8, "classes": 7,
                 "accuracy": 0.6, "share_sd": 0.1}


def _add_plan_power(sub: argparse._SubParsersAction) -> None:
    """plan-power: what a number of generator credits can detect."""
    D = PLAN_DEFAULTS
    p = sub.add_parser("plan-power", help="minimal detectable effects of a design, and the grids a target gap needs",
                       description="Minimal detectable balanced-accuracy gap (real - synthetic) and region-share difference at "
                       "80 %% power for a number of generator credits (grids), and with --target-gap the grids needed. "
                       "The ICC is that of right/wrong answers within a grid (observed scale). With --pilot RUN_FOLDER, "
                       "kept faces per grid and the ICC are measured from a pilot run's synthetic predictions.")
    p.add_argument("--grids", "--credits", dest="credits", type=_int_at_least(1), default=D["credits"],
                   help=f"generator credits, one grid each (default {D['credits']})")
    p.add_argument("--kept", type=float, default=D["kept"], help=f"kept faces per grid (default {D['kept']:g} of 36)")
    p.add_argument("--test-share", type=float, default=D["test_share"], help=f"share of grids for testing (default {D['test_share']})")
    p.add_argument("--real", type=_int_at_least(1), default=D["n_real"], help=f"real test faces in all (default {D['n_real']})")
    p.add_argument("--icc", type=float, default=D["icc"], help=f"intra-class correlation within a grid (default {D['icc']})")
    p.add_argument("--emotions", type=_int_at_least(1), default=D["emotions"],
                   help=f"emotions the grids are spread over (default {D['emotions']})")
    p.add_argument("--classes", type=_int_at_least(1), default=D["classes"],
                   help=f"classes shared with the real set (default {D['classes']}: FER2013)")
    p.add_argument("--accuracy", type=float, default=D["accuracy"], help=f"expected accuracy (default {D['accuracy']})")
    p.add_argument("--share-sd", type=float, default=D["share_sd"],
                   help=f"SD of a face's region share, for the region-share MDE (default {D['share_sd']})")
    p.add_argument("--target-gap", type=float, help="print the grids needed to detect this gap (points of balanced accuracy)")
    p.add_argument("--pilot", metavar="RUN_FOLDER", help="measure kept faces per grid and the ICC from a pilot run")
    p.add_argument("--figure", metavar="PNG", help="also write the MDE-against-grids figure (the method chapter's) to PNG")
    p.set_defaults(func=cmd_plan_power)


def _add_label_sheet(sub: argparse._SubParsersAction) -> None:
    """label-sheet / label-agreement: synthetic labels checked by a person (docs/label-sheet.md)."""
    s = sub.add_parser("label-sheet", help="a blind sheet to check the synthetic faces' prompt labels by eye",
                       description="Numbers the kept faces of an extraction manifest in a shuffled order (across grids), writes "
                       "contact-sheet pages (each face with its number, no prompt) and label_sheet.csv (a row per face, blank "
                       "emotion, gender, usable, comment) into OUT, and the key (face number -> file and prompt) apart from it.")
    s.add_argument("manifest", help="manifest.csv written by `fercore extract`")
    s.add_argument("--out", required=True, help="new folder for the sheet and its pages")
    s.add_argument("--key", help="the key file (default OUT-key/label_key.csv, beside OUT; never inside it)")
    s.add_argument("--split", help="only this split's faces (default: all)")
    s.add_argument("--seed", type=int, default=0, help="the shuffle's seed")
    s.add_argument("--per-page", type=_int_at_least(1), default=48, help="faces per page image")
    s.add_argument("--force", action="store_true", help="replace an earlier sheet and key")
    s.set_defaults(func=cmd_label_sheet)
    a = sub.add_parser("label-agreement", help="read a filled label sheet: Cohen's kappa of prompt and person per emotion",
                       description="Validates the filled sheet (face numbers, emotion names, gender, usable), joins the prompts "
                       "back from the key and prints Cohen's kappa per emotion and overall with a grid-bootstrap interval.")
    a.add_argument("sheet", help="the filled label_sheet.csv")
    a.add_argument("--key", help="the key file (default: <sheet folder>-key/label_key.csv)")
    a.add_argument("--n-boot", type=_int_at_least(0), default=1000, help="bootstrap draws of whole grids")
    a.add_argument("--seed", type=int, default=0)
    a.set_defaults(func=cmd_label_agreement)
def _add_plan_prompts(sub: argparse._SubParsersAction) -> None:
    """plan-prompts: a generation plan crossing prompt factors on a credit budget, and what it can detect."""
    D = PLAN_DEFAULTS
    p = sub.add_parser("plan-prompts", help="a grids.csv plan crossing templates, intensity words and generators, balanced",
                       description="Spread CREDITS grids over emotion x gender (one or two per pair at 30), crossing the "
                       "prompt templates, intensity words and generators given, each level used equally often (within one) "
                       "overall, within each emotion and in the test split; Neutral stays outside the intensity contrast "
                       "(no intensity word). Prints the levels per factor and the effect each factor can detect at this "
                       "budget (80 %% power, the plan-power planner); with --out, writes OUT/<split>/grids.csv.")
    p.add_argument("--grids", "--credits", dest="credits", type=_int_at_least(1), default=D["credits"],
                   help=f"generator credits, one grid each (default {D['credits']})")
    p.add_argument("--templates", nargs="+", default=["movie"], metavar="NAME",
                   help="named prompt templates: movie (the best-known), emotion-first, no-movie, realistic (default movie)")
    p.add_argument("--intensities", nargs="+", default=["high"], metavar="WORD",
                   help="intensity words: subtle, high, extreme (default high; Neutral gets none)")
    p.add_argument("--generators", nargs="+", default=["flux-dev"], metavar="NAME", help="generator names (default flux-dev)")
    p.add_argument("--test-share", type=float, default=D["test_share"], help=f"share of grids for testing (default {D['test_share']})")
    p.add_argument("--seed", type=int, default=0, help="the first grid's generator seed (each grid gets its own)")
    p.add_argument("--layout", default="6x6", help="ROWSxCOLS the prompt asks for (default 6x6)")
    p.add_argument("--kept", type=float, default=D["kept"], help=f"kept faces per grid, for the effects (default {D['kept']:g})")
    p.add_argument("--icc", type=float, default=D["icc"], help=f"intra-class correlation within a grid (default {D['icc']})")
    p.add_argument("--real", type=_int_at_least(1), default=D["n_real"], help=f"real test faces in all (default {D['n_real']})")
    p.add_argument("--classes", type=_int_at_least(1), default=D["classes"],
                   help=f"classes shared with the real set (default {D['classes']}: FER2013)")
    p.add_argument("--accuracy", type=float, default=D["accuracy"], help=f"expected accuracy (default {D['accuracy']})")
    p.add_argument("--out", metavar="RAW_DIR", help="write RAW_DIR/<split>/grids.csv (never replaces a plan)")
    p.set_defaults(func=cmd_plan_prompts)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fercore",
        description="Facial-emotion-recognition research suite: real vs AI-generated faces.",
    )
    parser.add_argument("--version", action="version", version=f"fercore {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--debug", action="store_true", help="show the full Python traceback of any error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _add_check_data(sub)
    _add_weights(sub)
    _add_demo_data(sub)
    _add_training(sub)
    _add_extract(sub)
    _add_inference(sub)
    _add_suite(sub)
    _add_demo(sub)
    _add_plan_power(sub)
    _add_label_sheet(sub)
    _add_plan_prompts(sub)
    return parser
