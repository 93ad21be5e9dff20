"""`python -m askshift summary`: docs/results.md's tables, written from a run's details files."""
from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from askshift.cli import CLIError, summary


def _write(root, rel, obj):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_summary_tables_per_strategy_with_stamp_and_tally(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CLIError, match="results/robustness/details.json is missing: run `dvc repro` first"):
        summary.summary(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    shift = {"kind": "in-support", "r2": 0.9, "n_baseline": 21, "er_mean": 0.5,
             "er_ft": 0.012, "er_ft_low": -0.003, "er_ft_high": 0.027,
             "er_lpft": 0.004, "er_lpft_low": -0.01, "er_lpft_high": 0.02}
    parts = {"fonts": {"in": {"er_mean": 0.9, "er_ft": -0.032, "er_lpft": -0.043},
                       "out": {"er_mean": 0.9, "er_ft": -0.039, "er_lpft": -0.045}}}
    _write(tmp_path, "results/robustness/details.json", {"scale": "probit", "finetune_dataset": "reference",
                                                         "shifts": {"spurious_tint": shift}, "parts": parts})
    _write(tmp_path, "reports/verdicts.json", {"claims": {"agrees": 7, "disagrees": 13, "unclear": 17},
                                               "verdicts": {}})
    text = summary.summary(tmp_path)
    digest = hashlib.sha256(b"seed: 0\n").hexdigest()[:12]
    assert f"params.yaml sha256 `{digest}`" in text
    assert "Claims table (reports/index.html): 7 agrees, 13 disagrees, 17 unclear." in text
    assert "| spurious_tint | in-support | 0.900 | 21 | +1.2 [-0.3, +2.7] | +0.4 [-1.0, +2.0] |" in text
    # parts per strategy, never the mean of the strategies (er_mean = 0.9 would print +90.0)
    assert "| fonts | – | – | -3.2 | -3.9 | – | -4.3 | -4.5 | – |" in text and "+90.0" not in text and "+50.0" not in text
