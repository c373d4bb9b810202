"""Suite runs on disk: the error a run or build raises, a run's status file, the newest finished run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class SuiteError(RuntimeError):
    """A suite run or book build that cannot go on; the message says what to do."""


def read_status(run_dir: Path) -> dict[str, Any]:
    """A run's ``suite.json`` (status and seconds per notebook), or {} before its first write."""
    path = run_dir / "suite.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def latest_run(results_dir: str | Path = "results/suite") -> Path:
    """The most recently finished complete run under ``results_dir``."""
    runs = []
    for status_file in Path(results_dir).glob("*/*/suite.json"):
        status = json.loads(status_file.read_text())
        if status.get("finished"):
            runs.append((status["finished"], status_file.parent))
    if not runs:
        raise SuiteError(f"no finished suite run under {results_dir}: run `fercore suite run --params configs/suite_demo.yaml` first")
    return max(runs)[1]
