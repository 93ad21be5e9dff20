"""The one convention of the stage scripts in ``stages/``.

A stage script is::

    def main(cfg):                       # cfg: the params this stage declares in dvc.yaml
        from askshift.study import step  # imported here: after the stage has claimed its cores
        outputs = step.run(cfg)          # one function of the study layer does the work
        write_outputs(outputs)           # tables, metrics and text, each written atomically
        # optionally: return {"train_seconds": ...}, more timings for results/timings/<name>.json

    if __name__ == "__main__":
        run_stage("name", main)

:func:`run_stage` hands ``main`` the params the stage declares, as the `params` stage validated
them (:mod:`askshift.study.config`), and turns a bad input into one line on stderr and exit status 2 (no traceback); a :class:`StageFailed` is
reported the same way with exit status 1.

The stage's cores are claimed (:mod:`askshift.study.cores`) before its library is imported:
importing torch, timm and pandas takes seconds of CPU, which would otherwise be taken from the
stage that holds the cores (tests/test_architecture.py keeps the scripts' top level light).
"""
from __future__ import annotations

import atexit
import os
import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from askshift.io import atomic_path, write_json, write_text
from askshift.study import cores
from askshift.study.config import ParamsError, stage_config
from askshift.study.layout import timings_file

if TYPE_CHECKING:
    import pandas as pd


class InputError(ValueError):
    """Bad input found by a stage (missing data, inconsistent files); one line, exit status 2."""


class StageFailed(RuntimeError):
    """The stage could not finish (e.g. a source could not be fetched, a report part raised);
    its message says what failed and what to do; exit status 1."""


class Timer:
    """Seconds since construction, rounded for logs."""

    def __init__(self):
        self.t0 = time.time()

    def __call__(self) -> float:
        return round(time.time() - self.t0, 2)


def write_outputs(outputs: dict[str | Path, Any]) -> None:
    """Write each output by the suffix of its path: ``.csv`` / ``.parquet`` from a DataFrame,
    ``.json`` from a dict or list, anything else from a string. Each file is atomic."""
    for path, obj in outputs.items():
        path = Path(path)
        if path.suffix == ".csv":
            with atomic_path(path) as tmp:
                obj.to_csv(tmp, index=False, float_format=getattr(obj, "attrs", {}).get("float_format", "%.6f"))
        elif path.suffix == ".parquet":
            with atomic_path(path) as tmp:
                obj.to_parquet(tmp, index=False)
        elif path.suffix == ".json":
            write_json(path, obj)
        elif isinstance(obj, str):
            write_text(path, obj)
        else:
            raise TypeError(f"no writer for {path} ({type(obj).__name__})")


def table(frame: pd.DataFrame, float_format: str = "%.6f") -> pd.DataFrame:
    """``frame`` tagged with the float format its CSV is written with."""
    frame.attrs["float_format"] = float_format
    return frame


AUDIT_ENV = "ASKSHIFT_AUDIT_READS"
# Thread pools read from the environment when a library loads: OpenMP (torch's intra-op
# threads), OpenBLAS (numpy, scipy), MKL and BLIS.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def stage_threads(cfg) -> int:
    """Threads of a stage, and the cores it claims (:mod:`askshift.study.cores`): ``compute.threads``
    where the stage declares it (0: every core this process may use), else 1. A param, never the
    machine's load: torch's weights and scikit-learn's solvers depend on the thread count (the
    split step's temperatures move by 1e-8 between 1 and 2 BLAS threads), so a stage run beside
    another pipeline, or in a queue, must get the same count as alone. Runs share the machine
    by taking turns on claimed cores, not by thread count."""
    if cfg is not None and "compute" in cfg:
        return cfg.compute.threads or cores.usable_cores()
    return 1


def set_threads(cfg) -> dict:
    """Threads of this stage process, from params only (:func:`stage_threads`: 1 and 2 threads
    train other weights, so they are a param, never guessed). Called after the claim and before
    the stage imports its library: the environment sets the pools of the libraries loaded later
    (torch's intra-op threads through OpenMP's), threadpoolctl and torch those loaded already.
    Returns what was set, for the timings file."""
    from threadpoolctl import threadpool_limits

    n = stage_threads(cfg)
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    threadpool_limits(limits=n, user_api="blas")
    if "torch" in sys.modules and cfg is not None and "compute" in cfg and cfg.compute.threads:
        sys.modules["torch"].set_num_threads(cfg.compute.threads)
    return {"blas_threads": n}


def torch_threads() -> dict:
    """torch's intra-op threads, where the stage used torch (for its timing line)."""
    return {"torch_threads": sys.modules["torch"].get_num_threads()} if "torch" in sys.modules else {}


def _audit_reads(name: str, folder: str) -> None:
    """Record every file under the working directory that this process opens for reading, into
    ``<folder>/<name>.json`` at exit (Python's audit hooks; the end-to-end test compares them
    with the stage's deps in dvc.yaml). Files opened by native code (e.g. pyarrow) are not seen."""
    import json

    root, seen = Path.cwd().resolve(), set()

    def hook(event, args):
        if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        mode, flags = args[1], args[2] if len(args) > 2 else 0
        writing = (mode is not None and any(c in mode for c in "wax+")) or (mode is None and flags & (os.O_WRONLY | os.O_RDWR))
        if not writing:
            p = Path(os.fsdecode(args[0]))
            p = (p if p.is_absolute() else root / p).resolve()
            if p.is_relative_to(root):
                seen.add(p.relative_to(root).as_posix())

    def dump():
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.json").write_text(json.dumps(sorted(seen), indent=1))

    sys.addaudithook(hook)
    atexit.register(dump)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (a report part's
    kernel, the workers of a pool), as /usr/bin/time would count them."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, 2)


def timing_line(label: str, started: str, wall: float, cpu: float, threads: dict) -> str:
    """The stage's one line in the log of `dvc repro` and `dvc queue logs`: where a run's time
    went and the threads and cores it had (benchmarks/bench_queue.py reads it back)."""
    line = f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU, started {started}"
    if "torch_threads" in threads:
        line += f", torch threads {threads['torch_threads']}"
    line += f", BLAS threads {threads['blas_threads']}"
    if "cores" in threads:
        line += f", cores {','.join(map(str, threads['cores']))}"
    if threads.get("waited_seconds", 0) >= 0.1:
        line += f" (waited {threads['waited_seconds']:.1f} s for them)"
    return line


def run_stage(name: str, main: Callable[..., Any], *, config: bool = True, instance: str | None = None,
              stage: str | None = None) -> None:
    """``main(cfg)`` with the stage's validated params (:func:`~askshift.study.config.stage_config`;
    ``config=False``: ``main()``; a ``foreach`` stage of dvc.yaml: ``main(cfg, instance)``), then
    the stage's wall time (and the timings ``main`` returns) recorded in
    :func:`~askshift.study.layout.timings_file`, never in a metrics file.
    ``stage``: the name of the DVC stage when it is not the script's (the stage ``report_<part>``
    runs ``stages/report_part.py PART``): its params file, timings and messages use it.
    Bad params or inputs: one line on stderr naming the key or file, exit status 2."""
    label = stage or (name if instance is None else f"{name}@{instance}")  # as dvc names a foreach stage
    if os.environ.get(AUDIT_ENV):
        _audit_reads(label, os.environ[AUDIT_ENV])
    timer, started = Timer(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        cfg = stage_config(stage or name) if config else None
        with cores.claim(stage_threads(cfg), label) as claimed:
            threads = {**set_threads(cfg), **claimed}
            extra = main(*([cfg] if config else []), *([instance] if instance is not None else []))
            threads.update(torch_threads())
        wall, cpu = timer(), cpu_seconds()
        write_json(timings_file(label), {"stage": label, "started": started, "wall_seconds": wall,
                                         "cpu_seconds": cpu, **threads, **(extra or {})})
        print(timing_line(label, started, wall, cpu, threads), file=sys.stderr)
    except (ParamsError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except StageFailed as e:
        print(f"error: stage {label} failed: {e}", file=sys.stderr)
        raise SystemExit(1) from None
