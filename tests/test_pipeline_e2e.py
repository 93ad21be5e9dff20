"""End to end: `dvc repro` on a smoke-sized config in a throwaway copy of the repo, then a
no-op repro, `dvc exp run -S finetune.dataset=debiased`, and a push/pull round trip.

This downloads the pinned sources through the package clients (the registries must be
reachable) and trains tiny models: a few minutes on 2 cores.
"""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.smoke import git, make_workspace

pytestmark = pytest.mark.slow


def dvc(ws: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["dvc", *args], cwd=ws, capture_output=True, text=True,
                       env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    if check and r.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def stages_ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    if shutil.which("dvc") is None:
        pytest.fail("dvc is not on PATH: run the tests through ./bin/venv")
    ws = make_workspace(tmp_path_factory.mktemp("ws"))
    r = dvc(ws, "repro")
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "smoke run")
    return ws, r.stdout


def test_repro_runs_every_stage(workspace):
    ws, out = workspace
    assert stages_ran(out) == {"download", "curate", "pretrain", "baseline", "finetune",
                               "evaluate", "robustness"}
    summary = json.loads((ws / "data/curated/summary.json").read_text())
    assert summary["ref_plain"]["per_split"] == {"test": 400, "train": 600, "val": 200}
    tint = summary["debiased_spurious_tint"]["tint_predicts_label"]["train"]
    assert tint["accuracy"] == pytest.approx(tint["chance"]) and tint["nmi"] < 1e-9
    assert (ws / "data/curated/grids/shift_flip.png").stat().st_size > 0
    er = json.loads((ws / "results/robustness/metrics.json").read_text())
    assert set(er["shifts"]) == {"spurious_tint", "label_shift", "unseen_tint", "flip", "pad",
                                 "photo_background", "fonts", "uci_digits", "mixture"}
    for name, s in er["shifts"].items():
        assert s["n_baseline"] == 3, name  # snapshots e1, e2 + one subset run
        assert -1 <= s["er_mean"] <= 1 and 0 <= s["r2"] <= 1
        assert s["er_ft_low"] <= s["er_ft"] <= s["er_ft_high"]
    acc = pd.read_csv(ws / "results/evaluate/accuracies.csv")
    assert acc["accuracy"].between(0, 1).all() and len(acc) > 0


def test_second_repro_is_a_noop(workspace):
    ws, _ = workspace
    t0 = time.time()
    r = dvc(ws, "repro")
    assert stages_ran(r.stdout) == set()
    assert "up to date" in r.stdout.lower()
    assert time.time() - t0 < 30


def test_exp_run_debiased_reruns_only_what_depends_on_it(workspace):
    ws, _ = workspace
    r = dvc(ws, "exp", "run", "-S", "finetune.dataset=debiased")
    assert stages_ran(r.stdout) == {"finetune", "evaluate", "robustness"}
    table = dvc(ws, "exp", "show", "--csv").stdout
    header = table.splitlines()[0]
    assert "shifts.spurious_tint.er_mean" in header and "finetune.dataset" in header
    assert "debiased" in table
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "debiased experiment applied")


def test_bad_override_fails_before_work(workspace):
    ws, _ = workspace
    r = dvc(ws, "exp", "run", "-S", "finetune.dataset=debaised", check=False)
    assert r.returncode != 0
    assert "finetune.dataset = 'debaised': must be one of: reference, debiased" in r.stdout + r.stderr
    git(ws, "checkout", "--", ".")  # -S edited params.yaml in the workspace: put it back


def test_push_pull_round_trip(workspace, tmp_path):
    ws, _ = workspace
    remote = tmp_path / "remote"
    dvc(ws, "remote", "add", "-f", "-d", "local", str(remote))
    dvc(ws, "push")
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "remote")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ws), str(clone)], check=True)
    dvc(clone, "pull")
    status = dvc(clone, "status").stdout
    assert "up to date" in status.lower()
    for rel in ("results/evaluate/accuracies.csv", "results/robustness/er.csv",
                "models/pretrain/model.pt", "data/curated/datasets/ref_plain/images.npy"):
        assert (clone / rel).read_bytes() == (ws / rel).read_bytes(), rel
    r = dvc(clone, "repro")
    assert stages_ran(r.stdout) == set()
