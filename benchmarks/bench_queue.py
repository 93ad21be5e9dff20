"""Two DVC experiments run one after the other, then the same two through `dvc queue start -j 2`,
from the same committed run: both wall times and their ratio (goal on 2 cores: <= 1.05).

    ./bin/venv python benchmarks/bench_queue.py [--smoke] [--workspace DIR] [--base KEY=VALUE ...]
        [--set KEY=VALUE ...] [--jobs 2] [--json OUT]
    ./bin/venv python benchmarks/bench_queue.py --reuse CLONE ...   # a clone whose run is committed
    ./bin/venv python benchmarks/bench_queue.py --reuse CLONE --only queue   # one half again

The default experiments change finetune.train.lr (0.05 and 0.03): fine-tuning, evaluation,
robustness, the analyses that fine-tune and the report re-run. The run cache is cleared before
the queued pair, so both modes do the same work; their results must be equal too (checked).

Where the time goes: each stage logs its wall and CPU seconds and start time (one line on
stderr, read back from `dvc exp run`'s output and from `dvc queue logs`), so for each
experiment the benchmark prints the time inside stage processes (from the call of run_stage:
the wait for cores, the library's imports and the work) and the rest: interpreter start-ups and
DVC's own work (a queued experiment first checks out every output of the run into a temporary
copy of the workspace, hashes and caches each stage's outputs, and at the end commits to git).
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
from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.smoke import SMOKE, make_workspace  # noqa: E402


def sh(ws: Path, *cmd: str, stderr: bool = False) -> str:
    r = subprocess.run(cmd, cwd=ws, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout + (r.stderr if stderr else "")


STAGE_LINE = re.compile(r"^(\S+): ([\d.]+) s wall, ([\d.]+) s CPU, started ([^,\s]+)"
                        r".*?(?: \(waited ([\d.]+) s for them\))?$", re.M)


def stage_times(log: str) -> pd.DataFrame:
    """The stages' own timing lines in a log (askshift.study.stage.timing_line writes them):
    wall and CPU seconds, start (epoch seconds), seconds waited for claimed cores."""
    rows = [(name, float(wall), float(cpu), pd.Timestamp(started).timestamp(), float(waited or 0))
            for name, wall, cpu, started, waited in STAGE_LINE.findall(log)]
    return pd.DataFrame(rows, columns=["stage", "wall", "cpu", "start", "waited"])


def account(label: str, wall: float, stages: pd.DataFrame, t0: float | None = None) -> dict:
    """One experiment's time: inside its stages (waits for cores included) and the rest."""
    out = {"wall_s": round(wall, 1), "stages": len(stages), "in_stages_s": round(stages.wall.sum(), 1),
           "of_which_waiting_for_cores_s": round(stages.waited.sum(), 1), "stage_cpu_s": round(stages.cpu.sum(), 1),
           "outside_stages_s": round(wall - stages.wall.sum(), 1),
           "per_stage": {r.stage: {"wall_s": r.wall, "cpu_s": r.cpu, "waited_s": r.waited} for r in stages.itertuples()}}
    if t0 is not None and len(stages):   # a queued experiment: when its first and last stage ran
        out["first_stage_at_s"] = round(stages.start.min() - t0, 1)
        out["last_stage_done_at_s"] = round((stages.start + stages.wall).max() - t0, 1)
    print(f"  {label}: " + ", ".join(f"{k} {v}" for k, v in out.items() if k != "per_stage"), flush=True)
    return out


def wait_for(ws: Path, names: list[str], poll: float = 1.0, status_every: float = 60.0) -> None:
    """Until every named experiment has its git ref (DVC writes it when the experiment is done):
    `git for-each-ref` costs milliseconds, while each `dvc queue status` costs ~0.9 CPU seconds
    (measured), which polled every few seconds took ~8% of a 2-core machine from the queued
    experiments. `dvc queue status` once a minute still ends the wait when one failed."""
    last = time.time()
    while True:
        refs = sh(ws, "git", "for-each-ref", "--format=%(refname)", "refs/exps").split()
        if all(any(r.endswith("/" + n) for r in refs) for n in names):
            return
        if time.time() - last > status_every:
            last = time.time()
            status = sh(ws, "dvc", "queue", "status")
            if "Running" not in status and "Queued" not in status:
                return
        time.sleep(poll)


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
    ap.add_argument("--base", action="append", metavar="KEY=VALUE", default=[],
                    help="params of the committed run, e.g. compute.threads=1: one-thread stages, so two "
                    "experiments can train side by side on 2 cores (the case of more cores than threads)")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="the experiments (default: finetune.train.lr=0.05 and =0.03)")
    ap.add_argument("--jobs", type=int, default=2, help="queue workers (default 2)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--only", choices=("serial", "queue"), help="run one half (with --reuse: e.g. the queue "
                    "again after a change to how it is timed; no ratio is printed)")
    args = ap.parse_args()
    points = args.set or ["finetune.train.lr=0.05", "finetune.train.lr=0.03"]
    if args.reuse and args.base:
        raise SystemExit("--base sets the params of a new run; --reuse starts from a committed one")
    if args.reuse:
        ws = args.reuse.resolve()
        if sh(ws, "git", "status", "--porcelain", "--untracked-files=no").strip() or \
                "changed" in sh(ws, "dvc", "status"):
            raise SystemExit(f"--reuse {ws}: commit its finished run first (git status / dvc status not clean)")
    else:
        ws = args.workspace or Path(tempfile.mkdtemp(prefix="askshift-queue-"))
        base = {k: YAML(typ="safe").load(v) for k, _, v in (kv.partition("=") for kv in args.base)}
        make_workspace(ws, {**(SMOKE if args.smoke else {}), **base})
        t0 = time.time()
        sh(ws, "dvc", "repro")
        print(f"baseline run: {time.time() - t0:.0f} s", flush=True)
        sh(ws, "git", "add", "-A")
        sh(ws, "git", "commit", "-qm", "baseline run")

    accounts, serial, queued = {}, None, None
    if args.only != "queue":
        t0 = time.time()
        for i, kv in enumerate(points):
            t1 = time.time()
            log = sh(ws, "dvc", "exp", "run", "-n", f"serial-{i}", "-S", kv, stderr=True)
            accounts[f"serial-{i}"] = account(f"serial-{i}", time.time() - t1, stage_times(log))
            restore_head(ws)
        serial = time.time() - t0
        print(f"serial: {serial:.0f} s for {len(points)} experiments", flush=True)

    if args.only != "serial":
        names = [f"queued-{i}" for i in range(len(points))]
        subprocess.run(["dvc", "exp", "remove", *names], cwd=ws, capture_output=True)  # from an earlier --only queue
        shutil.rmtree(ws / ".dvc" / "cache" / "runs", ignore_errors=True)  # no run-cache hits: same work
        for name, kv in zip(names, points):
            sh(ws, "dvc", "exp", "run", "--queue", "-n", name, "-S", kv)
        t0 = time.time()
        # not through sh(): the queue's daemon inherits the output pipes, so waiting for their
        # end waits for the daemon (a first version hung there until its workers went idle)
        subprocess.run(["dvc", "queue", "start", "-j", str(args.jobs)], cwd=ws, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(ws, names)
        queued = time.time() - t0
        sh(ws, "dvc", "queue", "stop")
        print(f"queue -j {args.jobs}: {queued:.0f} s", flush=True)
        for name in names:
            accounts[name] = account(name, queued, stage_times(sh(ws, "dvc", "queue", "logs", name)), t0)

    rows = pd.read_csv(io.StringIO(sh(ws, "dvc", "exp", "show", "--csv"))).set_index("Experiment")
    cols = [c for c in rows.columns if c.startswith("shifts.")]
    both = all(f"{m}-{i}" in rows.index for m in ("serial", "queued") for i in range(len(points)))
    equal = both and all(rows.loc[f"serial-{i}", cols].equals(rows.loc[f"queued-{i}", cols]) for i in range(len(points)))
    result = {"params": "smoke" if args.smoke else "as committed" if args.reuse else "default", "base": args.base,
              "experiments": points,
              "jobs": args.jobs, "serial_s": serial and round(serial, 1), "queue_s": queued and round(queued, 1),
              "results_equal": equal, "experiments_time": accounts}
    if serial and queued:
        result["ratio"] = round(queued / serial, 3)
        print(f"queue / serial = {queued / serial:.2f}", end="; ")
    print(f"results equal: {equal}" if both else "results not compared (serial or queued runs missing)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
