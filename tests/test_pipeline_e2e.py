"""End to end on a smoke-sized config (tests/smoke.py) in throwaway copies of the repo: `dvc repro`
(every model learns), no-op repro, experiments, a bad param and a failed source that lose
nothing, SIGKILLs at several points followed by a resume that gives the uninterrupted run's
outputs, queued experiments equal to serial ones, and a push/pull round trip.

This downloads the pinned sources through the package clients (the registries must be
reachable) and trains small models: about ten minutes on 2 cores.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from askshift.study.declared import PART_PARAMS, part_stage
from askshift.study.dvcfile import expanded_stages, read_dvc_yaml
from askshift.study.stage import AUDIT_ENV
from tests.smoke import git, make_workspace

pytestmark = pytest.mark.slow
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}
PART_STAGES = {part_stage(p) for p in PART_PARAMS}
# every stage a first `dvc repro` runs, in any world
ALL_STAGES = {"params", "download", "curate", "pretrain", "baseline", "finetune", "evaluate@baseline",
              "evaluate@finetune", "robustness", "report", "interventions", "debiased", "split", "theory",
              "machine", "ask_example", "ask", *PART_STAGES}


def dvc(ws: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(["dvc", *args], cwd=ws, capture_output=True, text=True, env={**ENV, **(env or {})})
    if check and r.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def stages_ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def lock_outs(ws: Path) -> dict[str, str]:
    """{output path: hash} of every stage output recorded in dvc.lock."""
    from ruamel.yaml import YAML

    lock = YAML(typ="safe", pure=True).load((ws / "dvc.lock").read_text())
    return {o["path"]: o.get("md5") or o.get("hash") for st in lock["stages"].values() for o in st.get("outs", [])}


def output_files(ws: Path) -> dict[str, bytes]:
    """Contents of every file of every stage output (metrics included)."""
    out = {}
    for spec in expanded_stages(read_dvc_yaml(ws / "dvc.yaml")).values():
        for key in ("outs", "metrics", "plots"):
            for o in spec.get(key, []):
                path = ws / (next(iter(o)) if isinstance(o, dict) else o)
                files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
                out.update({p.relative_to(ws).as_posix(): p.read_bytes() for p in files})
    return out


def restore_file(ws: Path, rel: str) -> None:
    """``rel`` as HEAD has it, by content (see :func:`restore_head`)."""
    (ws / rel).write_bytes(subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=ws, check=True,
                                          capture_output=True).stdout)


def restore_head(ws: Path) -> None:
    """Every tracked file as HEAD has it, by content: after `dvc exp run` in the workspace git's
    index can list a file as unchanged whose content DVC rewrote (DVC writes the index itself),
    so `git checkout -- .` alone may keep an experiment's params. Then the outputs of HEAD."""
    git(ws, "read-tree", "HEAD")
    git(ws, "checkout-index", "--force", "--all")
    dvc(ws, "checkout", "--force")


def read_json(ws: Path, rel: str) -> dict:
    return json.loads((ws / rel).read_text())


def repro_and_commit(ws: Path) -> tuple[Path, str]:
    """`dvc repro` in a fresh workspace, every file read recorded (``reads/`` beside it), the
    result committed; returns the workspace and the run's output."""
    if shutil.which("dvc") is None:
        pytest.fail("dvc is not on PATH: run the tests through ./bin/venv")
    r = dvc(ws, "repro", env={AUDIT_ENV: str(ws.parent / "reads")})
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "smoke run")
    return ws, r.stdout + r.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return repro_and_commit(make_workspace(tmp_path_factory.mktemp("ws")))


def test_repro_runs_every_stage_and_every_model_learns(workspace):
    ws, out = workspace
    assert stages_ran(out) == ALL_STAGES
    timed = dict(re.findall(r"^(\S+): [\d.]+ s wall, [\d.]+ s CPU, started [^,\s]+(.*)$", out, re.M))
    assert set(timed) == ALL_STAGES                 # each stage logs its time, threads and cores
    # the cores it claimed (and the wait, when another run on this machine held them)
    assert re.fullmatch(r", torch threads 2, BLAS threads 2, cores [\d,]+(?: \(waited [\d.]+ s for them\))?",
                        timed["finetune"]), timed["finetune"]
    summary = read_json(ws, "data/curated/summary.json")
    assert summary["ref_plain"]["per_split"] == {"test": 400, "train": 600, "val": 200}
    tint = summary["debiased_spurious_tint"]["tint_predicts_label"]["train"]
    assert tint["accuracy"] == pytest.approx(tint["chance"]) and tint["nmi"] < 1e-9
    # models that learn: the science can break these tests
    assert read_json(ws, "results/pretrain/metrics.json")["val_acc"] > 5 / 68   # 68 corpus classes
    acc = pd.concat([pd.read_csv(ws / f"results/evaluate/{k}/accuracies.csv") for k in ("baseline", "finetune")])
    own = acc[acc["dataset"] == "ref_" + acc["variant"]].set_index("model")["accuracy"]
    for v in ("plain", "spurious_tint", "label_shift"):
        assert own[f"{v}/baseline/full-e4"] > 0.5, v          # 10 classes: chance 0.1
        assert own[f"{v}/pretrained/ft-c0"] > 0.4, v
        assert own[f"{v}/baseline/full-e4"] > own[f"{v}/baseline/full-e1"] + 0.2, v  # a range of accuracies
    er = read_json(ws, "results/robustness/details.json")["shifts"]
    assert set(er) == {"spurious_tint", "label_shift", "unseen_tint", "flip", "pad", "photo_background",
                       "fonts", "corpus_fonts", "uci_digits", "mixture"}
    # accuracy on the line where the shift keeps it (label shift; at p = 0.9 the spurious tint
    # does not: its baselines' shifted accuracy depends on how much each leans on the tint)
    r2 = {name: round(s["r2"], 3) for name, s in er.items()}
    assert r2["label_shift"] > 0.5, r2
    assert er["spurious_tint"]["n_baseline"] == 10   # 3 full runs x 3 snapshots + 1 subset
    for name, s in er.items():
        assert s["er_ft_low"] <= s["er_ft"] <= s["er_ft_high"], name
    # the ask stage on its default pair: the mixture, half of it out of support by construction
    example, ask = read_json(ws, "results/ask/example.json"), read_json(ws, "results/ask/ask.json")
    assert (example["shift"], example["n_reference"], example["n_shifted"]) == ("mixture", 400, 200)
    share = ask["support"]["out_of_support"]
    assert ask["verdict"]["kind"] == "mixed" and 0.3 <= share["share"] <= 0.7, share
    assert set(ask["effect"]["er"]["all"]) == {"ft", "lpft"}
    assert read_json(ws, "results/ask/metrics.json")["ask"]["verdict"] == "mixed"   # `dvc exp show`: ask.verdict


# files every stage may read without declaring them: code (the deps test checks it), the
# environment, resumable scratch, the git / DVC state that DVCLive and the report's provenance
# read, and the stage timings the provenance shows (never a dep: they differ between runs)
TOOLING = (".venv/", "__editable__", "models/ckpt/", ".git/", ".dvc/", ".dvcignore", "dvc.yaml", "dvc.lock",
           "requirements.txt", "results/timings/")


def test_stages_read_only_their_declared_deps(workspace):
    check_declared_reads(workspace[0])


def check_declared_reads(ws: Path, also: dict[str, list[str]] | None = None) -> None:
    """Every data file a stage opened (recorded by an audit hook) is one of its deps in
    dvc.yaml, or its own output (or in ``also[stage]``); params.yaml only where the whole file
    is declared."""
    also = also or {}
    stages = expanded_stages(read_dvc_yaml(ws / "dvc.yaml", ws / "params.yaml"))
    reads = ws.parent / "reads"
    assert {p.stem for p in reads.glob("*.json")} == set(stages)

    def under(path, folders):
        return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)

    for name, spec in stages.items():
        declared = [d for d in spec.get("deps", []) if isinstance(d, str)]
        declared += ["params.yaml"] if {"params.yaml": None} in spec.get("params", []) else []
        own = [next(iter(o)) if isinstance(o, dict) else o for k in ("outs", "metrics", "plots") for o in spec.get(k, [])]
        for path in json.loads((reads / f"{name}.json").read_text()):
            if (path.endswith((".py", ".gitignore")) or path.startswith(TOOLING) or "__pycache__" in path
                    or not (ws / path).is_file()):
                continue  # code, tooling, or scratch the stage removed again
            assert under(path, declared) or under(path, own) or under(path, also.get(name, [])), \
                f"stage {name} read {path}, not a dep in dvc.yaml"


def test_analyses_outputs(workspace):
    """The paper's analyses (interventions, debiased, split, theory) ran with sane numbers."""
    ws, _ = workspace
    iv = read_json(ws, "results/interventions/details.json")
    arms = iv["arms"]["spurious_tint"]
    assert set(arms) == {"spurious_tint", "spurious_tint+flip"}
    for a in arms.values():
        assert a["n_baseline"] == 10 and 0 <= a["fit_r2"] <= 1
        for arm in ("scratch", "scratch_dfr", "pretrained", "pretrained_dfr", "scratch_rw", "pretrained_rw"):
            assert a[arm]["er_low"] <= a[arm]["er"] <= a[arm]["er_high"], arm
            assert 0 <= a[arm]["shift_wga"] <= a[arm]["shift_acc"] <= 1, arm
    assert iv["dfr"]["max_fold_error"] < 1e-3
    assert set(iv["corrected"]["spurious_tint"]) == set(arms)
    assert len(list((ws / "models/interventions").glob("*.pt"))) == 2 * 6  # 2 trials x 6 arms
    cu = read_json(ws, "results/debiased/details.json")
    assert set(cu["curated_arms"]) == {"pretrained_debiased", "scratch_debiased", "pretrained_balanced",
                                       "pretrained_one_tint", "pretrained_reference"}
    assert set(cu["size_sweep"]) == {"20", "40"}
    assert cu["debiased_set"]["tint_predicts_label"]["nmi"] < 1e-9
    runs = pd.read_csv(ws / "results/debiased/sweep_runs.csv")
    assert len(runs) == 4 and (runs["tint_label_nmi"].abs() < 1e-9).all()
    sp = read_json(ws, "results/split/details.json")
    assert set(sp["parts"]) == {"fonts", "corpus_fonts", "uci_digits", "mixture"}
    assert sp["parts"]["mixture"]["membership"]["auroc"] > 0.8  # photo backgrounds are easy to tell
    assert 0 <= sp["parts"]["fonts"]["out_of_support_fraction"] <= 1
    parts = read_json(ws, "results/robustness/details.json")["parts"]
    assert {"in", "out", "all", "true_in", "true_out"} <= set(parts["mixture"])
    # the difficulty control, checked on mixtures whose in-support half is the plain reference test split
    check = pd.read_csv(ws / "results/robustness/control_check.csv")
    assert {"unseen_tint", "flip", "fonts", "mixture"} <= set(check["hard_half"])
    assert check["share"].between(0, 1, inclusive="right").all()
    matched = pd.read_csv(ws / "results/robustness/parts.csv").query("part == 'in_matched'")
    gate = read_json(ws, "results/params/robustness.json")["split"]["matched_min_share"]
    assert not (matched["er"].notna() & (matched["share"] < gate)).any()
    th = read_json(ws, "results/theory/details.json")["theorem"]
    assert th["theorem_error"] < 1e-6 and th["pretrained_wins"]
    assert th["control_big_step"]["theorem_error"] > 1 and th["control_off_subspace"]["theorem_error"] > 1


def test_report_has_claims_and_renders_in_chromium(workspace):
    from tests.test_report import check_report_dir

    ws, _ = workspace
    check_report_dir(ws / "reports")  # claims table, every part, no error or warning shown; Chromium


def test_exp_show_leads_with_the_headline_numbers(workspace):
    """Metrics files hold headline numbers only: ER per shift and strategy first, no counts."""
    from askshift.io import flatten
    from askshift.study.params import load_params

    ws, _ = workspace
    header = dvc(ws, "exp", "show", "--csv").stdout.splitlines()[0].split(",")
    params = set(flatten(load_params(ws / "params.yaml", machine=False)))
    ids = {"Experiment", "rev", "typ", "Created", "parent", "State", "Executor"}
    first_param = min(i for i, c in enumerate(header) if c.split(":")[-1] in params)
    metrics = [c for c in header[:first_param] if c not in ids]  # dvc exp show: ids, metrics, params, deps
    assert metrics[:3] == ["shifts.spurious_tint.r2", "shifts.spurious_tint.er_ft", "shifts.spurious_tint.er_ft_low"]
    assert {"claims.agrees", "claims.disagrees", "claims.unclear"} <= set(metrics)   # the report's tally
    counts = [c for c in metrics if re.search(r"(^|[.:])(n|n_\w+|per_\w+|wall_seconds)(\.|$)", c)]
    assert counts == [] and len(metrics) > 20


def test_second_repro_is_a_noop(workspace):
    ws, _ = workspace
    t0 = time.time()
    r = dvc(ws, "repro")
    assert stages_ran(r.stdout) == set()
    assert "up to date" in r.stdout.lower()
    assert time.time() - t0 < 30


def test_bad_param_stops_before_any_output_is_touched(workspace):
    """`dvc exp run -S` with a typo: the params stage stops with one line naming key and choices,
    and every output and metric is as it was (DVC deletes a stage's outputs before running it,
    so the check must come before any other stage)."""
    ws, _ = workspace
    before = output_files(ws)
    r = dvc(ws, "exp", "run", "-S", "finetune.dataset=debaised", check=False)
    assert r.returncode != 0 and stages_ran(r.stdout) == {"params"}
    assert ("params.yaml: finetune.dataset = 'debaised': must be one of: reference, debiased (did you mean "
            "'debiased'?)") in r.stdout + r.stderr
    # the README's undo of an experiment's params: by content, since git's index may not show it
    restore_file(ws, "params.yaml")
    assert subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "params.yaml"], cwd=ws).returncode == 0
    dvc(ws, "checkout", "results/params")              # the params stage's own output: cached
    assert output_files(ws) == before
    assert "up to date" in dvc(ws, "status").stdout.lower()


def test_failed_stage_loses_nothing(workspace):
    """A stage that fails (here: robustness on a corrupt input): DVC deleted its outputs, metrics
    included, before running it; `dvc checkout` brings every one of them back."""
    ws, _ = workspace
    before = output_files(ws)
    ratios = ws / "results" / "split" / "ratios.csv"
    ratios.write_text("not,a\nratios,table\n")
    r = dvc(ws, "repro", "--single-item", "robustness", check=False)
    assert r.returncode != 0 and not (ws / "results" / "robustness" / "metrics.json").exists()
    dvc(ws, "checkout", "--force")
    assert output_files(ws) == before
    assert "up to date" in dvc(ws, "status").stdout.lower()


def test_failed_source_loses_nothing(workspace):
    """A source whose pinned hash does not match: the download stage names it and fails; its
    output (DVC deleted it first) comes back with `dvc checkout`."""
    ws, _ = workspace
    table = ws / "data" / "sources.yaml"
    text = table.read_text()
    first = re.search(r"sha256: ([0-9a-f]{64})", text)
    table.write_text(text.replace(first.group(1), "f" * 64, 1))  # valid hex, wrong payload
    r = dvc(ws, "repro", "download", check=False)
    assert r.returncode != 0
    assert "sha256" in (r.stdout + r.stderr) and "FAILED" in r.stdout
    restore_file(ws, "data/sources.yaml")
    dvc(ws, "checkout", "data/raw")
    assert "up to date" in dvc(ws, "status").stdout.lower()


def test_exp_run_debiased_reruns_only_what_depends_on_it(workspace):
    ws, _ = workspace
    r = dvc(ws, "exp", "run", "-S", "finetune.dataset=debiased")
    # the report re-renders only the parts that show the fine-tunes (ER, ER per part) and the index
    assert stages_ran(r.stdout) == {"params", "finetune", "evaluate@finetune", "robustness",
                                    "report_robustness", "report_split", "report"}
    table = dvc(ws, "exp", "show", "--csv").stdout
    header = table.splitlines()[0]
    assert "shifts.spurious_tint.er_ft" in header and "finetune.dataset" in header
    assert "debiased" in table
    # the small curated sets train for debiased.min_steps (the Sec. 7 recipe), not finetune.min_steps
    from askshift.study.layout import epochs_for
    p = read_json(ws, "results/params/finetune.json")
    for m in json.loads((ws / "models/finetune/index.json").read_text()):
        if m["strategy"] != "lp":
            assert m["epochs"] == epochs_for(m["n_train"], p["finetune"]["train"]["batch_size"],
                                             p["finetune"]["train"]["epochs"], p["debiased"]["min_steps"])
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "debiased experiment applied")


def test_ask_stage_answers_a_users_own_folders(workspace, tmp_path):
    """`dvc exp run -S ask.reference=DIR -S ask.shifted=DIR`: the two paths (outside the repo) are
    the ask stage's deps, only it runs, and it answers for those images; a path that does not
    exist stops the params stage with one line."""
    import numpy as np

    from tests.test_ask import digit_like, write_folder

    ws, _ = workspace
    rng = np.random.default_rng(0)
    ref_y, sh_y = (list(rng.integers(0, 2, 100)) for _ in range(2))
    ref = write_folder(tmp_path / "ref", [digit_like(rng, y) for y in ref_y], ref_y)
    sh = write_folder(tmp_path / "shifted", [digit_like(rng, y, tint=(255, 0, 0)) for y in sh_y], sh_y)
    r = dvc(ws, "exp", "run", "-n", "mine", "-S", f"ask.reference={ref}", "-S", f"ask.shifted={sh}",
            "-S", "ask.effect=false")
    assert stages_ran(r.stdout) == {"params", "ask", "report"}     # the index lists every param
    answer = read_json(ws, "results/ask/ask.json")
    assert answer["reference"]["source"] == str(ref) and answer["support"]["n_shifted"] == 100
    assert answer["verdict"]["kind"] == "out-of-support" and "effect" not in answer
    # the user's folder changes: the stage is out of date (its deps are the folders' contents)
    sorted((sh / "class0").iterdir())[0].unlink()
    assert "ask" in dvc(ws, "status", "ask").stdout
    restore_head(ws)
    r = dvc(ws, "exp", "run", "-S", f"ask.shifted={tmp_path / 'nope'}", check=False)
    assert r.returncode != 0 and stages_ran(r.stdout) == {"params"}
    assert f"ask.shifted = '{tmp_path / 'nope'}': no such file or folder" in r.stdout + r.stderr
    restore_head(ws)


def test_exp_changing_the_bias_retrains_from_fresh_checkpoints(workspace):
    """An experiment in the workspace that changes the training data of the baselines and
    fine-tunes while the default run's checkpoints are still there: they must not be resumed
    ('trained on other data' used to stop it). The corpus does not change: no pre-training."""
    ws, _ = workspace
    r = dvc(ws, "exp", "run", "-n", "bias05", "-S", "curate.spurious_tint.p=0.5")   # default 0.9
    assert stages_ran(r.stdout) == {"params", "curate", "baseline", "finetune", "evaluate@baseline",
                                    "evaluate@finetune", "robustness", "report", "interventions", "debiased",
                                    "split", "ask_example", "report_data", "report_robustness", "report_interventions",
                                    "report_debiased", "report_split"}
    rows = pd.read_csv(io.StringIO(dvc(ws, "exp", "show", "--csv").stdout))
    exp = rows[rows["Experiment"] == "bias05"]
    assert len(exp) == 1 and float(exp["curate.spurious_tint.p"].iloc[0]) == 0.5
    base = rows[rows["Experiment"].isna() & (rows["rev"] != "workspace")].iloc[[0]]  # the committed run
    # the biased training data changed, so did the tint baselines' ER fit; the plain ones did not
    col = "shifts.spurious_tint.er_ft"
    assert float(exp[col].iloc[0]) != float(base[col].iloc[0])
    assert float(exp["shifts.flip.er_lp"].iloc[0]) == pytest.approx(float(base["shifts.flip.er_lp"].iloc[0]))
    restore_head(ws)                    # back to the committed run for the tests that follow


def _kill_when(ws: Path, seen, timeout: float = 600) -> bool:
    """Start `dvc repro`, SIGKILL its whole process group as soon as ``seen(ws)`` holds; False
    when the run ended first."""
    proc = subprocess.Popen(["dvc", "repro"], cwd=ws, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while proc.poll() is None and time.time() - t0 < timeout:
        if seen(ws):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


def test_sigkill_then_repro_gives_the_uninterrupted_outputs(workspace, tmp_path):
    """A second full run, in a clone of the committed first run without its cache, killed with
    SIGKILL mid epoch, while a checkpoint is being written, and between stages: `dvc repro`
    resumes and ends with exactly the first run's outputs (dvc.lock and `dvc metrics diff`)."""
    ws, _ = workspace
    first = lock_outs(ws)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ws), str(clone)], check=True)
    ckpt = clone / "models" / "ckpt"
    points = {
        "mid epoch": lambda w: any(ckpt.glob("pretrain/*/last.pt")),   # after epoch 1 of 3
        "between stages": lambda w: (w / "results" / "timings" / "pretrain.json").exists(),
        "during a checkpoint write": lambda w: any(ckpt.glob("baseline/*/.tmp-last.pt-*")),  # best effort
    }
    killed = [name for name, seen in points.items() if _kill_when(clone, seen)]
    assert {"mid epoch", "between stages"} <= set(killed), killed
    dvc(clone, "repro")
    assert lock_outs(clone) == first, f"killed at: {killed}"
    assert git(clone, "status", "--porcelain", "dvc.lock") == ""
    assert "no changes" in dvc(clone, "metrics", "diff").stdout.lower() or not dvc(clone, "metrics", "diff").stdout.strip()


def test_queued_experiments_equal_serial_ones(workspace):
    """Two experiments through `dvc queue start -j 2` give the results of the same two run one
    after the other."""
    ws, _ = workspace
    values = ("0.02", "0.005")
    for v in values:
        dvc(ws, "exp", "run", "--queue", "-n", f"q-{v}", "-S", f"finetune.lp.lr={v}")
    # no captured output: the queue's daemon inherits the pipes, and reading them to their end
    # can wait for the daemon (the queue benchmark hung there once)
    subprocess.run(["dvc", "queue", "start", "-j", "2"], cwd=ws, check=True, env=ENV,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 900:
        status = dvc(ws, "queue", "status").stdout
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(5)
    dvc(ws, "queue", "stop", check=False)
    # the two workers' fine-tunes each claimed cores for the torch threads of params
    # (compute.threads): on disjoint cores if they ran at the same time, else one after the other
    logs = [dvc(ws, "queue", "logs", f"q-{v}").stdout for v in values]
    runs = [re.search(r"^finetune: ([\d.]+) s wall, .* started (\S+), torch threads 2, .*cores ([\d,]+)"
                      r"(?: \(waited ([\d.]+) s for them\))?$", log, re.M) for log in logs]
    assert all(runs), [log[-2000:] for log in logs]
    spans = [(pd.Timestamp(r[2]).timestamp() + float(r[4] or 0), pd.Timestamp(r[2]).timestamp() + float(r[1]))
             for r in runs]
    apart = spans[0][1] <= spans[1][0] + 1 or spans[1][1] <= spans[0][0] + 1   # start times are to the second
    assert apart or not set(runs[0][3].split(",")) & set(runs[1][3].split(",")), (runs[0][0], runs[1][0])
    for v in values:
        dvc(ws, "exp", "run", "-n", f"s-{v}", "-S", f"finetune.lp.lr={v}")
        restore_head(ws)
    rows = pd.read_csv(io.StringIO(dvc(ws, "exp", "show", "--csv").stdout)).set_index("Experiment")
    metrics = [c for c in rows.columns if c.startswith(("shifts.", "parts."))]
    for v in values:
        assert rows.loc[f"q-{v}", "State"] == "Success", dvc(ws, "queue", "logs", f"q-{v}", check=False).stdout[-3000:]
        pd.testing.assert_series_equal(rows.loc[f"q-{v}", metrics], rows.loc[f"s-{v}", metrics], check_names=False,
                                       check_exact=True)


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
    for rel in ("results/evaluate/baseline/accuracies.csv", "results/robustness/er.csv",
                "models/pretrain/model.pt", "data/curated/datasets/ref_plain/images.npy"):
        assert (clone / rel).read_bytes() == (ws / rel).read_bytes(), rel
    r = dvc(clone, "repro")
    assert stages_ran(r.stdout) == set()
