"""Two DVC experiments run one after the other, then the same two through `dvc queue start -j 2`,
from the same committed run: both wall times and their ratio (goal on 2 cores: <= 1.05).

    ./bin/venv python benchmarks/bench_queue.py [--smoke] [--workspace DIR] [--set KEY=VALUE ...]
        [--jobs 2] [--json OUT]
    ./bin/venv python benchmarks/bench_queue.py --reuse CLONE ...   # a clone whose run is committed

The default experiments change finetune.train.lr (0.05 and 0.03): fine-tuning, evaluation,
robustness, the analyses that fine-tune and the report re-run. The run cache is cleared before
the queued pair, so both modes do the same work; their results must be equal too (checked).

Where the time goes: each stage logs its wall and CPU seconds and start time (one line on
stderr, read back from `dvc exp run`'s output and from `dvc queue logs`), so for each
experiment the benchmark prints the time inside stage processes (after their imports) and the
rest: interpreter start-ups and imports, and DVC's own work (a queued experiment first checks
out every output of the run into a temporary copy of the workspace and at the end saves its
outputs to the cache and its commit to git).
"""
from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.smoke import SMOKE, make_workspace  # noqa: E402


def sh(ws: Path, *cmd: str, stderr: bool = False) -> str:
    r = subprocess.run(cmd, cwd=ws, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout + (r.stderr if stderr else "")


STAGE_LINE = re.compile(r"^(\S+): ([\d.]+) s wall, ([\d.]+) s CPU, started (\S+)$", re.M)


def stage_times(log: str) -> pd.DataFrame:
    """The stages' own timing lines in a log (askshift.study.stage.run_stage writes them)."""
    rows = [(name, float(wall), float(cpu), pd.Timestamp(started).timestamp())
            for name, wall, cpu, started in STAGE_LINE.findall(log)]
    return pd.DataFrame(rows, columns=["stage", "wall", "cpu", "start"])


def account(label: str, wall: float, stages: pd.DataFrame, t0: float | None = None) -> dict:
    """One experiment's time: inside its stages (after their imports) and the rest."""
    out = {"wall_s": round(wall, 1), "stages": len(stages), "in_stages_s": round(stages.wall.sum(), 1),
           "stage_cpu_s": round(stages.cpu.sum(), 1), "outside_stages_s": round(wall - stages.wall.sum(), 1)}
    if t0 is not None and len(stages):   # a queued experiment: when its first and last stage ran
        out["first_stage_at_s"] = round(stages.start.min() - t0, 1)
        out["last_stage_done_at_s"] = round((stages.start + stages.wall).max() - t0, 1)
    print(f"  {label}: " + ", ".join(f"{k} {v}" for k, v in out.items()), flush=True)
    return out


def restore_head(ws: Path) -> None:
    sh(ws, "git", "read-tree", "HEAD")
    sh(ws, "git", "checkout-index", "--force", "--all")
    sh(ws, "dvc", "checkout", "--force")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, help="existing empty folder to use (default: a temp dir)")
    ap.add_argument("--reuse", type=Path, help="a git clone of this repo whose `dvc repro` is done and "
                    "committed (clean `git status`): start from its run instead of making one")
    ap.add_argument("--smoke", action="store_true", help="smoke-sized params instead of the defaults")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="the experiments (default: finetune.train.lr=0.05 and =0.03)")
    ap.add_argument("--jobs", type=int, default=2, help="queue workers (default 2)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    points = args.set or ["finetune.train.lr=0.05", "finetune.train.lr=0.03"]
    if args.reuse:
        ws = args.reuse.resolve()
        if sh(ws, "git", "status", "--porcelain", "--untracked-files=no").strip() or \
                "changed" in sh(ws, "dvc", "status"):
            raise SystemExit(f"--reuse {ws}: commit its finished run first (git status / dvc status not clean)")
    else:
        ws = args.workspace or Path(tempfile.mkdtemp(prefix="askshift-queue-"))
        make_workspace(ws, SMOKE if args.smoke else {})
        t0 = time.time()
        sh(ws, "dvc", "repro")
        print(f"baseline run: {time.time() - t0:.0f} s", flush=True)
        sh(ws, "git", "add", "-A")
        sh(ws, "git", "commit", "-qm", "baseline run")

    t0, accounts = time.time(), {}
    for i, kv in enumerate(points):
        t1 = time.time()
        log = sh(ws, "dvc", "exp", "run", "-n", f"serial-{i}", "-S", kv, stderr=True)
        accounts[f"serial-{i}"] = account(f"serial-{i}", time.time() - t1, stage_times(log))
        restore_head(ws)
    serial = time.time() - t0
    print(f"serial: {serial:.0f} s for {len(points)} experiments", flush=True)

    shutil.rmtree(ws / ".dvc" / "cache" / "runs", ignore_errors=True)  # no run-cache hits: same work
    for i, kv in enumerate(points):
        sh(ws, "dvc", "exp", "run", "--queue", "-n", f"queued-{i}", "-S", kv)
    t0 = time.time()
    sh(ws, "dvc", "queue", "start", "-j", str(args.jobs))
    while True:
        status = sh(ws, "dvc", "queue", "status")
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(2)
    queued = time.time() - t0
    sh(ws, "dvc", "queue", "stop")
    print(f"queue -j {args.jobs}: {queued:.0f} s", flush=True)
    for i in range(len(points)):
        name = f"queued-{i}"
        accounts[name] = account(name, queued, stage_times(sh(ws, "dvc", "queue", "logs", name)), t0)

    rows = pd.read_csv(io.StringIO(sh(ws, "dvc", "exp", "show", "--csv"))).set_index("Experiment")
    cols = [c for c in rows.columns if c.startswith("shifts.")]
    equal = all(rows.loc[f"serial-{i}", cols].equals(rows.loc[f"queued-{i}", cols]) for i in range(len(points)))
    result = {"params": "smoke" if args.smoke else "as committed" if args.reuse else "default", "experiments": points, "jobs": args.jobs,
              "serial_s": round(serial, 1), "queue_s": round(queued, 1), "ratio": round(queued / serial, 3),
              "results_equal": equal, "experiments_time": accounts}
    print(f"queue / serial = {queued / serial:.2f}; results equal: {equal}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
