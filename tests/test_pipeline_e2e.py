"""End to end: `dvc repro` on a smoke-sized config in a throwaway copy of the repo, then a
no-op repro, `dvc exp run -S finetune.dataset=debiased`, a temp-dir experiment that changes the
bias strength, and a push/pull round trip.

This downloads the pinned sources through the package clients (the registries must be
reachable) and trains tiny models: a few minutes on 2 cores.
"""
import io
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from askshift.study.stage import AUDIT_ENV
from tests.smoke import git, make_workspace

pytestmark = pytest.mark.slow


def dvc(ws: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(["dvc", *args], cwd=ws, capture_output=True, text=True,
                       env={**os.environ, "DVC_NO_ANALYTICS": "1", **(env or {})})
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
    r = dvc(ws, "repro", env={AUDIT_ENV: str(ws.parent / "reads")})
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "smoke run")
    return ws, r.stdout


def test_repro_runs_every_stage(workspace):
    ws, out = workspace
    assert stages_ran(out) == {"params", "download", "curate", "pretrain", "baseline", "finetune",
                               "evaluate", "robustness", "report",
                               "interventions", "debiased", "split", "theory"}
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


def _under(path: str, folders) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def test_stages_read_only_their_declared_deps(workspace):
    """Every data file a stage opened (recorded by an audit hook) is one of its deps in
    dvc.yaml, or its own output, or resumable scratch. Code files are the deps test's job."""
    from askshift.study.dvcfile import expanded_stages, read_dvc_yaml

    ws, _ = workspace
    stages = expanded_stages(read_dvc_yaml(ws / "dvc.yaml"))
    reads = ws.parent / "reads"
    assert {p.stem for p in reads.glob("*.json")} == set(stages)
    for name, spec in stages.items():
        declared = [d for d in spec.get("deps", []) if isinstance(d, str)]
        own = [next(iter(o)) if isinstance(o, dict) else o for k in ("outs", "metrics", "plots") for o in spec.get(k, [])]
        for path in json.loads((reads / f"{name}.json").read_text()):
            if path.endswith(".py") or path.startswith((".venv/", "__editable__", "models/ckpt/")) or "__pycache__" in path:
                continue
            assert _under(path, declared) or _under(path, own), f"stage {name} read {path}, not a dep in dvc.yaml"


def test_analyses_outputs(workspace):
    """The paper's analyses (interventions, curated, split, theory) ran with sane numbers."""
    ws, _ = workspace
    iv = json.loads((ws / "results/interventions/metrics.json").read_text())
    arms = iv["arms"]["spurious_tint"]
    assert set(arms) == {"spurious_tint", "spurious_tint+flip"}
    for a in arms.values():
        assert a["n_baseline"] == 3 and 0 <= a["fit_r2"] <= 1
        for arm in ("scratch", "scratch_dfr", "pretrained", "pretrained_dfr", "scratch_rw", "pretrained_rw"):
            assert a[arm]["er_low"] <= a[arm]["er"] <= a[arm]["er_high"], arm
            assert 0 <= a[arm]["shift_wga"] <= a[arm]["shift_acc"] <= 1, arm
    assert iv["dfr"]["max_fold_error"] < 1e-3
    assert set(iv["corrected"]["spurious_tint"]) == set(arms)
    assert len(list((ws / "models/interventions").glob("*.pt"))) == 2 * 6  # 2 trials x 6 arms
    cu = json.loads((ws / "results/debiased/metrics.json").read_text())
    assert set(cu["curated_arms"]) == {"pretrained_debiased", "scratch_debiased", "pretrained_balanced",
                                       "pretrained_reference"}
    assert set(cu["size_sweep"]) == {"20", "40"}
    assert cu["debiased_set"]["tint_predicts_label"]["nmi"] < 1e-9
    runs = pd.read_csv(ws / "results/debiased/sweep_runs.csv")
    assert len(runs) == 4 and (runs["tint_label_nmi"].abs() < 1e-9).all()
    sp = json.loads((ws / "results/split/metrics.json").read_text())
    assert set(sp["parts"]) == {"fonts", "uci_digits", "mixture"}
    assert sp["parts"]["mixture"]["membership"]["auroc"] > 0.8  # photo backgrounds are easy to tell
    assert 0 <= sp["parts"]["fonts"]["out_of_support_fraction"] <= 1
    th = json.loads((ws / "results/theory/metrics.json").read_text())["theorem"]
    assert th["theorem_error"] < 1e-6 and th["pretrained_wins"]
    assert th["control_big_step"]["theorem_error"] > 1 and th["control_off_subspace"]["theorem_error"] > 1


def test_report_has_claims_and_renders_in_chromium(workspace):
    from tests.test_report import check_report_dir

    ws, _ = workspace
    check_report_dir(ws / "reports")  # claims table, every part; headless Chromium: no errors, figures load


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
    assert stages_ran(r.stdout) == {"params", "finetune", "evaluate", "robustness", "report", "split"}
    table = dvc(ws, "exp", "show", "--csv").stdout
    header = table.splitlines()[0]
    assert "shifts.spurious_tint.er_mean" in header and "finetune.dataset" in header
    assert "debiased" in table
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "debiased experiment applied")


def test_exp_changing_the_bias_retrains_from_fresh_checkpoints(workspace):
    """An experiment in the workspace that changes the training data of the baselines and
    fine-tunes while the default run's checkpoints are still there: they must not be resumed
    ('trained on other data' used to stop it). The corpus does not change: no pre-training."""
    ws, _ = workspace
    r = dvc(ws, "exp", "run", "-n", "bias09", "-S", "curate.spurious_tint.p=0.9")
    assert stages_ran(r.stdout) == {"params", "curate", "baseline", "finetune", "evaluate", "robustness",
                                    "report", "interventions", "debiased", "split"}
    rows = pd.read_csv(io.StringIO(dvc(ws, "exp", "show", "--csv").stdout))
    exp = rows[rows["Experiment"] == "bias09"]
    assert len(exp) == 1 and float(exp["curate.spurious_tint.p"].iloc[0]) == 0.9
    base = rows[rows["Experiment"].isna() & (rows["rev"] != "workspace")]  # the committed run
    # the biased training data changed, so did the tint baselines' ER fit; the plain ones did not
    col = "shifts.spurious_tint.er_mean"
    assert float(exp[col].iloc[0]) != float(base[col].iloc[0])
    assert float(exp["shifts.flip.er_mean"].iloc[0]) == pytest.approx(float(base["shifts.flip.er_mean"].iloc[0]))
    git(ws, "checkout", "--", ".")      # back to the committed run for the tests that follow
    dvc(ws, "checkout", "--force")


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
