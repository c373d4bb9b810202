"""benchmarks/design_cost.py: the cost estimate of RQ2's replicates and control and of the null arm follows the
thesis parameter file (more replicates cost more; no control costs less)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _result(params: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "design_cost.py"), "--params", str(params)],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    line = out.strip().splitlines()[-1]
    assert line.startswith("RESULT "), out
    return {k: float(v) for k, v in (item.split("=") for item in line.split()[1:])}


def test_cost_follows_the_parameter_file(tmp_path):
    thesis = yaml.safe_load((ROOT / "configs" / "suite_thesis.yaml").read_text())
    base = _result(ROOT / "configs" / "suite_thesis.yaml")
    assert set(base) == {"B0_gpu_h", "B0_cpu_h", "B2_gpu_h", "B2_cpu_h", "null_min"}
    assert 0 < base["B0_gpu_h"] < base["B0_cpu_h"] and 0 < base["B2_gpu_h"] < base["B2_cpu_h"]
    for change, direction in (({"replicates": 10}, 1), ({"control": False}, -1)):
        edited = {**thesis, "notebooks": {**thesis["notebooks"], "02": {**thesis["notebooks"]["02"], **change}}}
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(edited))
        other = _result(path)
        assert all((other[k] - base[k]) * direction > 0 for k in ("B0_gpu_h", "B2_cpu_h")), (change, other, base)
