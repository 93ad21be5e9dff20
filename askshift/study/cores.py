"""Which CPU cores a stage process may use when `dvc queue start -j N` runs N experiments at once.

Each queue worker's stage processes are pinned to their own share of the cores (worker k of N
gets the k-th of N equal slices; with more workers than cores, workers share cores round
robin). The number of torch threads does not change: it is `compute.threads`, a param, because
it changes the trained weights, so a queued experiment gives the bitwise results of the same
experiment run alone. What changes is that N workers no longer run N x cores spinning threads
on the same cores: OpenMP sees more threads than cores in its affinity mask and waits politely
(libgomp's throttled spin) instead of busy-waiting against the other workers.

This must run before torch (and its OpenMP runtime) is imported: ``stages/__init__.py`` calls
:func:`pin_queue_worker` first thing. Outside a queue, or with one worker, nothing changes.
Torch-free; Linux only (``/proc``, ``sched_setaffinity``); elsewhere a no-op.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

WORKER = re.compile(r"exp\x00queue-worker\x00(dvc-exp-[0-9a-f]+)-(\d+)@")
PROC = Path("/proc")


def _cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])   # the name may hold spaces and ')'
    except (OSError, ValueError, IndexError):
        return 0


def queue_worker(pid: int | None = None) -> tuple[str, int] | None:
    """``(queue, k)`` when ``pid`` (default: this process) runs under the k-th worker (1-based)
    of a DVC experiment queue, from the nearest `dvc exp queue-worker` ancestor; else None."""
    pid = pid or os.getpid()
    for _ in range(64):                      # a bounded walk up the process tree
        m = WORKER.search(_cmdline(pid))
        if m:
            return m.group(1), int(m.group(2))
        pid = _parent(pid)
        if pid <= 1:
            return None
    return None


def queue_workers(queue: str) -> list[int]:
    """The worker numbers of ``queue`` alive now."""
    out = set()
    for d in PROC.iterdir() if PROC.is_dir() else []:
        if d.name.isdigit():
            m = WORKER.search(_cmdline(int(d.name)))
            if m and m.group(1) == queue:
                out.add(int(m.group(2)))
    return sorted(out)


def worker_cores(cores: list[int], k: int, n: int) -> list[int]:
    """Worker k's (1-based) share of ``cores`` among ``n`` workers: the k-th of n contiguous
    slices, or one core round robin when there are more workers than cores."""
    if not 1 <= k <= n:
        raise ValueError(f"worker {k} of {n}: expected 1 <= k <= n")
    if n >= len(cores):
        return [cores[(k - 1) % len(cores)]]
    bounds = [round(i * len(cores) / n) for i in range(n + 1)]
    return cores[bounds[k - 1]:bounds[k]]


def usable_cores() -> int:
    """How many cores this process may run on: its affinity mask (a pinned queue worker's share)
    where the OS has one, else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pin_queue_worker() -> dict:
    """Pin this process to its queue worker's share of the cores (see the module docstring).
    Returns what it did, for the stage's timings file."""
    if not hasattr(os, "sched_setaffinity"):
        return {}
    found = queue_worker()
    if found is None:
        return {}
    queue, k = found
    n = max(queue_workers(queue) + [k])    # `-j N` starts workers 1..N together
    if n < 2:
        return {"queue_workers": n}
    share = worker_cores(sorted(os.sched_getaffinity(0)), k, n)
    os.sched_setaffinity(0, share)
    return {"queue_workers": n, "queue_worker": k, "cores": share}


PINNED: dict = {}   # what pin_queue_worker did in this process (stages/__init__.py fills it)
