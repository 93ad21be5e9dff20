"""Benchmark the default study: the full `dvc repro` (wall, CPU, peak RSS; each stage's own wall
and CPU time), a no-op `dvc repro`, and the cost of an experiment as a share of the full run.

    ./bin/venv python benchmarks/bench_pipeline.py [--workspace DIR] [--smoke] [--json OUT]
        [--experiment KEY=VALUE ...]     # default: finetune.dataset=debiased
        [--stage-by-stage]               # one `dvc repro --single-item` per stage (peak RSS each)

Runs in a throwaway copy of the repo (tests/smoke.py:make_workspace: the tracked files in a new
git repository, like a fresh clone; default params unless --smoke): one `dvc repro` under
/usr/bin/time, as a user runs it. Each stage's wall and CPU seconds come from
results/timings/<stage>.json (written by the stage itself; its wall time starts once its script
is imported), so the rest of the total is DVC's own work plus interpreter start-up and imports.
Then it commits the run and times `dvc exp run -S KEY=VALUE` for each experiment (each from the
committed run) the same way. Targets: no-op repro <= 3 s, peak RSS <= 3 GB,
`finetune.dataset=debiased` <= 20% of the run.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.smoke import SMOKE, make_workspace  # noqa: E402


def stage_order(ws: Path) -> list[str]:
    out = subprocess.run(["dvc", "dag", "--md"], cwd=ws, capture_output=True, text=True, check=True).stdout
    edges = re.findall(r"\t(\S+)-->(\S+)", out)
    nodes = re.findall(r"\t(node\d+)\[\"?([^\]\"]+)\"?\]", out)
    names = dict(nodes)
    deps: dict[str, set[str]] = {n: set() for n in names.values()}
    for a, b in edges:
        deps[names[b]].add(names[a])
    order: list[str] = []
    while deps:
        ready = sorted(n for n, d in deps.items() if d <= set(order))
        order += ready
        for n in ready:
            deps.pop(n)
    return order


def timed(cmd: list[str], ws: Path) -> tuple[float, float, float, str]:
    """Wall seconds, peak RSS (GB), CPU seconds (user + sys of the command and its children)
    and stdout. CPU seconds are the figure to compare on a machine whose disk stalls: a cold
    `import torch` can wait a minute for pages without using the CPU."""
    t0 = time.time()
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=ws, capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024 ** 2
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", r.stderr).group(1)) for k in ("User", "System"))
    return wall, rss, cpu, r.stdout


def stage_times(ws: Path, ran: list[str]) -> list[dict]:
    """Each stage's own wall and CPU seconds, from the timings file it wrote (in run order)."""
    rows = []
    for stage in ran:
        f = ws / "results" / "timings" / f"{stage}.json"
        t = json.loads(f.read_text()) if f.exists() else {}
        rows.append({"stage": stage, "own_wall_s": t.get("wall_seconds") and round(t["wall_seconds"], 1),
                     "own_cpu_s": t.get("cpu_seconds") and round(t["cpu_seconds"], 1)})
        print(f"  {stage:22s} {rows[-1]['own_wall_s']} s  cpu {rows[-1]['own_cpu_s']} s", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, help="existing empty folder to use (default: a temp dir)")
    ap.add_argument("--smoke", action="store_true", help="smoke-sized params instead of the defaults")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--experiment", action="append", metavar="KEY=VALUE",
                    help="time `dvc exp run -S KEY=VALUE` after the run (repeatable)")
    ap.add_argument("--stage-by-stage", action="store_true",
                    help="run the study one `dvc repro --single-item` per stage (peak RSS per stage; the "
                         "total then includes one DVC start-up per stage)")
    args = ap.parse_args()
    ws = args.workspace or Path(tempfile.mkdtemp(prefix="askshift-bench-"))
    make_workspace(ws, SMOKE if args.smoke else {})
    if args.stage_by_stage:
        rows, total, total_cpu = [], 0.0, 0.0
        for stage in stage_order(ws):
            wall, rss, cpu, _ = timed(["dvc", "repro", "--single-item", stage], ws)
            total += wall
            total_cpu += cpu
            rows.append({"stage": stage, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                         "peak_rss_gb": round(rss, 2)})
            print(f"{stage:22s} {wall:7.1f} s  cpu {cpu:7.1f} s   peak RSS {rss:5.2f} GB", flush=True)
        peak = max(r["peak_rss_gb"] for r in rows)
    else:
        total, peak, total_cpu, out = timed(["dvc", "repro"], ws)
        rows = stage_times(ws, re.findall(r"Running stage '([^']+)'", out))
    print(f"{'full run':22s} {total:7.1f} s  cpu {total_cpu:7.1f} s   peak RSS {peak:5.2f} GB; stages' own time "
          f"{sum(r['own_wall_s'] or 0 for r in rows) if not args.stage_by_stage else total:.1f} s", flush=True)
    noop = []
    for _ in range(3):
        t0 = time.time()
        subprocess.run(["dvc", "repro"], cwd=ws, capture_output=True, check=True)
        noop.append(time.time() - t0)
    print(f"no-op dvc repro: {min(noop):.2f} s (best of 3)")
    subprocess.run(["git", "add", "-A"], cwd=ws, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "benchmark run"], cwd=ws, check=True, capture_output=True)
    experiments = []
    for kv in args.experiment or ["finetune.dataset=debiased"]:
        wall, rss, cpu, out = timed(["dvc", "exp", "run", "-S", kv], ws)
        ran = re.findall(r"Running stage '([^']+)'", out)
        own = stage_times(ws, ran)
        experiments.append({"set": kv, "wall_s": round(wall, 1), "share_of_run": round(wall / total, 3),
                            "cpu_s": round(cpu, 1), "cpu_share_of_run": round(cpu / total_cpu, 3),
                            "stages": own, "peak_rss_gb": round(rss, 2), "log": out[-20000:]})
        print(f"dvc exp run -S {kv}: {wall:.1f} s = {wall / total:.1%} of the full run (cpu {cpu:.1f} s = "
              f"{cpu / total_cpu:.1%}); stages' own time {sum(r['own_wall_s'] or 0 for r in own):.1f} s", flush=True)
        # back to the committed run, by content: `dvc exp run` rewrites git's index as well
        subprocess.run(["git", "read-tree", "HEAD"], cwd=ws, check=True)
        subprocess.run(["git", "checkout-index", "-f", "-a"], cwd=ws, check=True)
        subprocess.run(["dvc", "checkout", "--force"], cwd=ws, check=True, capture_output=True)
    result = {"workspace": str(ws), "params": "smoke" if args.smoke else "default",
              "mode": "stage by stage" if args.stage_by_stage else "one dvc repro",
              "stages": rows, "total_s": round(total, 1), "total_cpu_s": round(total_cpu, 1),
              "peak_rss_gb": round(peak, 2),
              "noop_repro_s": round(min(noop), 2),
              "experiments": experiments}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
