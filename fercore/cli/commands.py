"""The sub-commands: each parses nothing and calls one library function with the parsed arguments.
fercore's packages are imported inside each command, so `fercore --help` starts fast."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_check_data(args: argparse.Namespace) -> int:
    import hashlib

    from fercore.core.files import check_output
    from fercore.core.outputs import claim_output, mark_output
    from fercore.data import check_data, write_report

    root = Path(args.root).resolve()
    if args.out:  # a named report is never replaced silently; the default name is one per folder (name + path digest)
        out = claim_output(args.out, "check-data", force=args.force, data_roots=[root])
    else:
        out = check_output(Path("results") / "check-data" / f"{root.name}-{hashlib.sha256(str(root).encode()).hexdigest()[:8]}.json",
                           force=True)
    report = check_data(args.root, workers=args.workers, progress=not args.quiet)
    print(report.table())
    write_report(report, out)
    mark_output(out, "check-data")
    print(f"\nreport written to {out}")
    return 1 if (args.strict and report.has_errors) else 0


def cmd_weights_inspect(args: argparse.Namespace) -> int:
    from fercore.models import inspect_weights

    info = inspect_weights(args.file, trust_pickle=args.trust)
    print("\n".join(info.lines()))
    return 0


def cmd_weights_convert(args: argparse.Namespace) -> int:
    from fercore.core.outputs import claim_output, mark_output
    from fercore.models import convert_weights, inspect_weights

    claim_output(args.dst, "weights convert", force=args.force, model=True, inputs=[args.src])
    out = convert_weights(args.src, args.dst, trust_pickle=args.trust, overwrite=args.force)
    mark_output(out, "weights convert")
    info = inspect_weights(out)
    print(f"wrote {out}: plain state dict, {info.tensors} tensors, arch guess {info.arch_guess}, "
          f"head {info.head_classes or 'none'}; load it without --trust from now on")
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from fercore.demo import DemoSpec, make_demo_data

    spec = DemoSpec(seed=args.seed)
    stamp = make_demo_data(args.out, spec, force=args.force, progress=not args.quiet)
    print(
        f"demo data in {args.out}: {stamp['real_images']} real-style faces under real/, "
        f"{stamp['synthetic_grids']} synthetic grids ({stamp['synthetic_faces']} faces) under synthetic/raw_grids/"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
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


def cmd_suite_run(args: argparse.Namespace) -> int:
    from fercore.book import SuiteParams, run_suite

    if not (args.params or args.resume):
        raise SystemExit("fercore suite run: error: give --params configs/<name>.yaml (or --resume RUN_DIR)")
    params = SuiteParams.from_yaml(args.params, args.set or []) if args.params and not args.resume else None
    run = run_suite(params, resume=args.resume, only=args.only, progress=not args.quiet)
    for name, seconds in run.seconds.items():
        print(f"  {name}: {seconds:.0f} s")
    print(f"executed notebooks and chapter outputs in {run.run_dir} ({run.total_seconds:.0f} s)")
    return 0


def cmd_suite_book(args: argparse.Namespace) -> int:
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


def cmd_train(args: argparse.Namespace) -> int:
    from fercore.core.outputs import claim_output, mark_output
    from fercore.training import train

    if args.resume:
        result = train(resume=args.resume)
    else:
        config = _train_config(args)
        if args.out:
            claim_output(args.out, "train", force=args.force, folder=True, inputs=[config.weights],
                         data_roots=[config.data_root])
        result = train(config, out=args.out)
    if result.run_dir is None:  # a non-zero DDP rank
        return 0
    if args.out and not args.resume:
        mark_output(result.run_dir, "train")
    best = result.best
    config = result.config
    selection = config.val_split or f"{config.val_fraction:.0%} of {config.train_split}"
    print(f"run {result.run_dir}: best epoch {result.best_epoch}; selection split ({selection}) accuracy {best['accuracy']:.4f}, "
          f"macro-F1 {best['macro_f1']:.4f}"
          + (f"; test split ({config.test_split}) accuracy {result.test['accuracy']:.4f}, macro-F1 {result.test['macro_f1']:.4f}"
             if result.test else "; no test split scored") + f" ({result.seconds:.0f} s)")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from fercore.training import cv_samples, run_cv, summarise

    config = _train_config(args)
    samples, k = cv_samples(config, args.samples, args.k)
    table = run_cv(config, k, samples=samples, out=args.out)
    print(table.to_string(index=False))
    print(f"accuracy {summarise(table['accuracy'])}, macro-F1 {summarise(table['macro_f1'])}")
    return 0


def cmd_gender_splits(args: argparse.Namespace) -> int:
    from fercore.training import gender_split_samples, run_gender_splits

    config = _train_config(args)
    train_samples, test_samples = gender_split_samples(config, args.samples, args.test_samples)
    table = run_gender_splits(config, train_samples, test_samples, args.percents, out=args.out)
    print(table.pivot_table(index=["arm", "base", "percent", "n_train"], columns="test_on", values="accuracy",
                            dropna=False).dropna(how="all").round(3).to_string())
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from fercore.core.labels import class_set
    from fercore.core.outputs import claim_output, mark_output
    from fercore.inference import collect_images, predict, write_predictions
    from fercore.models import load_model

    claim_output(args.out, "predict", force=args.force, inputs=[args.checkpoint, *args.inputs])
    images = collect_images(args.inputs)
    model = load_model(args.checkpoint, trust_pickle=args.trust)
    classes = class_set(args.classes, within=model.trained_classes)
    preds = predict(model, images, classes=classes, batch_size=args.batch_size, workers=args.workers,
                    device=args.device, progress=not args.quiet, backend=args.backend, threads=args.threads,
                    preprocess=args.preprocess)
    write_predictions(preds, args.out, logits=args.logits)
    mark_output(args.out, "predict")
    failed = int((preds["error"] != "").sum())
    print(f"{len(preds)} images -> {args.out}" + (f" ({failed} unreadable: see the 'error' column)" if failed else ""))
    print(f"predictions among {len(classes)} classes ({', '.join(classes)})"
          + ("" if args.classes else ": the classes the model was trained on; --classes to choose"))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fercore.core.outputs import claim_output, mark_output
    from fercore.inference import evaluate_folder
    from fercore.models import load_model

    claim_output(args.out, "evaluate", force=args.force, folder=True, inputs=[args.checkpoint],
                 data_roots=[args.data_root, args.train_root])
    model = load_model(args.checkpoint, trust_pickle=args.trust)
    metrics = evaluate_folder(model, args.data_root, args.out, split=args.split, classes=args.classes,
                              calibrate_on=args.calibrate_on, keep_duplicates=args.keep_duplicates, train_root=args.train_root,
                              workers=args.workers, batch_size=args.batch_size, progress=not args.quiet, backend=args.backend,
                              threads=args.threads, preprocess=args.preprocess)
    mark_output(args.out, "evaluate")
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
    print(f"intervals: {metrics['bootstrap_95ci']['interval']}")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from fercore.core.outputs import claim_output, mark_output
    from fercore.models import export_onnx

    claim_output(args.out, "export-onnx", force=args.force, model=True, inputs=[args.checkpoint])
    report = export_onnx(args.checkpoint, args.out, opset=args.opset, overwrite=args.force)
    mark_output(report["path"], "export-onnx")
    parity = report["parity"]
    print(f"wrote {report['path']} (input N x 3 x {report['image_size']} x {report['image_size']})"
          + (f"; max |onnx - torch| = {parity['max_abs_diff']:.2e}" if parity else "; parity not checked (no onnxruntime)"))
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from fercore.core.files import check_output
    from fercore.grids import ExtractOptions, QualityThresholds, extract_grids, failed_grids, layout_disagreements, summary_table

    thresholds = replace(QualityThresholds(), **({"min_blur": args.min_blur} if args.min_blur is not None else {}))
    options = ExtractOptions(layout=args.layout, layout_strategy=args.layout_strategy, expected=args.expected,
                             detector=args.detector, face_size=args.face_size, margin=args.margin, crop=args.crop,
                             framing=args.framing, thresholds=thresholds)
    check_output(args.out_dir, force=True, folder=True)  # reused on purpose (resume); must be writable
    manifest = extract_grids(args.raw_dir, args.out_dir, options, workers=args.workers, force=args.force,
                             progress=not args.quiet)
    print(summary_table(manifest).to_string())
    grids = manifest.drop_duplicates("source")
    for row in grids.itertuples(index=False):  # auto: how each layout was chosen and what lost; else mismatches only
        if row.layout_evidence or "expected" in row.layout:
            print(f"layout: {row.source}: {row.layout} [{row.layout_method}]" + (f": {row.layout_evidence}" if row.layout_evidence else ""))
    off = layout_disagreements(manifest)  # per generator: grids whose layout is not the one the prompt asked for
    for row in off[off["disagree"] > 0].to_dict("records"):
        print(f"layout not as asked: {row['disagree']} of {row['checked']} grids of generator {row['generator']} ({row['found instead']})")
    failed = failed_grids(manifest)
    for row in failed.itertuples(index=False):
        print(f"not extracted: {row.source}: {row.reason}")
    grids = manifest["source"].nunique()
    print(f"\n{int(manifest['kept'].sum())} of {len(manifest) - len(failed)} cells kept from {grids - len(failed)} of {grids} grids"
          + (f" ({len(failed)} grids failed, see the manifest's reason)" if len(failed) else "")
          + f"; faces under {args.out_dir}/<split>/<emotion>/, manifest {args.out_dir}/manifest.csv, "
          f"contact sheets {args.out_dir}/contact_sheets/")
    return 1 if (args.strict and len(failed)) else 0


def cmd_plan_power(args: argparse.Namespace) -> int:
    from fercore.analysis import pilot_design, plan, write_mde_figure

    kept, icc = args.kept, args.icc
    if args.pilot:
        kept, measured = pilot_design(args.pilot)
        icc = measured.value
        print(f"pilot {args.pilot}: {kept:.1f} kept faces per grid, ICC {measured.text()}")
    result = plan(credits=args.credits, kept=kept, test_share=args.test_share, n_real=args.real, icc=icc, emotions=args.emotions,
                  classes=args.classes, accuracy=args.accuracy, share_sd=args.share_sd, target_gap=args.target_gap)
    print("\n".join(result.lines()))
    if args.figure:
        print(f"figure written to {write_mde_figure(args.figure, kept=kept, n_real=args.real, classes=args.classes, accuracy=args.accuracy)}")
    return 0


def cmd_label_sheet(args: argparse.Namespace) -> int:
    from fercore.synthetic import write_blind_sheet

    written = write_blind_sheet(args.manifest, args.out, key=args.key, split=args.split, seed=args.seed, per_page=args.per_page,
                                force=args.force)
    print(f"{written.faces} faces, shuffled and numbered: fill {written.sheet} while looking at {len(written.pages)} page(s) "
          f"under {written.sheet.parent / 'pages'}; the key {written.key} holds the prompts: do not show it to the person")
    return 0


def cmd_label_agreement(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    import pandas as pd

    from fercore.synthetic import label_agreement, read_label_sheet

    joined = read_label_sheet(args.sheet, args.key)
    rows = label_agreement(joined, n_boot=args.n_boot, seed=args.seed)
    print(pd.DataFrame([asdict(r) for r in rows]).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0


def cmd_plan_prompts(args: argparse.Namespace) -> int:
    import pandas as pd

    from fercore.grids import parse_layout
    from fercore.synthetic import NEUTRAL_INTENSITY, TEMPLATE_NOTES, design, generation_plan, plan_effects, write_plans

    rows, cols = parse_layout(args.layout)
    plan = generation_plan(args.credits, template=args.templates, intensity=args.intensities, generator=args.generators,
                           test_share=args.test_share, seed=args.seed, rows=rows, cols=cols)
    pairs = plan.groupby(["emotion", "gender"]).size()
    print(f"plan: {len(plan)} grids, {pairs.min()}-{pairs.max()} per emotion x gender pair, "
          f"{int((plan['split'] == 'test').sum())} for testing; Neutral: intensity {NEUTRAL_INTENSITY[1]!r} (no word), "
          "outside the intensity contrast")
    for name in args.templates:
        print(f"template {name}: {TEMPLATE_NOTES[name]}")
    for factor in ("template", "intensity", "generator"):
        if plan[factor].nunique() > 1 or factor == "template":
            counts = design.level_counts(plan, factor, exempt=NEUTRAL_INTENSITY if factor == "intensity" else None)
            print(f"\ngrids per {factor}:\n{counts.to_string()}")
    effects = plan_effects(plan, kept=args.kept, icc=args.icc, n_real=args.real, classes=args.classes, accuracy=args.accuracy)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(f"\ndetectable effects at {len(plan)} credits (80 % power, alpha 0.05, ICC {args.icc:g}, {args.kept:g} kept faces "
              f"per grid; MDE in points of accuracy):\n{effects.to_string(index=False)}")
    if args.out:
        for path in write_plans(plan, args.out):
            print(f"written: {path}")
    return 0
