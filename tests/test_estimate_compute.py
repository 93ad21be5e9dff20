"""benchmarks/estimate_compute.py runs on the digits world's sizes and prints every stage."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.test_budget import SIZES
from tests.test_params import ROOT


def test_the_estimate_prints_each_stage_and_a_total(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({k: {"per_split": v} for k, v in SIZES.items()}))
    out = tmp_path / "estimate.json"
    r = subprocess.run([sys.executable, "benchmarks/estimate_compute.py", "--summary", str(tmp_path / "summary.json"),
                        "--seconds", "0.05", "--json", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(out.read_text())
    assert {row["stage"] for row in got["rows"]} == {"pretrain", "baseline", "finetune", "evaluate", "interventions",
                                                     "debiased"}
    assert all(row["cpu_hours"] > 0 and row["gpu_basis"] == "assumed 200 TFLOP/s" for row in got["rows"])
    assert got["total"]["cpu_hours"] == sum(row["cpu_hours"] for row in got["rows"])
    assert set(got["rates"]) == {"pretrained", "scratch", "scratch@w0.5"}
    assert "total" in r.stdout.splitlines()[-1]
