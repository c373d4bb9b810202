"""The ``fercore`` command line. Each subcommand is a thin wrapper over one library function."""

from __future__ import annotations

import argparse
import logging
import sys
import typing
from collections.abc import Sequence
from pathlib import Path

from fercore import __version__


def _cmd_check_data(args: argparse.Namespace) -> int:
    import hashlib

    from fercore.core.files import check_output
    from fercore.data import check_data, write_report

    root = Path(args.root).resolve()
    if args.out:  # a named report is never replaced silently; the default name is one per folder (name + path digest)
        out = check_output(args.out, force=args.force)
    else:
        out = check_output(Path("results") / "check-data" / f"{root.name}-{hashlib.sha256(str(root).encode()).hexdigest()[:8]}.json",
                           force=True)
    report = check_data(args.root, workers=args.workers, progress=not args.quiet)
    print(report.table())
    write_report(report, out)
    print(f"\nreport written to {out}")
    return 1 if (args.strict and report.has_errors) else 0


def _cmd_weights_inspect(args: argparse.Namespace) -> int:
    from fercore.models import inspect_weights

    info = inspect_weights(args.file, trust_pickle=args.trust)
    print("\n".join(info.lines()))
    return 0


def _cmd_weights_convert(args: argparse.Namespace) -> int:
    from fercore.core.files import check_output
    from fercore.models import convert_weights, inspect_weights

    check_output(args.dst, force=args.force)
    out = convert_weights(args.src, args.dst, trust_pickle=args.trust, overwrite=args.force)
    info = inspect_weights(out)
    print(f"wrote {out}: plain state dict, {info.tensors} tensors, arch guess {info.arch_guess}, "
          f"head {info.head_classes or 'none'}; load it without --trust from now on")
    return 0


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from fercore.demo import DemoSpec, make_demo_data

    spec = DemoSpec(seed=args.seed)
    stamp = make_demo_data(args.out, spec, force=args.force, progress=not args.quiet)
    print(
        f"demo data in {args.out}: {stamp['real_images']} real-style faces under real/, "
        f"{stamp['synthetic_grids']} synthetic grids ({stamp['synthetic_faces']} faces) under synthetic/raw_grids/"
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from fercore.demo import DEMO_MODELS, DemoRunConfig, run_demo

    config = DemoRunConfig(
        data_dir=Path(args.data),
        results_dir=Path(args.results),
        models={args.arch: args.arch} if args.arch else dict(DEMO_MODELS),
        weights=Path(args.weights) if args.weights else None,
        trust_pickle=args.trust,
        epochs=args.epochs,
        image_size=args.image_size,
        seed=args.seed,
        progress=not args.quiet,
        force_data=args.force_data,
    )
    summary = run_demo(config)
    print(summary.text())
    return 0


def _cmd_suite_run(args: argparse.Namespace) -> int:
    from fercore.book import SuiteParams, run_suite

    if not (args.params or args.resume):
        raise SystemExit("fercore suite run: error: give --params configs/<name>.yaml (or --resume RUN_DIR)")
    params = SuiteParams.from_yaml(args.params, args.set or []) if args.params and not args.resume else None
    run = run_suite(params, resume=args.resume, only=args.only, progress=not args.quiet)
    for name, seconds in run.seconds.items():
        print(f"  {name}: {seconds:.0f} s")
    print(f"executed notebooks and chapter outputs in {run.run_dir} ({run.total_seconds:.0f} s)")
    return 0


def _cmd_suite_book(args: argparse.Namespace) -> int:
    from fercore.book import build_book

    out = build_book(args.run, builder=args.builder)
    print(f"book ({args.builder}) built from the executed notebooks: {out.resolve()}")
    return 0


def _train_config(args: argparse.Namespace):
    from fercore.training import TrainConfig

    overrides = list(args.set or [])
    if args.data_root:
        overrides.append(f"data_root={args.data_root}")
    return TrainConfig.from_yaml(args.config, overrides)


def _cmd_train(args: argparse.Namespace) -> int:
    from fercore.training import train

    if args.resume:
        result = train(resume=args.resume)
    else:
        result = train(_train_config(args), out=args.out)
    if result.run_dir is None:  # a non-zero DDP rank
        return 0
    best = result.best
    config = result.config
    selection = config.val_split or f"{config.val_fraction:.0%} of {config.train_split}"
    print(f"run {result.run_dir}: best epoch {result.best_epoch}; selection split ({selection}) accuracy {best['accuracy']:.4f}, "
          f"macro-F1 {best['macro_f1']:.4f}"
          + (f"; test split ({config.test_split}) accuracy {result.test['accuracy']:.4f}, macro-F1 {result.test['macro_f1']:.4f}"
             if result.test else "; no test split scored") + f" ({result.seconds:.0f} s)")
    return 0


def _cmd_cv(args: argparse.Namespace) -> int:
    from fercore.training import cv_samples, run_cv, summarise

    config = _train_config(args)
    samples, k = cv_samples(config, args.samples, args.k)
    table = run_cv(config, k, samples=samples, out=args.out)
    print(table.to_string(index=False))
    print(f"accuracy {summarise(table['accuracy'])}, macro-F1 {summarise(table['macro_f1'])}")
    return 0


def _cmd_gender_splits(args: argparse.Namespace) -> int:
    from fercore.training import gender_split_samples, run_gender_splits

    config = _train_config(args)
    train_samples, test_samples = gender_split_samples(config, args.samples, args.test_samples)
    table = run_gender_splits(config, train_samples, test_samples, args.percents, out=args.out)
    print(table.pivot_table(index=["arm", "base", "percent", "n_train"], columns="test_on", values="accuracy",
                            dropna=False).dropna(how="all").round(3).to_string())
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from fercore.core.files import check_output
    from fercore.core.labels import class_set
    from fercore.inference import collect_images, predict, write_predictions
    from fercore.models import load_model

    check_output(args.out, force=args.force)
    images = collect_images(args.inputs)
    model = load_model(args.checkpoint, trust_pickle=args.trust)
    classes = class_set(args.classes, within=model.trained_classes)
    preds = predict(model, images, classes=classes, batch_size=args.batch_size, workers=args.workers,
                    device=args.device, progress=not args.quiet, backend=args.backend, threads=args.threads,
                    preprocess=args.preprocess)
    write_predictions(preds, args.out, logits=args.logits)
    failed = int((preds["error"] != "").sum())
    print(f"{len(preds)} images -> {args.out}" + (f" ({failed} unreadable: see the 'error' column)" if failed else ""))
    print(f"predictions among {len(classes)} classes ({', '.join(classes)})"
          + ("" if args.classes else ": the classes the model was trained on; --classes to choose"))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from fercore.core.files import check_output
    from fercore.inference import evaluate_folder
    from fercore.models import load_model

    check_output(args.out, folder=True)
    model = load_model(args.checkpoint, trust_pickle=args.trust)
    metrics = evaluate_folder(model, args.data_root, args.out, split=args.split, classes=args.classes,
                              calibrate_on=args.calibrate_on, keep_duplicates=args.keep_duplicates, train_root=args.train_root,
                              workers=args.workers, batch_size=args.batch_size, progress=not args.quiet, backend=args.backend,
                              threads=args.threads, preprocess=args.preprocess)
    dup = metrics["duplicates"]
    if "dropped_total" in dup:
        from fercore.data import DuplicateReport

        print(DuplicateReport.from_json(dup).line())
    else:
        print("duplicates: kept (--keep-duplicates)")
    print(f"scored on {len(metrics['restricted_to_classes'])} classes: {', '.join(metrics['restricted_to_classes'])}")
    ci = metrics["bootstrap_95ci"]["accuracy"]
    print(f"{args.data_root}/{args.split}: accuracy {metrics['accuracy']:.4f} (95% CI {ci['low']:.4f}-{ci['high']:.4f}), "
          f"macro-F1 {metrics['macro avg']['f1-score']:.4f}, ECE {metrics['calibration']['ece']:.4f}; "
          f"written to {args.out}/ (predictions.csv, metrics.json, figures/)")
    return 0


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from fercore.core.files import check_output
    from fercore.models import export_onnx

    check_output(args.out, force=args.force)
    report = export_onnx(args.checkpoint, args.out, opset=args.opset, overwrite=args.force)
    parity = report["parity"]
    print(f"wrote {report['path']} (input N x 3 x {report['image_size']} x {report['image_size']})"
          + (f"; max |onnx - torch| = {parity['max_abs_diff']:.2e}" if parity else "; parity not checked (no onnxruntime)"))
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from fercore.core.files import check_output
    from fercore.grids import ExtractOptions, QualityThresholds, extract_grids, summary_table

    thresholds = replace(QualityThresholds(), **({"min_blur": args.min_blur} if args.min_blur is not None else {}))
    options = ExtractOptions(layout=args.layout, layout_strategy=args.layout_strategy, expected=args.expected,
                             detector=args.detector, face_size=args.face_size, margin=args.margin, thresholds=thresholds)
    check_output(args.out_dir, force=True, folder=True)  # reused on purpose (resume); must be writable
    manifest = extract_grids(args.raw_dir, args.out_dir, options, workers=args.workers, force=args.force,
                             progress=not args.quiet)
    print(summary_table(manifest).to_string())
    grids = manifest.drop_duplicates("source")
    for row in grids.itertuples(index=False):  # auto: how each layout was chosen and what lost; else mismatches only
        if row.layout_evidence or "expected" in row.layout:
            print(f"layout: {row.source}: {row.layout} [{row.layout_method}]" + (f": {row.layout_evidence}" if row.layout_evidence else ""))
    print(f"\n{int(manifest['kept'].sum())} of {len(manifest)} cells kept; faces under {args.out_dir}/<split>/<emotion>/, "
          f"manifest {args.out_dir}/manifest.csv, contact sheets {args.out_dir}/contact_sheets/")
    return 0


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
    p.set_defaults(func=_cmd_check_data)


def _add_weights(sub: argparse._SubParsersAction) -> None:
    """weights inspect | convert."""
    w = sub.add_parser("weights", help="inspect or convert model weight files",
                       description="Inspect or convert local weight files (state dicts, VGGFace2 backbones, HSEmotion checkpoints).")
    wsub = w.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    wi = wsub.add_parser("inspect", help="print format, architecture guess, tensor count, head size, sha256",
                         description="Describe a weight file without building a model.")
    wi.add_argument("file")
    wi.add_argument("--trust", action="store_true", help="allow unpickling (only for files from a source you trust)")
    wi.set_defaults(func=_cmd_weights_inspect)
    wc = wsub.add_parser("convert", help="write a plain, safe state dict (e.g. from an HSEmotion checkpoint)",
                         description="Read IN (with --trust for pickled HSEmotion models) and write OUT as a plain "
                         "state dict that torch.load(weights_only=True) accepts, keys in timm 1.x names.")
    wc.add_argument("src", metavar="IN")
    wc.add_argument("dst", metavar="OUT")
    wc.add_argument("--trust", action="store_true", help="allow unpickling IN (only for files from a source you trust)")
    wc.add_argument("--force", action="store_true", help="replace OUT if it exists")
    wc.set_defaults(func=_cmd_weights_convert)


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
    d.set_defaults(func=_cmd_demo_data)


def _add_training(sub: argparse._SubParsersAction) -> None:
    """train, cv and gender-splits: training runs and the experiments made of them."""
    t = sub.add_parser("train", help="train / fine-tune a model from a config (SAM, staged unfreezing, resumable)",
                       description="Train or fine-tune as the config says. Writes config.yaml, log.csv, checkpoint.pt "
                       "(best validation epoch), last.pt (resumable state) and metrics.json into a new run folder. "
                       "Under `torchrun --nproc_per_node N` it trains with DistributedDataParallel.")
    _add_config_options(t, config_required=False)
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (its config is used)")
    t.set_defaults(func=_cmd_train)

    c = sub.add_parser("cv", help="k-fold cross-validation, grouped by source grid when known",
                       description="Train k models, each scored on its held-out fold; faces from one grid image are "
                       "never on both sides when the samples have a 'source' column. Writes folds.csv and summary.json.")
    _add_config_options(c)
    c.add_argument("--samples", help="sample table CSV (path, emotion, source ...; e.g. the extraction manifest) "
                   "instead of the config's data_root")
    c.add_argument("--k", type=_int_at_least(2), default=None,
                   help="number of folds (default 5, fewer when the data has fewer source grids; a --k the data cannot fill is an error)")
    c.set_defaults(func=_cmd_cv)

    g = sub.add_parser("gender-splits", help="train on one gender + p%% of the other; test per gender",
                       description="For each p: train on 100%% women + p%% men and on 100%% men + p%% women; "
                       "evaluate on women, men and all test faces. Writes results.csv and an accuracy-vs-p plot.")
    _add_config_options(g)
    g.add_argument("--samples", required=True, help="sample table CSV with path, emotion, gender (and split)")
    g.add_argument("--test-samples", help="test table CSV (default: rows of --samples whose split is the test split)")
    g.add_argument("--percents", type=float, nargs="+", default=[0, 25, 50, 75, 100])
    g.set_defaults(func=_cmd_gender_splits)


def _add_extract(sub: argparse._SubParsersAction) -> None:
    """extract: faces from generated grid images."""
    x = sub.add_parser("extract", help="extract validated, quality-checked faces from generated grid images",
                       description="Reads RAW_DIR/<split>/*.png|jpg with RAW_DIR/<split>/grids.csv (file, emotion, gender ...); "
                       "writes OUT_DIR/<split>/<emotion>/<grid>_r<row>c<col>.png, OUT_DIR/manifest.csv (one row per cell: "
                       "box, kept, reason, quality scores) and a contact sheet per grid. Raw images are never modified; a "
                       "rerun skips grids already extracted (by content hash). The procedural demo faces are cartoons: "
                       "extract them with --detector none.")
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
    x.add_argument("--margin", type=float, default=0.25, help="crop margin around a detected face (share of its size)")
    x.add_argument("--min-blur", type=float, help="Laplacian-variance threshold (default 12)")
    x.add_argument("--workers", type=_int_at_least(0), default=2)
    x.add_argument("--force", action="store_true", help="redo grids already extracted")
    x.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    x.set_defaults(func=_cmd_extract)


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
    pr.set_defaults(func=_cmd_predict)

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
    _add_inference_options(ev)
    ev.set_defaults(func=_cmd_evaluate)

    ex = sub.add_parser("export-onnx", help="export a checkpoint to ONNX (parity-checked with onnxruntime)",
                        description="Dynamic batch axis; input 'image' N x 3 x S x S preprocessed like fercore, output "
                        "'logits' N x 8. Needs the onnx extra: pip install 'fercore[onnx]'.")
    ex.add_argument("checkpoint")
    ex.add_argument("out", metavar="OUT.onnx")
    ex.add_argument("--opset", type=int, default=18)
    ex.add_argument("--force", action="store_true", help="replace OUT if it exists")
    ex.set_defaults(func=_cmd_export_onnx)


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
    sr.set_defaults(func=_cmd_suite_run)
    sb = susub.add_parser("book", help="render the newest finished run (or --run DIR) into book/_build/",
                          description="Stages the book's sources (_config.yml, _toc.yml, book/, the run's executed notebooks "
                          "with code folded, parameters cells removed, figures and tables numbered and captioned, and the run "
                          "page with its provenance) under book/_source/ and runs jupyter-book on exactly that "
                          "(execute_notebooks off). PDF: --builder pdflatex, needs LaTeX (make pdf installs it).")
    sb.add_argument("--run", help="suite run folder (default: the newest finished one under results/suite/)")
    sb.add_argument("--builder", choices=["html", "pdflatex"], default="html")
    sb.set_defaults(func=_cmd_suite_book)


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
    r.set_defaults(func=_cmd_demo)


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
    return parser


def _expected(err: BaseException) -> bool:
    """An error the user can fix (bad input, config, file, permission), not a bug in fercore: the
    error classes fercore raises on purpose, file-system errors, and ValueErrors raised by
    fercore's own checks (a ValueError from inside a library is a bug: fercore validates first)."""
    import errno

    from fercore.book import SuiteError
    from fercore.core.config import ConfigError
    from fercore.core.labels import UnknownLabelError
    from fercore.data import DatasetLayoutError
    from fercore.grids import GridInputError
    from fercore.models import WeightsError
    from fercore.training import TrainingDivergedError

    if isinstance(err, (ConfigError, WeightsError, DatasetLayoutError, GridInputError, UnknownLabelError, SuiteError,
                        TrainingDivergedError, FileExistsError, FileNotFoundError, PermissionError, IsADirectoryError,
                        NotADirectoryError)):
        return True
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES):
        return True
    if isinstance(err, ValueError):
        frame = err.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        return frame is not None and Path(frame.tb_frame.f_code.co_filename).resolve().parent.is_relative_to(Path(__file__).parent)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Expected failures print one message (``fercore CMD: error: ...``) and
    return 2; other exceptions are bugs and keep their traceback (always shown with ``--debug``)."""
    import matplotlib

    matplotlib.use("Agg")  # the command line writes figure files only
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if getattr(args, "func", None) is _cmd_train and not (args.config or args.resume):
        parser.error("train needs --config CFG (or --resume RUN_DIR)")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"fercore {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug or not _expected(err):
            raise
        print(f"fercore {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
