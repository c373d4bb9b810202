"""The book's preparation of an executed notebook, its source set and the run page (no Sphinx build here:
the demo book is built and read in a browser by test_book_browser.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from fercore.book.build import figure_labels, prepare_notebook, run_page, stage_sources
from fercore.book.chapter import Chapter
from fercore.core import present, provenance

REPO = Path(__file__).resolve().parents[2]


def chapter_notebook(tmp_path: Path) -> nbformat.NotebookNode:
    """A notebook whose outputs are what Chapter displays (captured with IPython's display hook)."""
    import matplotlib.pyplot as plt
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    captured = []
    shell.display_pub.publish = lambda data, metadata=None, **kw: captured.append(
        nbformat.v4.new_output("display_data", data=data, metadata=metadata or {}))
    chapter = Chapter(tmp_path, "rq9")
    scores = present.declare(pd.DataFrame({"model": ["a"], "accuracy": [0.5]}).set_index("model"), percent=["accuracy"])
    chapter.table(scores, "scores", "Scores per model")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    chapter.figure(fig, "line", "A line.")
    chapter.note("See {numref}`fig-rq9-line`.")
    params = nbformat.v4.new_code_cell("seed = 0")
    params.metadata["tags"] = ["parameters"]
    injected = nbformat.v4.new_code_cell("seed = 1")
    injected.metadata["tags"] = ["injected-parameters"]
    work = nbformat.v4.new_code_cell("chapter.table(...)\nchapter.figure(...)")
    work.outputs = [nbformat.v4.new_output("stream", name="stdout", text="INFO fercore.x: a log line\nbefore\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="INFO fercore.x: only log lines\n"), *captured]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# RQ9"), params, injected, work])


def test_prepare_notebook_folds_code_numbers_figures_and_captions_tables(tmp_path):
    nb = chapter_notebook(tmp_path)
    kinds = [o.get("metadata", {}).get("fercore", {}).get("kind") for o in nb.cells[3].outputs]
    assert kinds == [None, None, "table", "figure", "caption", "note"]
    prepared = prepare_notebook(nb)
    code = [c for c in prepared.cells if c.cell_type == "code"]
    assert all("seed" not in c.source for c in code)  # both parameters cells are gone
    assert code[0].source.startswith("chapter.table") and code[0].metadata["tags"] == ["hide-input"]
    stdout, table = code[0].outputs
    assert stdout.text == "before\n" and list(table.data) == ["text/markdown"]
    assert table.data["text/markdown"].startswith("~~~{table} Scores per model.\n:name: tbl-rq9-scores\n")
    assert "| model | accuracy (%) |" in table.data["text/markdown"] and "| a | 50.0 |" in table.data["text/markdown"]
    figure = code[1]
    assert figure.source.startswith("#") and figure.metadata["tags"] == ["remove-input"]
    assert figure.metadata["mystnb"]["figure"] == {"caption": "A line.", "name": "fig-rq9-line"}
    assert list(figure.outputs[0].data) == ["image/png", "text/plain"] and figure.outputs[0].metadata == {}
    rest = code[2]  # the italic caption for the notebook view is dropped; the note stays
    assert [o.data["text/markdown"] for o in rest.outputs] == ["See {numref}`fig-rq9-line`."]
    assert "figure" not in rest.metadata.get("mystnb", {})
    assert figure_labels(prepared) == ["fig-rq9-line"]
    assert nb.cells[1].source == "seed = 0"  # the executed notebook itself is not changed
    nbformat.validate(prepared)
    printed = prepare_notebook(nb, code="omit")  # the PDF cannot fold: the code is left out
    assert [c.metadata["tags"] for c in printed.cells if c.cell_type == "code"][0] == ["remove-input"]


def test_chapter_needs_a_caption(tmp_path):
    chapter = Chapter(tmp_path, "rq9", show=False)
    with pytest.raises(ValueError, match="give a caption"):
        chapter.table(pd.DataFrame({"a": [1]}), "t", "  ")


def finished_run(tmp_path: Path, commit: dict) -> Path:
    run = tmp_path / "run"
    (run / "notebooks").mkdir(parents=True)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights")
    samples = provenance.sample_record("demo-real", pd.DataFrame({"path": ["a.png"], "label": [1]}), run / "rq1" / "samples")
    chapter = {"provenance": {"models": {"m · trained on real": provenance.model_record("m", weights, arch="resnet10t", image_size=64,
                                                                                          regime="trained on real")},
                              "samples": {"demo-real": samples},
                              "inference": {"backend": "auto", "device": "auto", "preprocess": "exact", "batch_size": 64, "seed": 3}}}
    (run / "rq1" / "chapter.json").write_text(json.dumps(chapter))
    (run / "suite.yaml").write_text("name: t\nparameters:\n  seed: 3\n")
    env = {"code": commit, "packages": {"torch": "2", "timm": "1", "numpy": "2"},
           "machine": {"cpu": "x", "cores": 2, "python": "3.11", "os": "linux", "device": "cpu", "accelerator": "cpu"}}
    (run / "suite.json").write_text(json.dumps({"started": "s", "finished": "f", "environment": env,
                                                "notebooks": {"01_rq1_x.ipynb": {"seconds": 12.4}}}))
    return run


def test_run_page_lists_what_a_number_rests_on(tmp_path):
    run = finished_run(tmp_path, {"fercore": "0.1.0", "commit": "abc123", "dirty": True, "git": "dirty"})
    page = run_page(run)
    assert "git commit `abc123` (dirty: uncommitted changes to tracked files)" in page
    assert f"sha256 `{hashlib.sha256(b'weights').hexdigest()}`" in page and "`resnet10t` at 64 px" in page
    sample_file = run / "rq1" / "samples" / "demo-real.csv"
    assert f"`{sample_file}`, sha256 `{hashlib.sha256(sample_file.read_bytes()).hexdigest()}`" in page
    assert "| 01_rq1_x.ipynb | 12 s |" in page and "| torch | 2 |" in page and "**Seed**: 3" in page
    assert "  seed: 3" in page  # the parameters, once
    page = run_page(finished_run(tmp_path / "b", {"fercore": "0.1.0", "commit": None, "dirty": None, "git": "not a git checkout"}))
    assert "fercore 0.1.0, not a git checkout" in page


def test_code_version_in_and_outside_a_checkout(tmp_path):
    assert provenance.code_version(tmp_path)["commit"] is None
    assert provenance.code_version(tmp_path)["git"] == "not a git checkout"
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.txt").write_text("1")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert provenance.code_version(repo) == {"fercore": provenance.code_version()["fercore"], "commit": head, "dirty": False,
                                             "git": "clean"}
    (repo / "a.txt").write_text("2")
    assert provenance.code_version(repo)["dirty"] is True


def test_staged_sources_hold_only_the_book(tmp_path):
    root = tmp_path / "project"
    (root / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        (root / name).write_text((REPO / name).read_text())
    for name in ("intro.md", "method.md", "references.md", "references.bib"):
        (root / "book" / name).write_text((REPO / "book" / name).read_text())
    (root / ".pytest_cache").mkdir()
    (root / ".pytest_cache" / "README.md").write_text("# stray")
    (root / "book" / ".hidden.md").write_text("# stray")
    (root / "README.md").write_text("# not in the book")
    run = finished_run(tmp_path, {"fercore": "0.1.0", "commit": None})
    notebooks = []
    for stem in ("01_rq1_pretrained_on_synthetic", "02_rq2_synthetic_finetune_on_real", "03_rq3_gradcam_regions", "04_rq4_domain_gap"):
        path = run / "notebooks" / f"{stem}.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {stem}")]), str(path))
        notebooks.append(path)
    source = stage_sources(root, run, notebooks)
    found = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
    assert found == ["_config.yml", "_toc.yml", "book/chapters/01_rq1_pretrained_on_synthetic.ipynb",
                     "book/chapters/02_rq2_synthetic_finetune_on_real.ipynb", "book/chapters/03_rq3_gradcam_regions.ipynb",
                     "book/chapters/04_rq4_domain_gap.ipynb", "book/chapters/run.md", "book/intro.md", "book/method.md",
                     "book/references.bib", "book/references.md"]
    from fercore.book import SuiteError

    with pytest.raises(SuiteError, match="is not in"):
        stray = run / "notebooks" / "05_rq5_new.ipynb"
        nbformat.write(nbformat.v4.new_notebook(), str(stray))
        stage_sources(root, run, [*notebooks, stray])
