"""Shared fixtures: small images and datasets written by the tests, the team's shared FER2013."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_FER2013 = REPO.parent / "shared" / "data" / "fer2013"


# Under pytest-xdist (a worker per core) every process a test starts, notebook kernels and CLI subprocesses
# included, gets one OpenMP thread: two workers each running torch on two threads oversubscribe two cores, and
# OpenMP threads that wait by spinning then slow everything down. Set here, before any of them starts.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_name] = "1"

# Session fixtures that cost minutes: every test using one runs on the same pytest-xdist worker, so each is
# built once per run, not once per worker (`make test` runs `pytest -n auto --dist loadgroup`).
EXPENSIVE_SESSION_FIXTURES = ("demo_suite", "thesis_run", "fer2013_small_model")


def pytest_itemcollected(item) -> None:
    """Under pytest-xdist, group tests that share an expensive fixture: one group per fixture in
    ``EXPENSIVE_SESSION_FIXTURES``, and one group per file for tests using a module-scoped fixture.
    Marked as each item is collected: pytest-xdist reads the groups in its own
    ``pytest_collection_modifyitems``, which ran before this project's (so no test was grouped)."""
    names = set(getattr(item, "fixturenames", ()))
    group = next((name for name in EXPENSIVE_SESSION_FIXTURES if name in names), None)
    if group is None:
        definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        if any(defs and defs[-1].scope == "module" for defs in definitions.values()):
            group = item.nodeid.split("::")[0]
    if group is not None:
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True, scope="session")
def _threads() -> None:
    """Two torch threads in one process; one per worker when pytest-xdist runs a worker per core."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, 2 // workers))


@pytest.fixture(autouse=True, scope="session")
def _private_hash_cache(tmp_path_factory) -> None:
    """Content-hash cache (fercore.data.duplicates) in a folder of this test session, not the user's."""
    os.environ["FERCORE_CACHE"] = str(tmp_path_factory.mktemp("fercore-cache"))


@pytest.fixture(autouse=True)
def _library_logging_restored():
    """A chapter opened in-process (``open_chapter``) adds a stream handler on the ``fercore`` logger, as
    a notebook needs; in a test it is bound to that test's capture stream, which closes when the test
    ends. Remove the handlers a test added so later tests do not log into a closed stream."""
    logger = logging.getLogger("fercore")
    handlers, level = list(logger.handlers), logger.level
    yield
    for handler in logger.handlers[:]:
        if handler not in handlers:
            logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture(scope="session")
def fer2013_root() -> Path:
    """The shared FER2013 folder (../shared/data/fer2013), skipped with a reason when absent."""
    if not (SHARED_FER2013 / "train").is_dir():
        pytest.skip(f"shared FER2013 not found at {SHARED_FER2013} (../shared is provided by the team beside the checkout)")
    return SHARED_FER2013


def pattern_image(width: int = 120, height: int = 90, seed: int = 0) -> Image.Image:
    """A deterministic, detailed RGB test image (gradients plus noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    arr = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) % 64 * 4], axis=-1)
    arr = np.clip(arr + rng.normal(0, 20, arr.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(arr, mode="RGB")


@pytest.fixture
def tiny_model():
    """An untrained 0.1 M-parameter timm EfficientNet (``test_efficientnet``) fed 32 px, in eval mode."""
    from fercore.models import Classifier, create_model

    torch.manual_seed(0)
    return Classifier.wrap(create_model("test_efficientnet").eval(), image_size=32)


@pytest.fixture
def images(tmp_path: Path) -> list[str]:
    """Five small, distinct RGB PNGs (40 x 36)."""
    paths = []
    for i in range(5):
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        pattern_image(40, 36, seed=i).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """root/{train,test}/{angry,happy,sad}/ with 4 + 2 small PNGs per class (distinct pixels)."""
    root = tmp_path / "tiny"
    k = 0
    for split, n in (("train", 4), ("test", 2)):
        for folder in ("angry", "happy", "sad"):
            (root / split / folder).mkdir(parents=True)
            for i in range(n):
                pattern_image(32, 32, seed=k).save(root / split / folder / f"{i}.png")
                k += 1
    return root


def assert_every_chapter_finished(run_dir: Path) -> None:
    """A suite run folder: finished, every notebook ok, no error cell, every chapter's files present."""
    from fercore.book.chapter import check_chapter
    from fercore.book.suite import chapter_id, executed_errors, find_notebooks

    status = json.loads((run_dir / "suite.json").read_text())
    assert status["finished"] and all(r["status"] == "ok" for r in status["notebooks"].values())
    for notebook in find_notebooks(REPO / "notebooks"):
        assert executed_errors(run_dir / "notebooks" / notebook.name) == [], notebook.name
        assert check_chapter(run_dir / chapter_id(notebook)) == [], notebook.name


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """The default demo dataset, written once per test session."""
    from fercore.demo import make_demo_data

    root = tmp_path_factory.mktemp("demo")
    make_demo_data(root, progress=False)
    return root


@pytest.fixture(scope="session")
def demo_suite(demo_root, tmp_path_factory) -> tuple[Path, Path]:
    """The demo end to end at test sizes: train on the real-style faces, run the four notebooks
    with configs/suite_demo.yaml (fast overrides), build the HTML book from a copy of the book
    sources. Returns (suite run folder, index.html)."""
    from fercore.book import SuiteParams, build_book, run_suite
    from fercore.demo.pipeline import DemoRunConfig, run_demo

    base = tmp_path_factory.mktemp("suite")
    demo = run_demo(DemoRunConfig(data_dir=demo_root, results_dir=base / "demo", epochs=10, progress=False))
    models = {m.name: {"weights": str(m.run_dir / "checkpoint.pt")} for m in demo.models}
    overrides = [f"models={json.dumps(models)}", f"real_roots={{demo-real: {demo_root / 'real'}}}",
                 f"synthetic_root={demo_root / 'synthetic' / 'processed'}", "max_per_class=12", "02.epochs=3",
                 "02.synthetic_only_epochs=3", "02.cv_folds=2", "02.gender_epochs=1", "03.cam_per_class=8", "04.permutations=50",
                 f"01.demo_geometry={demo_root / 'geometry'}"]
    params = SuiteParams.from_yaml(REPO / "configs" / "suite_demo.yaml", overrides)
    params.results_dir, params.notebooks_dir = str(base / "results"), str(REPO / "notebooks")
    run = run_suite(params, progress=False)
    root = base / "book_root"
    root.mkdir()
    (root / ".pytest_cache").mkdir()  # a hidden folder with Markdown in it must never become a page
    (root / ".pytest_cache" / "README.md").write_text("# pytest cache directory\n")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("_build", "chapters"))
    return run.run_dir, build_book(run.run_dir, root=root)


@pytest.fixture(scope="session")
def fer2013_small_model(fer2013_root, tmp_path_factory):
    """A resnet10t trained briefly on FER2013 `train` (300 faces per class, 56 px, 2 epochs of AdamW
    with class weights, `exact` preprocessing: about 30 s of CPU), once per test session. Not a good
    model (23 % on `val`, chance 14 %), but not a degenerate one: no class has more than 24 % of its
    predictions. 56 px, not 64: PIL's 48 -> 64 resize has exact weights and both paths give identical pixels."""
    from fercore.data import discover, per_class_subset
    from fercore.models import load_model
    from fercore.training import TrainConfig, train

    samples = per_class_subset(discover(fer2013_root, ["train"]), 300, seed=0)
    config = TrainConfig(experiment="fer2013-small", data_root=str(fer2013_root), arch="resnet10t", image_size=56,
                         batch_size=64, epochs=2, lr=3e-3, optimizer="adamw", weight_decay=0.05, warmup_epochs=0.5,
                         keep_duplicates=True, workers=0, progress=False)
    result = train(config, out=tmp_path_factory.mktemp("fer2013-small") / "run", samples=(samples, None, None))
    return load_model(result.run_dir / "checkpoint.pt")
