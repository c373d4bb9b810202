"""The notebook suite: parameter files, the notebooks as stored, failures named by cell, the demo end to end."""

import ast
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from conftest import REPO, assert_every_chapter_finished

from fercore.book import SuiteError, build_book, toc_files
from fercore.book.chapter import check_chapter
from fercore.book.suite import (
    SuiteParams,
    chapter_id,
    declared_parameters,
    executed_errors,
    find_notebooks,
    notebook_parameters,
    run_suite,
)
from fercore.core.labels import CLASSES

NOTEBOOKS = find_notebooks(REPO / "notebooks")
SHARED = {"real_roots", "real_test_split", "synthetic_root", "synthetic_test_split", "models", "weights", "trust_pickle", "arch",
          "image_size", "batch_size", "max_per_class", "seed", "workers", "device", "progress", "output_dir"}


def test_the_four_research_notebooks_exist_in_order():
    assert [nb.name[:6] for nb in NOTEBOOKS] == ["01_rq1", "02_rq2", "03_rq3", "04_rq4"]
    assert [chapter_id(nb) for nb in NOTEBOOKS] == ["rq1", "rq2", "rq3", "rq4"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_stored_clean_and_thin(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "fercore"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "store notebooks without outputs"
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# RQ")
    assert SHARED <= set(declared_parameters(path))
    first_code_after = next(c for c in nb.cells[tagged[0] + 1:] if c.cell_type == "code")
    assert "studies.open_study(" in first_code_after.source, "the first cell after the parameters checks the paths"
    for cell in nb.cells:
        assert "os.chdir" not in cell.source and "work_in_project" not in cell.source
    glued_keys = {m.group(1) for c in nb.cells if c.cell_type == "markdown" for m in re.finditer(r"\{glue:\w+\}`(\w+)", c.source)}
    assert glued_keys, "the interpretation quotes the run's numbers through myst-nb glue"
    for cell in code:
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                raise AssertionError(f"plain import in {path.name}: only `from fercore... import` belongs in a notebook")
            if isinstance(node, ast.ImportFrom):
                assert node.module.split(".")[0] == "fercore", f"{path.name} imports {node.module}: call fercore instead"
    assert "chapter.finish(" in code[-1].source, "the closing cell writes the computed findings"


def test_toc_lists_every_notebook_and_the_book_chapters():
    files = toc_files(REPO)
    assert files[:2] == ["book/intro", "book/method"]
    assert [f"book/chapters/{nb.stem}" for nb in NOTEBOOKS] == files[2:-2] and files[-2:] == ["book/chapters/run", "book/references"]
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["bibtex_bibfiles"] == ["book/references.bib"] and config["sphinx"]["config"]["numfig"] is True
    cited = {m for nb in NOTEBOOKS for cell in nbformat.read(str(nb), as_version=4).cells if cell.cell_type == "markdown"
             for m in re.findall(r"\{cite:[pt]\}`([^`]+)`", cell.source)}
    cited |= set(re.findall(r"\{cite:[pt]\}`([^`]+)`", (REPO / "book" / "method.md").read_text()))
    keys = set(re.findall(r"^@\w+\{([^,]+),", (REPO / "book" / "references.bib").read_text(), flags=re.M))
    assert cited <= keys, cited - keys  # every citation has an entry
    assert {"tan2019efficientnet", "xie2020noisystudent", "foret2021sam", "savchenko2022hsemotion", "goodfellow2013fer2013",
            "mollahosseini2019affectnet", "selvaraju2017gradcam", "gretton2012mmd", "vandermaaten2008tsne",
            "guo2017calibration"} <= cited


def write_params(tmp_path, text: str):
    path = tmp_path / "suite_x.yaml"
    path.write_text(text)
    return path


def test_params_file_overrides_and_typos(tmp_path):
    path = write_params(tmp_path, "parameters: {epochs: 3, seed: 0}\nnotebooks: {'02': {gender_epochs: 2}}\n")
    params = SuiteParams.from_yaml(path, ["seed=5", "02.gender_epochs=1", "real_roots={a: x}"])
    assert params.name == "x" and params.parameters == {"epochs": 3, "seed": 5, "real_roots": {"a": "x"}}
    assert params.notebooks == {"02": {"gender_epochs": 1}}
    with pytest.raises(SuiteError, match="unknown top-level keys"):
        SuiteParams.from_yaml(write_params(tmp_path, "parameter: {}\n"))
    with pytest.raises(SuiteError, match="set by the suite runner"):
        SuiteParams.from_yaml(write_params(tmp_path, "parameters: {output_dir: x}\n"))
    with pytest.raises(SuiteError, match="does not exist"):
        SuiteParams.from_yaml(tmp_path / "absent.yaml")


def test_notebook_parameters_take_what_each_declares(tmp_path):
    params = SuiteParams("x", parameters={"seed": 3, "weights": "{output_dir}/w.pt", "cam_per_class": 4},
                         notebooks={"03": {"cam_per_class": 2}}, source="suite_x.yaml")
    rq1, rq3 = NOTEBOOKS[0], NOTEBOOKS[2]
    got = notebook_parameters(params, rq3, declared_parameters(rq3), tmp_path)
    assert got == {"seed": 3, "weights": f"{tmp_path}/w.pt", "cam_per_class": 2, "output_dir": str(tmp_path)}
    assert "cam_per_class" not in notebook_parameters(params, rq1, declared_parameters(rq1), tmp_path)
    params.notebooks = {"01": {"cam_per_class": 2}}
    with pytest.raises(SuiteError, match="does not declare"):
        notebook_parameters(params, rq1, declared_parameters(rq1), tmp_path)


def test_unknown_parameter_stops_before_anything_runs(tmp_path):
    params = SuiteParams("x", parameters={"epochz": 1}, results_dir=str(tmp_path), notebooks_dir=str(REPO / "notebooks"),
                         source="suite_x.yaml")
    with pytest.raises(SuiteError, match=r"\['epochz'\] are declared by no notebook"):
        run_suite(params)
    assert not any(tmp_path.iterdir())


def test_thesis_params_with_missing_data_fail_in_the_first_cell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative data paths of the thesis file resolve to nothing here
    params = SuiteParams.from_yaml(REPO / "configs" / "suite_thesis.yaml")
    params.notebooks_dir, params.results_dir = str(REPO / "notebooks"), str(tmp_path / "results")
    with pytest.raises(SuiteError) as err:
        run_suite(params, progress=False)
    message = str(err.value)
    assert "01_rq1_pretrained_on_synthetic.ipynb failed in cell [3]" in message and "MissingPathError" in message
    assert "configs/suite_thesis.yaml: edit it there" in message
    for name in ("real_roots['fer2013']", "real_roots['affectnet']", "synthetic_root", "models.B0.weights", "models.B2.weights",
                 "models.B0.backbone"):
        assert name in message
    assert "data/real/fer2013" in message and "--resume" in message
    run_dir = next((tmp_path / "results" / "thesis").iterdir())
    status = json.loads((run_dir / "suite.json").read_text())
    assert list(status["notebooks"]) == ["01_rq1_pretrained_on_synthetic.ipynb"]  # stopped at the first notebook
    executed = nbformat.read(run_dir / "notebooks" / NOTEBOOKS[0].name, as_version=4)
    failing = [i for i, c in enumerate(executed.cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    ran = [i for i, c in enumerate(executed.cells) if c.cell_type == "code" and c.get("execution_count")]
    assert failing == [ran[2]]  # parameters, injected parameters, then the first cell of the notebook's own
    assert executed_errors(run_dir / "notebooks" / NOTEBOOKS[0].name)[0].split(": ")[1] == "MissingPathError"


def tiny_notebook(path, body: str) -> None:
    params = nbformat.v4.new_code_cell("output_dir = 'x'\nfail = True")
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "fercore", "display_name": "Python (fercore)", "language": "python"}
    nbformat.write(nb, path)


def test_failure_names_the_cell_and_resume_carries_on(tmp_path):
    books = tmp_path / "notebooks"
    books.mkdir()
    record = ("import matplotlib.pyplot as plt\nfrom fercore.book.chapter import Chapter\n"
              "c = Chapter(output_dir, '{id}')\nc.figure(plt.figure(), 'f', 'A figure.')\nc.finish(['done'], {{}})")
    tiny_notebook(books / "01_t1_ok.ipynb", record.format(id="t1"))
    tiny_notebook(books / "02_t2_flaky.ipynb", "if fail:\n    raise ValueError('boom: set fail')\n" + record.format(id="t2"))
    params = SuiteParams("tiny", results_dir=str(tmp_path / "results"), notebooks_dir=str(books), source="suite_tiny.yaml")
    with pytest.raises(SuiteError, match=r"02_t2_flaky.ipynb failed in cell \[\d+\] \(`if fail:`\): ValueError: boom"):
        run_suite(params, progress=False)
    run_dir = next((tmp_path / "results" / "tiny").iterdir())
    status = json.loads((run_dir / "suite.json").read_text())
    assert status["notebooks"]["01_t1_ok.ipynb"]["status"] == "ok" and status["notebooks"]["02_t2_flaky.ipynb"]["status"] == "failed"
    assert "finished" not in status
    saved = yaml.safe_load((run_dir / "suite.yaml").read_text())
    saved["parameters"] = {"fail": False}  # the fix: resume uses the run's saved parameters
    (run_dir / "suite.yaml").write_text(yaml.safe_dump(saved))
    first_mtime = (run_dir / "notebooks" / "01_t1_ok.ipynb").stat().st_mtime_ns
    run = run_suite(None, resume=run_dir, progress=False)
    assert (run_dir / "notebooks" / "01_t1_ok.ipynb").stat().st_mtime_ns == first_mtime  # not run again
    assert json.loads((run_dir / "suite.json").read_text())["finished"] and run.run_dir == run_dir.resolve()
    assert check_chapter(run_dir / "t2") == []


@pytest.mark.slow
def test_demo_suite_runs_every_chapter_with_figures(demo_suite, demo_root):
    run_dir, _ = demo_suite
    assert_every_chapter_finished(run_dir)
    # the demo writes the blind label sheet of its synthetic test faces (issue 30), blank for a person to fill
    sheet = pd.read_csv(demo_root / "synthetic" / "label_sheet" / "label_sheet.csv")
    manifest = pd.read_csv(demo_root / "synthetic" / "processed" / "manifest.csv")
    assert len(sheet) == int((manifest["kept"].astype(bool) & (manifest["split"] == "test")).sum()) > 500
    assert sheet["emotion"].isna().all() and not {"prompt", "path", "label"} & set(sheet.columns)
    assert (demo_root / "synthetic" / "label_sheet-key" / "label_key.csv").is_file()
    assert list((demo_root / "synthetic" / "label_sheet" / "pages").glob("page_*.png"))
    for notebook in NOTEBOOKS:
        executed = run_dir / "notebooks" / notebook.name
        record = json.loads((run_dir / chapter_id(notebook) / "chapter.json").read_text())
        nb = nbformat.read(executed, as_version=4)
        shown = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
        # one figure per concept, each with a panel per model (and set / regime): RQ1 examples, recall heat table,
        # confusion, reliability, confidence; RQ2 training curves, regime bars, the gender curve; RQ3 a mean map per
        # model, regime and arm; RQ4 PCA and t-SNE maps and the centroid heat table
        least = {"rq1": 5, "rq2": 3, "rq3": 6, "rq4": 3}[chapter_id(notebook)]
        assert shown == len(record["figures"]) >= least, notebook.name
        assert len(record["findings"]) >= 2
    rq2 = json.loads((run_dir / "rq2" / "chapter.json").read_text())
    assert rq2["numbers"]["gender"], "the gender-split study ran"
    rq1 = json.loads((run_dir / "rq1" / "chapter.json").read_text())
    assert {"examples.png", "per_class_recall.png", "confusion.png", "reliability.png", "confidence_synthetic.png"} <= {
        p.split("/")[-1] for p in rq1["figures"]}
    assert "ECE" in " ".join(rq1["findings"])
    # the design and the MDE beside each primary result; findings worded from intervals and TOSTs (issue 27)
    design = pd.read_csv(run_dir / "rq1" / "tables" / "design.csv")
    assert {"grids per class (min)", "kept faces per grid", "ICC", "MDE (80% power)"} <= set(design.columns)
    assert any(line.startswith("Design of ") for line in rq1["findings"])
    for record in (rq1, rq2):
        text = " ".join(record["findings"])
        assert "survives matching" not in text and "no difference" not in text and "removes the" not in text
    assert (run_dir / "rq1" / "tables" / "raw_minus_matched.csv").is_file()
    assert {"p (Holm)", "p equivalence (TOST)"} <= set(pd.read_csv(run_dir / "rq1" / "tables" / "real_vs_synthetic.csv").columns)
    assert {"bal. acc. change", "MDE (80% power)"} <= set(pd.read_csv(run_dir / "rq2" / "tables" / "finetuned_vs_original.csv").columns)
    summary = pd.read_csv(run_dir / "rq1" / "tables" / "summary.csv")  # both demo models on every test set
    assert sorted(zip(summary["model"], summary["test set"], strict=True)) == sorted(
        (m, s) for m in ("resnet10t", "tiny-enet") for s in ("demo-real", "synthetic", "synthetic matched to demo-real", "null arm",
                                                             "null arm matched to demo-real"))  # the null arm: data/demo/real/holdout
    compared = pd.read_csv(run_dir / "rq1" / "tables" / "real_vs_synthetic.csv")
    assert len(compared) == 4 and set(compared["synthetic faces"]) == {"raw", "matched"}
    regimes = {(m, r, a) for m in ("resnet10t", "tiny-enet") for r in ("trained on real", "fine-tuned on synthetic", "trained on synthetic only")
               for a in ("raw", "matched")}
    for chapter, table in (("rq3", "summary"), ("rq4", "domain_gap")):  # three regimes per model, both arms
        rows = pd.read_csv(run_dir / chapter / "tables" / f"{table}.csv")
        assert set(zip(rows["model"], rows["regime"], rows["synthetic faces"], strict=True)) == regimes
    # RQ3: landmark rates per set and arm, each model's region layer finer than an eye, per-emotion tests on shared classes
    landmarks = pd.read_csv(run_dir / "rq3" / "tables" / "landmarks.csv")
    pairs = set(zip(landmarks["synthetic faces"], landmarks["domain"], strict=True))  # the null arm's faces too, where it ran
    assert {(a, d) for a in ("raw", "matched") for d in ("real", "synthetic")} <= pairs <= {(a, d) for a in ("raw", "matched")
                                                                                           for d in ("real", "synthetic", "null arm")}
    assert set(landmarks["synthetic grids"]) == {"test grids", "test + train grids"}  # every grid for the models trained on real
    assert ((landmarks["rate"] > 0) & (landmarks["rate"] <= 1)).all()
    layers = pd.read_csv(run_dir / "rq3" / "tables" / "layers.csv")
    assert set(layers["model"]) == {"resnet10t", "tiny-enet"} and (layers["fits"] == "yes").all()
    assert layers["fine"].str.startswith("LayerCAM").all() and layers["reference"].str.startswith("Grad-CAM").all()
    tests = pd.concat([pd.read_csv(f) for f in (run_dir / "rq3" / "cam").rglob("region_tests.csv")])
    assert len(list((run_dir / "rq3" / "cam").rglob("region_tests.csv"))) == len(regimes)
    assert set(tests["test"]) <= {"Welch t on grid means", "one grid: descriptive only", "too few faces"}
    assert not tests["test"].str.contains("Mann-Whitney").any() and {"mde", "density_real", "density_synthetic"} <= set(tests.columns)
    assert (tests["test"] != "too few faces").any() and set(tests["emotion"]) <= set(CLASSES)
    tested = tests[tests["p_value"].notna()]
    assert ((tested["p_holm"] >= tested["p_value"]) & (tested["p_holm"] <= 1)).all()
    rq3_figures = {p.split("/")[-1] for p in json.loads((run_dir / "rq3" / "chapter.json").read_text())["figures"]}
    assert {"regions.png", "cam_mean_resnet10t_trained_on_real_demo-real.png", "region_differences_tiny-enet_demo-real.png"} <= rq3_figures
    probe = pd.read_csv(run_dir / "rq4" / "tables" / "domain_gap.csv")
    assert ((probe["smallest p"] > 0) & (probe["smallest p"] <= probe["MMD p"]) & (probe["smallest p"] <= probe["probe p"])).all()
    assert ((probe["AUC null 95%"] > 0) & (probe["AUC null 95%"] < 1)).all() and (probe["n real"] == probe["n synthetic"]).all()
    rq4_text = " ".join(json.loads((run_dir / "rq4" / "chapter.json").read_text())["findings"])
    assert "grid-swap null" in rq4_text and "separates the domains" not in rq4_text
    # the MMD's MDE beside its result (or why it is not defined); centroid distances descriptive, no interval
    assert "MMD MDE (face SDs)" in probe.columns and ("MDE: a shift of the synthetic faces" in rq4_text or "MDE not defined" in rq4_text)
    assert not any("centroid" in f and "95 % interval" in f for f in json.loads((run_dir / "rq4" / "chapter.json").read_text())["findings"])
    assert (probe["grids"] < probe["n synthetic"]).all()  # the synthetic faces are clustered by grid
    glued = json.loads((run_dir / "rq1" / "chapter.json").read_text())["numbers"]["glued"]
    assert glued["rq1_models"] == "resnet10t, tiny-enet"


@pytest.mark.slow
def test_demo_book_holds_the_chapters(demo_suite):
    _, index = demo_suite
    html = index.parent
    for notebook in NOTEBOOKS:
        page = (html / "book" / "chapters" / f"{notebook.stem}.html").read_text()
        assert re.search(r"<h1>(<span class=\"section-number\">[\d.]+\s*</span>)?RQ", page) and "Findings" in page
    assert len(list((html / "_images").glob("*.png"))) >= 15
    assert shutil.which("jupyter-book") or (REPO / ".venv" / "bin" / "jupyter-book").is_file()


@pytest.mark.slow
def test_run_page_names_the_commit_and_the_hashes_of_weights_and_samples(demo_suite):
    """The run page's commit is this checkout's HEAD; every weights file and sample table it lists
    has the sha256 it states, recomputed here; the demo's models and every chapter's test sets are listed."""
    run_dir, index = demo_suite
    page = (index.parents[2] / "_source" / "book" / "chapters" / "run.md").read_text()
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert re.search(r"git commit `([0-9a-f]{40})`", page).group(1) == head.stdout.strip()
    else:
        assert "not a git checkout" in page
    weights = dict(re.findall(r"weights `([^`]+)`, sha256 `([0-9a-f]{64})`", page))
    samples = dict(re.findall(r"images; `([^`]+)`, sha256 `([0-9a-f]{64})`", page))
    assert weights and samples
    for path, digest in {**weights, **samples}.items():
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest, path
    assert any(p.endswith("resnet10t/checkpoint.pt") for p in weights) and any(p.endswith("tiny-enet/checkpoint.pt") for p in weights)
    assert any("/models/" in p for p in weights)  # RQ2's regimes, read by RQ3 and RQ4
    for chapter in ("rq1", "rq2", "rq3", "rq4"):
        assert any(f"/{chapter}/samples/synthetic.csv" in p for p in samples), chapter
    html = (index.parent / "book" / "chapters" / "run.html").read_text()
    assert head.returncode != 0 or head.stdout.strip() in html


@pytest.mark.slow
def test_demo_book_as_pdf_when_tex_is_installed(demo_suite):
    if not all(shutil.which(tool) for tool in ("latexmk", "xelatex", "xindy")):
        pytest.skip("TeX is not installed (latexmk, xelatex, xindy): `make pdf` installs the Debian packages")
    run_dir, index = demo_suite
    pdf = build_book(run_dir, root=index.parents[3], builder="pdflatex")
    assert pdf.name == "fercore-appendix.pdf" and pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 200_000  # the figures are in it
