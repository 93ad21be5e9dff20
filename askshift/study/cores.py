"""Which CPU cores a stage computes on when several runs share the machine.

The number of threads is a param (`compute.threads`): 1 and 2 torch threads train other weights,
so a stage gets the same count whether it runs alone, beside another clone's run, or in a
`dvc queue start -j N` worker. The machine's load may change only *when* and *where* those
threads run. On 2 cores (benchmarks/bench_threads.py) two threads squeezed onto one core take
1.3x the time they take on two cores, so two experiments that split the cores between them
lose a third of their speed. Cores are therefore claimed: a stage process claims one core per
thread it runs (one lock file per core, in a folder shared by this user's runs on the machine),
waits while they are taken, pins all its threads to them, and gives them back when its work is
done; the OS drops the locks of a process that dies, so a killed stage blocks no one. Queued
experiments then take turns on a small machine and run side by side on disjoint cores on a big
one, with bitwise the results of a serial run (pinning changes no result; the thread count
would).

Torch-free; where the OS lacks ``fcntl`` or ``sched_setaffinity`` (not Linux) claiming is a no-op.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:          # Windows
    fcntl = None

LOCKS_ENV = "ASKSHIFT_CORE_LOCKS"   # folder of the per-core lock files (tests use their own)
POLL_SECONDS = 0.2


def usable_cores() -> int:
    """How many cores this process may run on: its affinity mask (its claimed cores while it
    holds a claim) where the OS has one, else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_cores(cores: list[int], k: int, n: int) -> list[int]:
    """Worker k's (1-based) share of ``cores`` among ``n`` workers (the fan-out's processes):
    the k-th of n contiguous slices, or one core round robin when there are more workers than
    cores."""
    if not 1 <= k <= n:
        raise ValueError(f"worker {k} of {n}: expected 1 <= k <= n")
    if n >= len(cores):
        return [cores[(k - 1) % len(cores)]]
    bounds = [round(i * len(cores) / n) for i in range(n + 1)]
    return cores[bounds[k - 1]:bounds[k]]


def locks_dir() -> Path:
    """Where the per-core lock files live: ``$ASKSHIFT_CORE_LOCKS``, else one folder per user in
    the system's temporary folder (every clone and queue worker of the user on this machine)."""
    folder = os.environ.get(LOCKS_ENV)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(folder) if folder else Path(tempfile.gettempdir()) / f"askshift-cores-{uid}"


def _lock(path: Path, blocking: bool) -> int | None:
    """An open descriptor holding an exclusive lock on ``path``, or None when another process
    holds it (``blocking=False``)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Run the block while holding an exclusive lock on ``path`` (created if missing): one process
    of the machine at a time; a no-op where the OS lacks ``fcntl``."""
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _lock(path, blocking=True)
    try:
        yield
    finally:
        os.close(fd)


def _try_claim(folder: Path, mine: list[int], n: int, label: str) -> tuple[dict[int, int], list[str]]:
    """``n`` of the cores ``mine`` as ``{core: locked descriptor}``, all or none: one claimer at
    a time (``claim.lock``), so two processes never hold part of what each other needs. With
    none: who holds the busy cores (as their holders wrote it), for the waiting message."""
    held: dict[int, int] = {}
    busy: list[str] = []
    with exclusive(folder / "claim.lock"):
        for core in mine:
            path = folder / f"core-{core}"
            fd = _lock(path, blocking=False)
            if fd is None:
                busy.append(f"core {core}: {path.read_text().strip()}")
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}: {label} in {os.getcwd()}\n".encode(), 0)
            held[core] = fd
            if len(held) == n:
                return held, []
        for fd in held.values():
            os.close(fd)
        return {}, busy


def _pin(cores) -> None:
    """Every thread of this process onto ``cores`` (threads started later inherit it)."""
    tasks = Path("/proc/self/task")
    tids = [int(t) for t in os.listdir(tasks)] if tasks.is_dir() else [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cores)
        except OSError:      # a thread that ended meanwhile
            pass


@contextmanager
def claim(n: int, label: str) -> Iterator[dict]:
    """Hold ``n`` of this process's cores (at most all of them) while the block runs: wait
    until they are free, pin every thread to them, then give them back and restore the
    affinity. Yields ``{"cores": [...], "waited_seconds": s}`` ({} where claiming is a no-op).
    ``label`` names the claimer in the waiting message of the others."""
    if fcntl is None or not hasattr(os, "sched_setaffinity"):
        yield {}
        return
    before = os.sched_getaffinity(0)
    mine = sorted(before)
    n = max(1, min(n, len(mine)))
    folder = locks_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    t0, told = time.monotonic(), False
    while True:
        held, busy = _try_claim(folder, mine, n, label)
        if held:
            break
        if not told:
            print(f"{label}: waiting for {n} of cores {','.join(map(str, mine))} "
                  f"({'; '.join(busy) or 'held by another run'})", file=sys.stderr, flush=True)
            told = True
        time.sleep(POLL_SECONDS)
    waited = round(time.monotonic() - t0, 2)
    try:
        _pin(sorted(held))
        yield {"cores": sorted(held), "waited_seconds": waited}
    finally:
        _pin(before)
        for fd in held.values():
            os.close(fd)
