"""The ``fercore`` command line. Each subcommand is a thin wrapper over one library function."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__

log = logging.getLogger("fercore")


def _cmd_check_data(args: argparse.Namespace) -> int:
    from .datacheck import check_data, write_report

    report = check_data(args.root, workers=args.workers, progress=not args.quiet)
    print(report.table())
    out = Path(args.out) if args.out else Path("results") / "check-data" / f"{Path(args.root).resolve().name}.json"
    write_report(report, out)
    print(f"\nreport written to {out}")
    return 1 if (args.strict and report.has_errors) else 0


def _cmd_weights_inspect(args: argparse.Namespace) -> int:
    from .models import inspect_weights

    info = inspect_weights(args.file, trust_pickle=args.trust)
    print("\n".join(info.lines()))
    return 0


def _cmd_weights_convert(args: argparse.Namespace) -> int:
    from .models import convert_weights, inspect_weights

    out = convert_weights(args.src, args.dst, trust_pickle=args.trust, overwrite=args.force)
    info = inspect_weights(out)
    print(f"wrote {out}: plain state dict, {info.tensors} tensors, arch guess {info.arch_guess}, "
          f"head {info.head_classes or 'none'}; load it without --trust from now on")
    return 0


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from .demo import DemoSpec, make_demo_data

    spec = DemoSpec(seed=args.seed)
    stamp = make_demo_data(args.out, spec, force=args.force, progress=not args.quiet)
    print(
        f"demo data in {args.out}: {stamp['real_images']} real-style faces under real/, "
        f"{stamp['synthetic_grids']} synthetic grids ({stamp['synthetic_faces']} faces) under synthetic/raw_grids/"
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .pipeline import DemoRunConfig, run_demo

    config = DemoRunConfig(
        data_dir=Path(args.data),
        results_dir=Path(args.results),
        arch=args.arch,
        weights=Path(args.weights) if args.weights else None,
        trust_pickle=args.trust,
        epochs=args.epochs,
        image_size=args.image_size,
        seed=args.seed,
        progress=not args.quiet,
    )
    summary = run_demo(config)
    print(summary.text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fercore",
        description="Facial-emotion-recognition research suite: real vs AI-generated faces.",
    )
    parser.add_argument("--version", action="version", version=f"fercore {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("check-data", help="check a folder dataset ROOT/<split>/<emotion>/* for problems",
                       description="Counts per split and class; unreadable, truncated and near-uniform images; "
                       "exact duplicates (decoded pixels) within and across splits and those with conflicting labels. "
                       "Prints a table and writes a JSON report. Nothing is modified.")
    p.add_argument("root", help="dataset folder holding <split>/<emotion>/ subfolders")
    p.add_argument("--out", help="JSON report path (default results/check-data/<name>.json)")
    p.add_argument("--workers", type=int, default=2, help="decoding processes (default 2)")
    p.add_argument("--strict", action="store_true", help="exit 1 when unreadable or truncated files are found")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_check_data)

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

    d = sub.add_parser("demo-data", help="write the embedded demo dataset (procedural faces, two domains)",
                       description="Deterministic, offline demo data: real-style faces under OUT/real/{train,test}/<emotion>/ "
                       "and 1024x1024 6x6 synthetic grids with grids.csv under OUT/synthetic/raw_grids/{train,test}/. "
                       "Demo numbers are not research results.")
    d.add_argument("out", help="folder to write (e.g. data/demo)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--force", action="store_true", help="rewrite even if demo data with other settings is there")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=_cmd_demo_data)

    r = sub.add_parser("demo", help="run the main job on the demo data (data, train, evaluate)",
                       description="Make the demo data if missing, train a small B0 on the real-style faces, "
                       "evaluate it, and write results under RESULTS/<run-id>/ (never overwriting a run).")
    r.add_argument("--data", default="data/demo", help="demo data folder (default data/demo)")
    r.add_argument("--results", default="results/demo", help="results parent folder (default results/demo)")
    r.add_argument("--arch", default="resnet10t",
                   help="timm architecture (default resnet10t: B0 from scratch does not learn the small demo set)")
    r.add_argument("--weights", help="start from a local weight file (e.g. an HSEmotion or VGGFace2 file with --arch b0)")
    r.add_argument("--trust", action="store_true", help="allow unpickling --weights (HSEmotion checkpoints)")
    r.add_argument("--epochs", type=int, default=20)
    r.add_argument("--image-size", type=int, default=64)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from .data import DatasetLayoutError
    from .models import WeightsError

    try:
        return int(args.func(args) or 0)
    except (WeightsError, DatasetLayoutError, FileExistsError, FileNotFoundError) as err:
        print(f"fercore {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
