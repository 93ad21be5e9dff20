"""Small helpers shared by the stage scripts: checkpoints, DVCLive, atomic JSON, timing."""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from askshift.data.store import atomic_write_text

CKPT_ROOT = Path("models/ckpt")


def recipe_hash(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:12]


def file_digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_dir(stage: str, run: str, recipe: dict, *, data, init=None) -> Path:
    """Resumable checkpoints of one run. The folder name carries a hash of the run's recipe,
    of its training data ``(images, labels)`` and of the file of its initial weights ``init``,
    so a run whose recipe, data or starting point changed (e.g. a `dvc exp run` that changes the
    bias strength or the pre-training) starts afresh instead of resuming one that no longer applies."""
    from askshift.train import fingerprint  # torch is only needed by stages that train

    key = {**recipe, "data": fingerprint(*data), "init": None if init is None else file_digest(init)}
    return CKPT_ROOT / stage / f"{run.replace('/', '__')}-{recipe_hash(key)}"


def prune_checkpoints(stage: str, keep: set[Path]) -> None:
    """Drop checkpoint folders of recipes that are no longer part of the study."""
    root = CKPT_ROOT / stage
    if root.exists():
        for d in root.iterdir():
            if d not in keep:
                shutil.rmtree(d, ignore_errors=True)


@contextmanager
def live(directory: str | Path):
    """A DVCLive logger for one run; dvc.yaml declares its plots, so no dvc.yaml of its own."""
    from dvclive import Live

    with Live(str(directory), dvcyaml=False, save_dvc_exp=False) as lv:
        yield lv


def write_json(path: str | Path, obj) -> None:
    atomic_write_text(Path(path), json.dumps(obj, indent=1, sort_keys=False) + "\n")


class Timer:
    def __init__(self):
        self.t0 = time.time()

    def __call__(self) -> float:
        return round(time.time() - self.t0, 2)


def reset_dir(path: str | Path) -> Path:
    """An empty output folder (DVC removes outputs before a run; this also covers manual runs)."""
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temp path beside `path`; it is renamed onto `path` only if the block succeeds."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
