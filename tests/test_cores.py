"""Queue workers' share of the cores (askshift.study.cores), on a fake /proc."""
from __future__ import annotations

import os
import sys

import pytest

from askshift.study import cores


def test_worker_cores_slices_and_round_robin():
    assert cores.worker_cores([0, 1], 1, 2) == [0] and cores.worker_cores([0, 1], 2, 2) == [1]
    assert cores.worker_cores(list(range(8)), 2, 3) == [3, 4]
    eight = [cores.worker_cores(list(range(8)), k, 3) for k in (1, 2, 3)]
    assert sorted(c for s in eight for c in s) == list(range(8))          # a partition
    assert [cores.worker_cores([0, 1], k, 4) for k in (1, 2, 3, 4)] == [[0], [1], [0], [1]]
    with pytest.raises(ValueError, match="worker 3 of 2"):
        cores.worker_cores([0, 1], 3, 2)


def _proc(root, pid, ppid, *argv):
    d = root / str(pid)
    d.mkdir()
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (d / "stat").write_text(f"{pid} (py thon) S {ppid} 0 0")


@pytest.fixture
def fake_proc(tmp_path, monkeypatch):
    monkeypatch.setattr(cores, "PROC", tmp_path)
    return tmp_path


def test_queue_worker_found_through_the_process_tree(fake_proc):
    dvc = "/venv/bin/dvc"
    _proc(fake_proc, 10, 1, "python", dvc, "exp", "queue-worker", "dvc-exp-35a559-1@localhost", "--clean")
    _proc(fake_proc, 11, 1, "python", dvc, "exp", "queue-worker", "dvc-exp-35a559-2@localhost")
    _proc(fake_proc, 12, 1, "python", dvc, "exp", "queue-worker", "dvc-exp-ffffff-1@localhost")  # another repo
    _proc(fake_proc, 20, 11, "/bin/sh", "-c", "python -m stages.finetune")
    _proc(fake_proc, 21, 20, "python", "-m", "stages.finetune")
    _proc(fake_proc, 30, 1, "python", "-m", "stages.finetune")            # a plain `dvc repro`
    assert cores.queue_worker(21) == ("dvc-exp-35a559", 2)
    assert cores.queue_worker(30) is None
    assert cores.queue_workers("dvc-exp-35a559") == [1, 2]


def test_pin_outside_a_queue_changes_nothing(fake_proc):
    before = __import__("os").sched_getaffinity(0)
    assert cores.pin_queue_worker() == {}
    assert __import__("os").sched_getaffinity(0) == before


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
    assert stage.blas_threads(with_compute(1)) == 1 and stage.blas_threads(with_compute(3)) == 3
    assert stage.blas_threads(with_compute(0)) == 5
    assert stage.blas_threads(Section({"seed": 0}, stage="t")) == 1 and stage.blas_threads(None) == 1
    monkeypatch.delitem(sys.modules, "torch", raising=False)      # leave this process's torch threads alone
    before = {p["filepath"]: p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
    try:
        assert stage.set_threads(with_compute(1)) == {"blas_threads": 1, **cores.PINNED}
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    finally:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=max(before.values(), default=None), user_api="blas")


def test_timing_line_names_the_threads_and_cores_a_stage_had():
    from askshift.study.stage import timing_line

    alone = timing_line("finetune", "2026-12-07T20:00:00+0000", 86.24, 170.3, {"blas_threads": 2, "torch_threads": 2})
    assert alone == "finetune: 86.2 s wall, 170.3 s CPU, started 2026-12-07T20:00:00+0000, torch threads 2, BLAS threads 2"
    queued = timing_line("finetune", "2026-12-07T20:00:00+0000", 1.0, 2.0,
                         {"blas_threads": 2, "torch_threads": 2, "queue_workers": 2, "queue_worker": 2, "cores": [1]})
    assert queued.endswith(", torch threads 2, BLAS threads 2, queue worker 2 of 2 on cores 1")
    assert timing_line("report", "t", 1.0, 1.0, {"blas_threads": 1}).endswith("started t, BLAS threads 1")
