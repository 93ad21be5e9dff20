"""Claimed cores (askshift.study.cores): runs that share the machine take turns on its cores."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from askshift.study import cores

ROOT = Path(__file__).resolve().parents[1]


def test_worker_cores_slices_and_round_robin():
    assert cores.worker_cores([0, 1], 1, 2) == [0] and cores.worker_cores([0, 1], 2, 2) == [1]
    assert cores.worker_cores(list(range(8)), 2, 3) == [3, 4]
    eight = [cores.worker_cores(list(range(8)), k, 3) for k in (1, 2, 3)]
    assert sorted(c for s in eight for c in s) == list(range(8))          # a partition
    assert [cores.worker_cores([0, 1], k, 4) for k in (1, 2, 3, 4)] == [[0], [1], [0], [1]]
    with pytest.raises(ValueError, match="worker 3 of 2"):
        cores.worker_cores([0, 1], 3, 2)


HOLD = """
import os, sys, time
from askshift.study import cores
with cores.claim(int(sys.argv[1]), "holder") as got:
    print(",".join(map(str, got["cores"])), flush=True)
    if sys.argv[2] == "die":
        os._exit(0)                      # killed with its cores claimed: the OS drops the locks
    time.sleep(float(sys.argv[2]))
"""

needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux core affinity")


@pytest.fixture
def locks(tmp_path, monkeypatch):
    monkeypatch.setenv(cores.LOCKS_ENV, str(tmp_path / "locks"))
    return tmp_path / "locks"


def hold(n: int, seconds: str) -> tuple[subprocess.Popen, list[int]]:
    """Another process holding ``n`` cores; returns once it holds them."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(n), seconds], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env=os.environ.copy())
    return proc, [int(c) for c in proc.stdout.readline().split(",")]


@needs_affinity
def test_claim_pins_to_its_cores_and_gives_them_back(locks):
    before = os.sched_getaffinity(0)
    with cores.claim(1, "test") as got:
        assert len(got["cores"]) == 1 and os.sched_getaffinity(0) == set(got["cores"])
        assert got["waited_seconds"] < 1
        assert "test in" in (locks / f"core-{got['cores'][0]}").read_text()   # the waiting message shows it
    assert os.sched_getaffinity(0) == before
    with cores.claim(999, "test") as got:                    # at most every core this process may use
        assert set(got["cores"]) == before


@needs_affinity
def test_a_claim_waits_for_a_holder_and_names_it(locks, capsys):
    proc, held = hold(len(os.sched_getaffinity(0)), "1.5")
    with cores.claim(1, "test") as got:
        assert got["waited_seconds"] > 0.5 and proc.poll() is not None   # only after the holder ended
    proc.wait()
    err = capsys.readouterr().err
    assert "test: waiting for 1 of cores" in err and f"core {held[0]}: pid {proc.pid}: holder in {ROOT}" in err


@needs_affinity
def test_a_killed_holder_blocks_no_one(locks):
    proc, _ = hold(len(os.sched_getaffinity(0)), "die")
    proc.wait()
    with cores.claim(len(os.sched_getaffinity(0)), "test") as got:
        assert got["waited_seconds"] < 1


@needs_affinity
@pytest.mark.skipif(len(getattr(os, "sched_getaffinity", lambda _: [])(0)) < 2, reason="needs 2 cores")
def test_claims_on_disjoint_cores_run_side_by_side_and_all_or_nothing(locks):
    proc, held = hold(1, "1.5")
    with cores.claim(1, "test") as got:                       # a free core: no wait
        assert got["waited_seconds"] < 1 and not set(got["cores"]) & set(held)
    with cores.claim(len(os.sched_getaffinity(0)), "test") as got:   # all of them: waits for the holder
        assert proc.poll() is not None
    proc.wait()


def test_usable_cores_follows_the_affinity_mask_or_the_machine(monkeypatch):
    if hasattr(os, "sched_getaffinity"):
        assert cores.usable_cores() == len(os.sched_getaffinity(0))
        monkeypatch.delattr(os, "sched_getaffinity")    # e.g. macOS: no affinity mask
    monkeypatch.setattr(os, "cpu_count", lambda: 7)
    assert cores.usable_cores() == 7


def test_blas_threads_follow_params_never_the_machine_load(monkeypatch):
    """scikit-learn's solvers give other results with 1 and 2 BLAS threads (split temperatures
    1e-8 apart), so the count is a param: compute.threads where the stage declares it (0 = the
    cores this process may use), else 1; another pipeline running beside it changes nothing."""
    from threadpoolctl import threadpool_info

    from askshift.study import stage
    from askshift.study.config import Section

    monkeypatch.setattr(cores, "usable_cores", lambda: 5)
    with_compute = lambda n: Section({"compute": {"threads": n, "device": "cpu", "amp": "off"}}, stage="t")
    assert stage.stage_threads(with_compute(1)) == 1 and stage.stage_threads(with_compute(3)) == 3
    assert stage.stage_threads(with_compute(0)) == 5
    assert stage.stage_threads(Section({"seed": 0}, stage="t")) == 1 and stage.stage_threads(None) == 1
    import torch

    torch_threads = []            # leave this process's torch threads alone
    monkeypatch.setattr(torch, "set_num_threads", torch_threads.append)
    monkeypatch.setattr(torch, "get_num_threads", lambda: torch_threads[-1])
    for var in stage.THREAD_VARS:                          # restored after the test
        monkeypatch.setenv(var, "7")
    before = {p["filepath"]: p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
    try:
        assert stage.set_threads(with_compute(1)) == {"blas_threads": 1} and torch_threads == [1]
        assert stage.torch_threads() == {"torch_threads": 1}
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
        # the libraries a stage loads after the claim (torch too) read their pools from the environment
        assert [os.environ[v] for v in stage.THREAD_VARS] == ["1"] * len(stage.THREAD_VARS)
        assert stage.set_threads(Section({"seed": 0}, stage="t")) == {"blas_threads": 1}
    finally:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=max(before.values(), default=None), user_api="blas")


def test_timing_line_names_the_threads_and_cores_a_stage_had():
    from askshift.study.stage import timing_line

    alone = timing_line("finetune", "2026-12-07T20:00:00+0000", 86.24, 170.3, {"blas_threads": 2, "torch_threads": 2})
    assert alone == "finetune: 86.2 s wall, 170.3 s CPU, started 2026-12-07T20:00:00+0000, torch threads 2, BLAS threads 2"
    queued = timing_line("finetune", "2026-12-07T20:00:00+0000", 1.0, 2.0,
                         {"blas_threads": 2, "torch_threads": 2, "cores": [0, 1], "waited_seconds": 85.24})
    assert queued.endswith(", torch threads 2, BLAS threads 2, cores 0,1 (waited 85.2 s for them)")
    assert "waited" not in timing_line("x", "t", 1.0, 1.0, {"blas_threads": 1, "cores": [0], "waited_seconds": 0.01})
    assert timing_line("report", "t", 1.0, 1.0, {"blas_threads": 1}).endswith("started t, BLAS threads 1")


def test_bench_queue_reads_the_timing_lines_back():
    """benchmarks/bench_queue.py splits an experiment's time by these lines: a format change
    must not leave it silently counting zero stages."""
    import importlib.util

    from askshift.study.stage import timing_line

    spec = importlib.util.spec_from_file_location("bench_queue", ROOT / "benchmarks" / "bench_queue.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    lines = [timing_line("finetune", "2026-12-07T20:00:00+0000", 86.24, 170.3,
                         {"blas_threads": 2, "torch_threads": 2, "cores": [0, 1], "waited_seconds": 3.0}),
             timing_line("report_data", "2026-12-07T20:01:30+0000", 5.0, 5.4, {"blas_threads": 1})]
    got = bench.stage_times("Running stage 'finetune':\n" + "\n".join(lines) + "\nUpdating lock file\n")
    assert got["stage"].tolist() == ["finetune", "report_data"]
    assert got["wall"].tolist() == [86.2, 5.0] and got["cpu"].tolist() == [170.3, 5.4]
    assert got["start"].diff().iloc[1] == 90.0 and got["waited"].tolist() == [3.0, 0.0]
