"""Spreading independent runs (askshift/study/fanout.py): settings, order, isolation, errors."""
import os

import pytest

from askshift.study import fanout


def square_and_where(x: int) -> tuple[int, int, list[int]]:
    """A job: its result, the process it ran in and the cores it could use."""
    return x * x, os.getpid(), sorted(os.sched_getaffinity(0))


def fail_on_three(x: int) -> int:
    if x == 3:
        raise RuntimeError("job 3 failed")
    return x


def test_settings_are_checked_and_named():
    assert fanout.settings({}) == ("serial", 0, {})
    assert fanout.settings({"ASKSHIFT_FANOUT": "slurm", "ASKSHIFT_WORKERS": "8",
                            "ASKSHIFT_SLURM": "slurm_partition=gpu,timeout_min=60"}) == (
        "slurm", 8, {"slurm_partition": "gpu", "timeout_min": 60})
    with pytest.raises(fanout.FanoutError, match=r"ASKSHIFT_FANOUT='threads': expected one of serial, processes"):
        fanout.settings({"ASKSHIFT_FANOUT": "threads"})
    with pytest.raises(fanout.FanoutError, match=r"ASKSHIFT_WORKERS='two'"):
        fanout.settings({"ASKSHIFT_WORKERS": "two"})
    with pytest.raises(fanout.FanoutError, match=r"ASKSHIFT_SLURM: 'partition' is not key=value"):
        fanout.settings({"ASKSHIFT_SLURM": "partition"})


def test_visible_gpus_follow_cuda_visible_devices():
    assert fanout.visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2", "3"]
    assert fanout.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_serial_runs_in_this_process(tmp_path):
    out = fanout.run_all(square_and_where, [1, 2, 3], tmp_path, env={})
    assert [r[0] for r in out] == [1, 4, 9] and {r[1] for r in out} == {os.getpid()}


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="core pinning needs Linux")
def test_processes_keep_job_order_and_split_the_cores(tmp_path):
    env = {"ASKSHIFT_FANOUT": "processes", "ASKSHIFT_WORKERS": "2", "CUDA_VISIBLE_DEVICES": ""}  # CPU workers
    out = fanout.run_all(square_and_where, list(range(6)), tmp_path, env=env)
    assert [r[0] for r in out] == [x * x for x in range(6)]
    assert os.getpid() not in {r[1] for r in out}
    mine = sorted(os.sched_getaffinity(0))
    by_worker = {r[1]: r[2] for r in out}
    if len(mine) >= 2 and len(by_worker) == 2:   # two workers: disjoint halves of the cores
        a, b = by_worker.values()
        assert not set(a) & set(b) and sorted(a + b) == mine


def test_a_failed_job_fails_the_fanout(tmp_path):
    with pytest.raises(RuntimeError, match="job 3 failed"):
        fanout.run_all(fail_on_three, [1, 2, 3], tmp_path, env={"ASKSHIFT_FANOUT": "processes", "ASKSHIFT_WORKERS": "2"})


def test_submitit_local_runs_the_slurm_path_here(tmp_path):
    pytest.importorskip("submitit")
    env = {"ASKSHIFT_FANOUT": "submitit-local", "ASKSHIFT_WORKERS": "2", "ASKSHIFT_SLURM": "timeout_min=5"}
    out = fanout.run_all(square_and_where, [3, 1, 2], tmp_path, env=env)
    assert [r[0] for r in out] == [9, 1, 4] and os.getpid() not in {r[1] for r in out}
    assert any(tmp_path.rglob("*_log.out"))   # submitit's per-job logs
    with pytest.raises(Exception, match="job 3 failed"):
        fanout.run_all(fail_on_three, [1, 3], tmp_path, env=env)
