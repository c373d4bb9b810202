"""The thesis appendix: a finished suite run rendered by Jupyter Book as HTML or, through LaTeX, a PDF.

:func:`build_book` stages an explicit source set (``_config.yml``, ``_toc.yml``, the ``book/``
sources and the run's executed notebooks, prepared by :func:`prepare_notebook`) under
``book/_source/`` and builds only that, so nothing else under the project root (hidden folders
included) can become a page. Preparing a notebook for reading means: the parameters cells go (the
run page lists the parameters once), code is folded, every figure becomes a numbered figure with
its caption and label (``{numref}`` targets), every table a captioned, numbered MyST table.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from fercore.book.chapter import BOOK_KEY
from fercore.book.runs import SuiteError, latest_run, read_status

log = logging.getLogger(__name__)

REMOVED_TAGS = {"parameters", "injected-parameters"}  # shown once on the run page instead


# --------------------------------------------------------------------------- one chapter


def _marked(output: dict[str, Any]) -> dict[str, Any]:
    return (output.get("metadata") or {}).get(BOOK_KEY) or {}


CONTINUED = "# (outputs of the cell above, continued)"  # myst-nb skips cells without source; this one is never shown


def _continuation(cell: Any) -> Any:
    """A code cell that carries on ``cell``'s outputs, its source removed from the page."""
    import nbformat

    new = nbformat.v4.new_code_cell(CONTINUED)
    new.metadata = {"tags": ["remove-input"], **({"mystnb": copy.deepcopy(cell.metadata["mystnb"])} if "mystnb" in cell.metadata else {})}
    new.metadata.get("mystnb", {}).pop("figure", None)
    return new


def prepare_notebook(nb: Any, *, code: str = "fold") -> Any:
    """A copy of an executed notebook as the book shows it: parameters cells removed, code folded
    (``code="fold"``: ``hide-input``, for HTML) or left out (``"omit"``: ``remove-input``, for the
    PDF, which cannot fold), each figure output in a cell of its own with myst-nb figure options (caption,
    name: numbered, referable), table outputs as their captioned MyST table, captions written for
    the notebook view dropped."""
    import nbformat

    if code not in {"fold", "omit"}:
        raise ValueError(f"code must be 'fold' or 'omit', not {code!r}")
    hide = "hide-input" if code == "fold" else "remove-input"
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        tags = list(cell.metadata.get("tags", []))
        if REMOVED_TAGS & set(tags):
            continue
        outputs = cell.get("outputs", [])
        cell.metadata["tags"] = [*tags, hide] if "remove-input" not in tags else tags
        cell.outputs = []
        current = cell
        cells.append(current)
        for output in outputs:
            mark = _marked(output)
            kind = mark.get("kind")
            if kind == "caption":
                continue
            if kind == "figure":
                figure = _continuation(cell)
                figure.metadata.setdefault("mystnb", {})["figure"] = {"caption": mark["caption"], "name": mark["label"]}
                figure.outputs = [nbformat.from_dict({**output, "metadata": {}})]
                cells.append(figure)
                current = _continuation(cell)
                cells.append(current)
                continue
            if output.get("output_type") == "stream":
                output = _without_log_lines(output)
                if output is None:
                    continue
            if kind == "table":  # rendered as MyST: _config.yml sets nb_render_markdown_format
                output = nbformat.from_dict({**output, "data": {"text/markdown": output["data"]["text/markdown"]}, "metadata": {}})
            current.outputs.append(output)
    nb.cells = [c for c in cells if not (c.cell_type == "code" and c.source == CONTINUED and not c.get("outputs"))]
    return nb


def _without_log_lines(output: dict[str, Any]) -> dict[str, Any] | None:
    """A stream output without the library's ``INFO`` log lines (they stay in the executed
    notebook); None when nothing else is left. Warnings stay."""
    import nbformat

    text = output.get("text", "")
    kept = [line for line in text.splitlines(keepends=True) if not line.startswith("INFO ")]
    if not "".join(kept).strip():
        return None
    return nbformat.from_dict({**output, "text": "".join(kept)})


def figure_labels(nb: Any) -> list[str]:
    """The labels of the figures a prepared notebook numbers, in order."""
    return [c.metadata["mystnb"]["figure"]["name"] for c in nb.cells
            if c.cell_type == "code" and "figure" in c.metadata.get("mystnb", {})]


# --------------------------------------------------------------------------- the run page


def _code_line(code: dict[str, Any]) -> str:
    if not code.get("commit"):
        return f"fercore {code.get('fercore')}, not a git checkout"
    state = "dirty: uncommitted changes to tracked files" if code.get("dirty") else "clean"
    return f"fercore {code.get('fercore')}, git commit `{code['commit']}` ({state})"


def _chapter_records(run_dir: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for record in sorted(run_dir.glob("*/chapter.json")):
        found[record.parent.name] = json.loads(record.read_text()).get("provenance", {})
    return found


def run_page(run_dir: Path) -> str:
    """Markdown for the 'About this run' page: what a reader needs to trust a number (code
    version, packages, machine, models with weights hashes, sample tables with hashes, settings,
    seed, wall time per notebook, parameters)."""
    status = json.loads((run_dir / "suite.json").read_text())
    env = status.get("environment", {})
    chapters = _chapter_records(run_dir)
    lines = ["# About this run", "",
             f"The chapters were executed by `fercore suite run` into `{run_dir}`, started {status.get('started')}, "
             f"finished {status.get('finished')}.", "", "## Code and machine", ""]
    code, host = env.get("code", {}), env.get("machine", {})
    lines += [f"- **Code**: {_code_line(code) if code else 'not recorded (a run from before provenance was recorded)'}"]
    for later in status.get("resumed_with", []):
        lines.append(f"- **Resumed with**: {_code_line(later['code'])}")
    if host:
        lines += [f"- **Machine**: {host.get('cpu')}, {host.get('cores')} cores usable; Python {host.get('python')} on "
                  f"{host.get('os')}", f"- **Device**: {host.get('device')} ({host.get('accelerator')})"]
    settings = next((r["inference"] for r in chapters.values() if r.get("inference")), None)
    if settings:
        lines += [f"- **Inference**: backend `{settings['backend']}` (auto: ONNX Runtime on CPU, PyTorch on CUDA), "
                  f"preprocessing `{settings['preprocess']}`, batch size {settings['batch_size']}",
                  f"- **Seed**: {settings['seed']}"]
    packages = env.get("packages", {})
    if packages:
        lines += ["", "```{table} Versions of the packages the numbers and the book depend on.", ":name: tbl-run-packages", "",
                  "| package | version | package | version |", "|---|---|---|---|"]
        items = list(packages.items())
        half = (len(items) + 1) // 2
        right_column = [*items[half:], *[("", "")] * (2 * half - len(items))]
        for left, right in zip(items[:half], right_column, strict=True):
            lines.append(f"| {left[0]} | {left[1]} | {right[0]} | {right[1]} |")
        lines.append("```")
    lines += ["", "## Models", "", "Each model as loaded, with the sha256 of its weights file.", ""]
    models: dict[str, dict[str, Any]] = {}
    for chapter, record in chapters.items():
        for key, model in record.get("models", {}).items():
            models.setdefault(key, {**model, "chapters": []})["chapters"].append(chapter)
    for key, model in models.items():
        lines.append(f"- **{key}**: `{model['arch']}` at {model['image_size']} px; weights `{model['weights']}`, "
                     f"sha256 `{model['sha256']}` (used in {', '.join(model['chapters'])})")
    lines += ["", "## Samples", "", "The images each set was scored on, as a table of paths and labels written beside the "
              "chapter's results, with its sha256.", ""]
    for chapter, record in chapters.items():
        for key, sample in record.get("samples", {}).items():
            lines.append(f"- **{chapter}, {key}**: {sample['images']} images; `{sample['file']}`, sha256 `{sample['sha256']}`")
    lines += ["", "## Time", "", "```{table} Wall time of each notebook.", ":name: tbl-run-time", "",
              "| notebook | wall time |", "|---|---|"]
    for name, record in status.get("notebooks", {}).items():
        lines.append(f"| {name} | {record['seconds']:.0f} s |")
    params = (run_dir / "suite.yaml").read_text()
    lines += ["```", "", "## Parameters", "", "The parameter file of the run (`suite.yaml`); each notebook's own "
              "defaults apply to what it does not set.", "", "```yaml", params.rstrip(), "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the build


def toc_files(root: Path) -> list[str]:
    """Every ``file:`` entry of ``_toc.yml`` (and its root), without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items or []:
            if "file" in item:
                found.append(item["file"])
            walk(item.get("sections", []))

    walk(toc.get("chapters", []))
    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return [str(Path(f).with_suffix("")) if Path(f).suffix in {".md", ".ipynb"} else f for f in found]


def stage_sources(root: Path, run_dir: Path, notebooks: Iterable[Path], *, code: str = "fold") -> Path:
    """The book's whole source set under ``root/book/_source/``: the two config files, ``book/``
    (without build folders and hidden files), the chapters prepared with ``code`` (see
    :func:`prepare_notebook`) and the run page."""
    import nbformat

    source = root / "book" / "_source"
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, source / name)
    shutil.copytree(root / "book", source / "book", ignore=shutil.ignore_patterns(".*", "_build", "_source", "chapters"))
    chapters = source / "book" / "chapters"
    chapters.mkdir()
    listed = set(toc_files(root))
    for executed in notebooks:
        key = f"book/chapters/{executed.stem}"
        if key not in listed:
            raise SuiteError(f"{executed.name} is not in {root / '_toc.yml'}: add `- file: {key}` to its chapters")
        nbformat.write(prepare_notebook(nbformat.read(str(executed), as_version=4), code=code), str(chapters / executed.name))
    (chapters / "run.md").write_text(run_page(run_dir))
    missing = [f for f in listed if not any((source / f).with_suffix(s).is_file() for s in (".md", ".ipynb"))]
    if missing:
        raise SuiteError(f"_toc.yml lists {missing}, which neither book/ nor the run {run_dir} provides "
                         "(a notebook missing from the run?)")
    return source


def build_book(run_dir: str | Path | None = None, *, builder: str = "html", root: str | Path = ".") -> Path:
    """Stage a finished run's chapters with the book sources (:func:`stage_sources`) and build
    them. Returns ``book/_build/html/index.html`` (``html``) or the PDF (``pdflatex``)."""
    root = Path(root).resolve()
    run_dir = Path(run_dir).resolve() if run_dir else latest_run(root / "results" / "suite")
    status = read_status(run_dir)
    if not status.get("finished"):
        raise SuiteError(f"{run_dir} is not a finished suite run; run or resume it first (fercore suite run --resume {run_dir})")
    if builder not in {"html", "pdflatex"}:
        raise SuiteError(f"builder must be html or pdflatex, not {builder!r}")
    if builder == "pdflatex" and not (shutil.which("latexmk") and shutil.which("xelatex")):
        raise SuiteError("the PDF needs LaTeX (latexmk, xelatex): `make pdf` installs the Debian TeX packages, "
                         "or install texlive-xetex, texlive-latex-extra, texlive-fonts-recommended, tex-gyre and latexmk yourself")
    source = stage_sources(root, run_dir, sorted((run_dir / "notebooks").glob("*.ipynb")),
                           code="fold" if builder == "html" else "omit")
    exe = Path(sys.executable).with_name("jupyter-book")
    command = [str(exe if exe.is_file() else shutil.which("jupyter-book") or "jupyter-book"), "build", str(source),
               "--path-output", str(root / "book"), "--builder", builder]
    log.info("building the book: %s", " ".join(command))
    done = subprocess.run(command, cwd=source, capture_output=True, text=True)
    if done.returncode != 0:
        raise SuiteError(f"jupyter-book failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    build = root / "book" / "_build"
    if builder == "html":
        return build / "html" / "index.html"
    pdfs = sorted((build / "latex").glob("*.pdf"))
    if not pdfs:
        raise SuiteError(f"jupyter-book finished but wrote no PDF under {build / 'latex'}:\n{done.stdout[-3000:]}")
    return pdfs[0]
