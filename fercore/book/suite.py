"""The thesis suite: papermill runs the numbered notebooks with a parameter file, Jupyter Book
renders the executed copies (plus the chapters in ``book/``) into HTML or, through LaTeX, a PDF.

A parameter file (``configs/suite_*.yaml``) holds ``parameters`` given to every notebook that
declares them (in its cell tagged ``parameters``) and ``notebooks``: extra parameters per
notebook (keyed by its number, e.g. ``"02"``). Strings may use ``{output_dir}`` (the run folder).
A key no notebook declares is an error, so a typo cannot pass silently.

Each run writes ``results/suite/<name>/<run-id>/``: ``suite.yaml`` (the parameters used),
``suite.json`` (status and timing per notebook), ``notebooks/*.ipynb`` (executed copies) and one
folder per chapter (``rq1/`` ...) with figures, tables and ``chapter.json``. A run stops at the
first failing notebook, naming the cell; ``resume`` carries on from there.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from fercore.book.chapter import check_chapter
from fercore.book.runs import SuiteError, read_status
from fercore.core import provenance
from fercore.core.config import did_you_mean, read_yaml_mapping
from fercore.core.files import atomic_open, file_stamp, new_run_dir, sha256_file, write_json
from fercore.core.overrides import apply_overrides
from fercore.core.records import refuse_changes

log = logging.getLogger(__name__)

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_([a-z]+\d*)_.*\.ipynb$")
RESERVED = ("output_dir",)  # set by the runner, never by the parameter file


@dataclass
class SuiteParams:
    """A parameter file: shared notebook parameters, per-notebook extras, runner settings."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    kernel: str = "fercore"
    notebooks_dir: str = "notebooks"
    results_dir: str = "results/suite"
    start_timeout: int = 120
    source: str | None = None
    origins: dict[str, str] = field(default_factory=dict)  # notebook number -> the --set that named it

    def _override(self, item: str) -> None:
        """Apply one ``key=value`` (shared) or ``NN.key=value`` (notebook NN) override."""
        key, sep, value = item.partition("=")
        if not sep:
            raise SuiteError(f"override {item!r} must look like key=value")
        number, dot, rest = key.partition(".")
        try:
            if dot:
                number = _notebook_number(number.strip(), f"--set {item}")
                if number not in self.notebooks:
                    self.origins[number] = f"--set {item}"
                self.notebooks[number] = apply_overrides(self.notebooks.get(number, {}), [f"{rest}={value}"])
            else:
                self.parameters = apply_overrides(self.parameters, [item])
        except ValueError as err:
            raise SuiteError(str(err)) from None

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Sequence[str] = ()) -> SuiteParams:
        """Read a parameter file; ``overrides`` are ``key=value`` (YAML values) for ``parameters``
        (``epochs=1``) or, with a dot, for one notebook (``02.epochs=1``)."""
        path = Path(path)
        if not path.is_file():
            raise SuiteError(f"parameter file {path} does not exist (suite parameter files live in configs/, e.g. configs/suite_demo.yaml)")
        try:
            data = read_yaml_mapping(path)
        except ValueError as err:
            raise SuiteError(str(err)) from None
        known = {"name", "parameters", "notebooks", "kernel", "notebooks_dir", "results_dir", "start_timeout"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SuiteError(f"{path}: unknown top-level keys {unknown}; known: {sorted(known)}")
        params = cls(**{"name": path.stem.removeprefix("suite_"), **data, "source": str(path)})
        params.parameters = _mapping(params.parameters, f"{path}: parameters")
        params.notebooks = _notebook_keys(_mapping(params.notebooks, f"{path}: notebooks"), str(path))
        for item in overrides:
            params._override(item)
        for key in RESERVED:
            if key in params.parameters or any(key in extra for extra in params.notebooks.values()):
                raise SuiteError(f"{path}: '{key}' is set by the suite runner (the run folder); remove it from the file")
        return params

    @classmethod
    def from_run(cls, run_dir: str | Path) -> SuiteParams:
        """The parameters a run was started with (its ``suite.yaml``)."""
        saved = Path(run_dir) / "suite.yaml"
        if not saved.is_file():
            raise SuiteError(f"{run_dir} is not a suite run folder (no suite.yaml)")
        return cls(**yaml.safe_load(saved.read_text()), source=str(saved))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kernel": self.kernel, "notebooks_dir": self.notebooks_dir, "results_dir": self.results_dir,
                "start_timeout": self.start_timeout, "parameters": self.parameters, "notebooks": self.notebooks}


def _mapping(value: Any, where: str) -> dict[Any, Any]:
    """``value`` as a mapping (None: empty); another kind is a :class:`SuiteError` naming ``where``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SuiteError(f"{where} must be a mapping (name: value lines), not {value!r}")
    return dict(value)


def _notebook_number(key: Any, where: str) -> str:
    """A notebook key as its two-digit number: ``"02"``, ``"2"`` and an unquoted ``02`` or ``2`` (YAML
    reads a number) all give ``"02"``; anything else is refused."""
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 99:
        return f"{key:02d}"
    if isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= 2:
        return key.zfill(2)
    raise SuiteError(f"{where}: notebook key {key!r} is not a notebook number; per-notebook values are keyed by the "
                     "notebook file's number, quoted (\"02\" for 02_rq2_....ipynb; on the command line --set 02.KEY=VALUE)")


def _notebook_keys(notebooks: dict[Any, Any], where: str) -> dict[str, dict[str, Any]]:
    """Per-notebook blocks keyed by two-digit numbers; two keys for one notebook are refused."""
    found: dict[str, dict[str, Any]] = {}
    written: dict[str, Any] = {}
    for key, block in notebooks.items():
        number = _notebook_number(key, f"{where}: notebooks")
        if number in found:
            raise SuiteError(f"{where}: notebooks {written[number]!r} and {key!r} both name notebook {number}; "
                             "merge them into one block")
        found[number], written[number] = _mapping(block, f"{where}: notebooks.{number}"), key
    return found


def find_notebooks(folder: str | Path) -> list[Path]:
    """The suite's notebooks: ``NN_<chapter>_*.ipynb`` in number order."""
    folder = Path(folder)
    found = sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))
    if not found:
        raise SuiteError(f"no notebooks named NN_<chapter>_*.ipynb in {folder.resolve()}")
    numbers: dict[str, list[str]] = {}
    for notebook in found:
        numbers.setdefault(notebook.name[:2], []).append(notebook.name)
    twice = {n: names for n, names in numbers.items() if len(names) > 1}
    if twice:
        number, names = next(iter(twice.items()))
        raise SuiteError(f"{folder}: notebooks {', '.join(names)} share the number {number} (a copy made in Jupyter?); "
                         "each number names one notebook: rename or move the copy")
    return found


def chapter_id(notebook: str | Path) -> str:
    """``01_rq1_pretrained_on_synthetic.ipynb`` -> ``rq1`` (the notebook's output folder)."""
    match = NOTEBOOK_PATTERN.match(Path(notebook).name)
    if not match:
        raise SuiteError(f"{notebook} is not named NN_<chapter>_*.ipynb")
    return match.group(2)


def declared_parameters(notebook: str | Path) -> dict[str, Any]:
    """Names and defaults of the notebook's ``parameters`` cell (via papermill)."""
    import papermill

    try:
        found = papermill.inspect_notebook(str(notebook))
    except Exception as err:  # not JSON (a merge conflict), no kernel named, a parameters cell that does not parse
        raise SuiteError(f"{notebook} cannot be read as a notebook ({type(err).__name__}: {' '.join(str(err).split())[:200]}); "
                         "open it in Jupyter and save it again, or restore it with git") from None
    if not found:
        raise SuiteError(f"{notebook} has no cell tagged 'parameters'")
    return found


def check_kernel(name: str) -> None:
    """Fail with the set-up command when the Jupyter kernel ``name`` is not installed."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if name not in specs:
        raise SuiteError(
            f"Jupyter kernel {name!r} is not installed (found: {', '.join(sorted(specs)) or 'none'}); "
            f"`make venv` registers it, or run `python -m ipykernel install --sys-prefix --name {name}` in the project's environment"
        )


def _substitute(value: Any, run_dir: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{output_dir}", str(run_dir))
    if isinstance(value, list):
        return [_substitute(v, run_dir) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, run_dir) for k, v in value.items()}
    return value


def notebook_parameters(params: SuiteParams, notebook: Path, declared: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """What papermill injects into ``notebook``: the shared and per-notebook values it declares."""
    number = notebook.name[:2]
    extra = params.notebooks.get(number, {})
    undeclared = sorted(set(extra) - set(declared))
    if undeclared:
        raise SuiteError(f"{params.source}: notebooks.{number} sets {undeclared}, which {notebook.name} does not declare "
                         f"(its parameters: {', '.join(declared)})")
    merged = {k: v for k, v in params.parameters.items() if k in declared}
    merged.update(extra)
    merged["output_dir"] = str(run_dir)
    return {k: _substitute(copy.deepcopy(v), run_dir) for k, v in merged.items()}


@dataclass
class SuiteRun:
    """What :func:`run_suite` produced."""

    run_dir: Path
    notebooks: list[Path]
    seconds: dict[str, float]

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def executed_errors(path: str | Path) -> list[str]:
    """Error outputs in an executed notebook, as 'cell N: Name: message'."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
    return found


def _describe_failure(err: Exception, notebook: Path, executed: Path, source: str | None) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        first = next((line for line in err.source.splitlines() if line.strip() and not line.startswith("#")), "").strip()
        hint = (f"\nthe paths come from {source}: edit it there or pass --set NAME=VALUE"
                if err.ename == "MissingPathError" and source else "")
        return (f"{notebook.name} failed in cell [{err.exec_count}] (`{first[:80]}`): {err.ename}: {err.evalue}{hint}\n"
                f"the executed copy with the full traceback: {executed}")
    return f"{notebook.name} could not run: {type(err).__name__}: {err}"


def run_suite(
    params: SuiteParams | None,
    *,
    resume: str | Path | None = None,
    only: Sequence[str] | None = None,
    progress: bool = True,
) -> SuiteRun:
    """Execute the notebooks in order into a new run folder, or carry on with ``resume`` (a run
    folder: its saved parameters are used and notebooks that finished are skipped)."""
    if resume is not None:
        params = SuiteParams.from_run(resume)
    elif params is None:
        raise SuiteError("give the suite parameters (configs/suite_*.yaml) or a run folder to resume")
    notebooks, declared = _select_notebooks(params, only)
    check_kernel(params.kernel)
    run_dir, status = _open_run(params, resume)
    try:
        return _run_notebooks(params, notebooks, declared, run_dir, status, only, progress)
    except BaseException:
        if resume is None and not status["notebooks"]:  # a refused start (or Ctrl-C before any notebook) leaves nothing
            shutil.rmtree(run_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                run_dir.parent.rmdir()  # results/suite/<name>/ when it held only this run
        raise


def _run_notebooks(params: SuiteParams, notebooks: list[Path], declared: dict[Path, dict[str, Any]], run_dir: Path,
                   status: dict[str, Any], only: Sequence[str] | None, progress: bool) -> SuiteRun:
    """The notebooks of :func:`run_suite`, in order, into ``run_dir`` (finished ones skipped)."""
    seconds: dict[str, float] = {}
    executed_paths = []
    for notebook in notebooks:
        executed = run_dir / "notebooks" / notebook.name
        executed_paths.append(executed)
        record = status["notebooks"].get(notebook.name, {})
        source_sha = sha256_file(notebook)
        if record.get("status") == "ok" and executed.is_file() and record.get("notebook_sha256", source_sha) != source_sha:
            log.info("%s changed since it ran in %s; running it again", notebook.name, run_dir)
        elif record.get("status") == "ok" and executed.is_file():
            log.info("%s already ran in %s; skipping", notebook.name, run_dir)
            seconds[notebook.name] = record.get("seconds", 0.0)
            continue
        parameters = notebook_parameters(params, notebook, declared[notebook], run_dir)
        seconds[notebook.name] = _execute(params, notebook, executed, parameters, run_dir, status, source_sha, progress)
    if not only:
        status["finished"] = _now()
        write_json(run_dir / "suite.json", status)
    return SuiteRun(run_dir, executed_paths, seconds)


def _select_notebooks(params: SuiteParams, only: Sequence[str] | None) -> tuple[list[Path], dict[Path, dict[str, Any]]]:
    """The notebooks to run (``only``: numbers or stems) and every notebook's declared parameters;
    a parameter no notebook declares is an error (all of them count: ``--only 01`` keeps 02's keys valid)."""
    every = find_notebooks(params.notebooks_dir)
    notebooks = [nb for nb in every if not only or nb.name[:2] in only or nb.stem in only]
    if not notebooks:
        raise SuiteError(f"--only {list(only or [])} matches no notebook in {params.notebooks_dir}")
    declared = {nb: declared_parameters(nb) for nb in every}
    everything = set().union(*[set(d) for d in declared.values()])
    unknown = sorted(set(params.parameters) - everything)
    if unknown:
        hints = "".join(did_you_mean(u, everything) for u in unknown[:1])
        raise SuiteError(f"{params.source}: parameters {unknown} are declared by no notebook{hints}; "
                         f"known: {', '.join(sorted(everything))}")
    _check_notebook_keys(params, {nb.name[:2]: (nb, declared[nb]) for nb in every})
    return notebooks, declared


def _check_notebook_keys(params: SuiteParams, numbered: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    """Every per-notebook block names a notebook that exists, and only parameters it declares."""
    for number, extra in params.notebooks.items():
        where = params.origins.get(number, f"{params.source}: notebooks.{number}")
        if number not in numbered:
            raise SuiteError(f"{where}: there is no notebook {number} in {params.notebooks_dir} "
                             f"(notebooks: {', '.join(sorted(numbered))})")
        notebook, declared = numbered[number]
        undeclared = sorted(set(extra) - set(declared))
        if undeclared:
            hint = did_you_mean(str(undeclared[0]), declared)
            raise SuiteError(f"{where}: {notebook.name} does not declare {undeclared}{hint} "
                             f"(its parameters: {', '.join(declared)})")


def _open_run(params: SuiteParams, resume: str | Path | None) -> tuple[Path, dict[str, Any]]:
    """A new run folder (with ``suite.yaml``) or the resumed one, and its status: the environment
    (both, when a resumed run goes on with other code) and the inputs' fingerprints, which a resumed
    run must not have changed."""
    if resume is not None:
        run_dir = Path(resume)
    else:
        run_dir = new_run_dir(Path(params.results_dir) / params.name)
        with atomic_open(run_dir / "suite.yaml") as handle:
            yaml.safe_dump(params.to_dict(), handle, sort_keys=False)
    run_dir = run_dir.resolve()
    status = read_status(run_dir) or {"name": params.name, "started": _now(), "notebooks": {}}
    environment = provenance.environment(str(params.parameters.get("device", "auto")))
    if "environment" in status and status["environment"]["code"] != environment["code"]:
        log.warning("%s started on fercore %s and goes on with %s: the run page lists both", run_dir,
                    status["environment"]["code"], environment["code"])
        status.setdefault("resumed_with", []).append(environment)
    status.setdefault("environment", environment)
    inputs = input_fingerprints(params.parameters)
    if resume is not None and "inputs" in status:
        refuse_changes(status["inputs"], inputs, lambda changed: SuiteError(
            f"{run_dir}: the data or weights changed since the run started ({', '.join(changed)}); "
            "its finished chapters would not match the rest: start a new run (fercore suite run --params ...)"),
            names_only=True)
    status["inputs"] = inputs
    return run_dir, status


def _execute(params: SuiteParams, notebook: Path, executed: Path, parameters: dict[str, Any], run_dir: Path,
             status: dict[str, Any], source_sha: str, progress: bool) -> float:
    """Run one notebook with papermill into ``executed``, check its chapter, record it in
    ``suite.json``; raise :class:`SuiteError` naming the cell when it fails. Returns its seconds."""
    import papermill

    executed.parent.mkdir(parents=True, exist_ok=True)
    log.info("running %s", notebook.name)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(notebook), str(executed), parameters=parameters, kernel_name=params.kernel,
                                   cwd=str(Path.cwd()), progress_bar=progress, start_timeout=params.start_timeout)
    except Exception as err:
        message = _describe_failure(err, notebook, executed, params.source)
        status["notebooks"][notebook.name] = {"status": "failed", "error": message, "seconds": time.perf_counter() - start}
        write_json(run_dir / "suite.json", status)
        raise SuiteError(f"{message}\nonce fixed, carry on with `fercore suite run --resume {run_dir}` (it keeps the run's "
                         "saved parameters: after editing the parameter file, start a new run instead)") from None
    took = time.perf_counter() - start
    problems = executed_errors(executed) + check_chapter(run_dir / chapter_id(notebook))
    status["notebooks"][notebook.name] = {"status": "ok" if not problems else "failed", "seconds": took,
                                          "parameters": parameters, "problems": problems, "notebook_sha256": source_sha}
    write_json(run_dir / "suite.json", status)
    if problems:
        raise SuiteError(f"{notebook.name} ran but its outputs are incomplete:\n  " + "\n  ".join(problems))
    return took


def input_fingerprints(parameters: dict[str, Any]) -> dict[str, str]:
    """For every parameter value that names an existing file or folder (nested keys as
    ``models.B0.weights``): a digest of its files' names, sizes and modification times."""
    found: dict[str, str] = {}

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{name}.{key}" if name else str(key), inner)
        elif isinstance(value, str) and value and "{" not in value and Path(value).exists():
            path = Path(value)
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            digest = hashlib.sha256()
            for file in files:
                size, mtime_ns = file_stamp(file) or ("missing", "")
                digest.update(f"{file.relative_to(path) if path.is_dir() else file.name}\t{size}\t{mtime_ns}\n".encode())
            found[name] = digest.hexdigest()[:16]

    walk("", parameters)
    return found


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
