"""Where a stage's independent training runs execute: one after the other in the stage's own
process (the default), in local worker processes (one per GPU, or one per share of the CPU
cores), or as SLURM jobs through submitit (the engine the paper's own code ran on).

Each run is seeded by its identity and writes only its own files, so spreading the runs changes
no output: on CPU the files are bitwise those of the serial run (``compute.threads`` fixes the
thread count; core pinning does not change results, benchmarks/bench_threads.py). That is why
the choice lives in the environment, not in params.yaml: a param would put it in DVC's cache key
and re-run every training stage for identical results.

    ASKSHIFT_FANOUT   serial (default) | processes | slurm | submitit-local
    ASKSHIFT_WORKERS  processes, submitit-local: runs at once (default: one per visible GPU, else 1);
                      slurm: the job array's parallelism (default: all)
    ASKSHIFT_SLURM    slurm: comma-separated key=value for submitit's update_parameters, e.g.
                      slurm_partition=gpu,timeout_min=120,gpus_per_node=1,cpus_per_task=8

``submitit-local`` runs the SLURM code path on this machine with submitit's local executor (a
check of a set-up, and how the tests cover it). Torch-free: the workers import torch themselves,
after their GPU or cores are set.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from askshift.study import cores

MODES = ("serial", "processes", "slurm", "submitit-local")
ENV_MODE, ENV_WORKERS, ENV_SLURM = "ASKSHIFT_FANOUT", "ASKSHIFT_WORKERS", "ASKSHIFT_SLURM"


class FanoutError(ValueError):
    """A bad fan-out setting, named with its variable and the valid values."""


def settings(env: dict | None = None) -> tuple[str, int, dict]:
    """``(mode, workers, slurm options)`` from the environment, checked."""
    env = os.environ if env is None else env
    mode = env.get(ENV_MODE, "serial") or "serial"
    if mode not in MODES:
        raise FanoutError(f"{ENV_MODE}={mode!r}: expected one of {', '.join(MODES)}")
    raw = env.get(ENV_WORKERS, "") or "0"
    if not raw.isdigit():
        raise FanoutError(f"{ENV_WORKERS}={raw!r}: expected a whole number of workers (0: the default)")
    opts = {}
    for item in filter(None, (env.get(ENV_SLURM, "") or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FanoutError(f"{ENV_SLURM}: {item!r} is not key=value (e.g. slurm_partition=gpu,timeout_min=60)")
        value = value.strip()
        opts[key.strip()] = int(value) if value.isdigit() else value
    return mode, int(raw), opts


def visible_gpus(env: dict | None = None) -> list[str]:
    """The GPUs a worker may be given: CUDA_VISIBLE_DEVICES, else those nvidia-smi lists
    (without importing torch, which would initialise CUDA in this process)."""
    env = os.environ if env is None else env
    if env.get("CUDA_VISIBLE_DEVICES") is not None:
        return [g for g in env["CUDA_VISIBLE_DEVICES"].split(",") if g.strip() and g.strip() != "-1"]
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return []
    r = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True)
    return [line.strip() for line in r.stdout.splitlines() if line.strip()] if r.returncode == 0 else []


# ---------------------------------------------------------------- local worker processes
_SLOT: dict = {}


def _init_worker(slots, gpus: list[str], n: int) -> None:
    """Runs in each worker before any task: claim a slot, then its GPU or its share of the cores."""
    k = slots.get()
    _SLOT["k"] = k
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[k % len(gpus)]
    elif hasattr(os, "sched_setaffinity"):
        mine = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cores.worker_cores(mine, k + 1, n))


def _processes(fn: Callable, jobs: Sequence, workers: int, env: dict | None) -> list:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    gpus = visible_gpus(env)
    n = min(len(jobs), workers or max(1, len(gpus)))
    ctx = mp.get_context("spawn")   # a fresh interpreter: no CUDA or OpenMP state inherited
    slots = ctx.Manager().Queue()
    for k in range(n):
        slots.put(k)
    # a spawned worker imports the stage module, and torch's OpenMP, before its initializer pins
    # it to its cores: OpenMP then sees all cores and busy-waits, its threads spinning on one core
    # (measured: 12 smoke runs 30x slower). Passive waiting changes no result.
    old = os.environ.get("OMP_WAIT_POLICY")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                                 initargs=(slots, gpus, n)) as pool:
            return list(pool.map(fn, jobs))
    finally:
        if old is None:
            os.environ.pop("OMP_WAIT_POLICY", None)
        else:
            os.environ["OMP_WAIT_POLICY"] = old


# ---------------------------------------------------------------- submitit
def _submitit(fn: Callable, jobs: Sequence, workers: int, opts: dict, folder: Path, local: bool) -> list:
    try:
        import submitit
    except ImportError:
        raise FanoutError(f"{ENV_MODE}={'submitit-local' if local else 'slurm'} needs submitit "
                          "(`pip install submitit`)") from None
    executor = submitit.AutoExecutor(folder=str(folder), cluster="local" if local else "slurm")
    if opts:
        executor.update_parameters(**opts)
    if not local:
        if workers:
            executor.update_parameters(slurm_array_parallelism=workers)
        return [j.result() for j in executor.map_array(fn, list(jobs))]
    # the local executor starts every job at once: keep `workers` running
    results: dict[int, Any] = {}
    running: dict[int, Any] = {}
    todo = list(enumerate(jobs))
    while todo or running:
        while todo and len(running) < max(1, workers):
            i, job = todo.pop(0)
            running[i] = executor.submit(fn, job)
        done = [i for i, j in running.items() if j.done()]
        for i in done:
            results[i] = running.pop(i).result()   # raises the job's own error, with its traceback
        if not done:
            time.sleep(0.2)
    return [results[i] for i in range(len(jobs))]


def run_all(fn: Callable[[Any], Any], jobs: Sequence, scratch: Path, env: dict | None = None) -> list:
    """``[fn(job) for job in jobs]``, spread as the environment says; results in job order.
    ``fn`` must be a module-level function and ``jobs`` picklable. ``scratch`` holds submitit's
    logs (a folder nobody else writes)."""
    mode, workers, opts = settings(env)
    if mode == "serial" or len(jobs) <= 1:
        return [fn(job) for job in jobs]
    print(f"fan-out: {len(jobs)} runs, {mode}" + (f", {workers} at once" if workers else ""), file=sys.stderr,
          flush=True)
    if mode == "processes":
        return _processes(fn, jobs, workers, env)
    return _submitit(fn, jobs, workers, opts, Path(scratch), local=mode == "submitit-local")
