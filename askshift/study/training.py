"""Training the study's models: recipes from params, resumable checkpoint folders, curves.

* :func:`train_config` -- a :class:`~askshift.nn.config.TrainConfig` from a params ``train``
  section and the ``compute`` section.
* :func:`checkpoint_dir` / :func:`prune_checkpoints` -- where a run keeps its resumable state;
  the folder name hashes the recipe, the training data and the initial weights, so a run only
  ever resumes itself.
* :func:`live` -- a DVCLive logger for one run's curves.
"""
from __future__ import annotations

import math
import shutil
from contextlib import contextmanager
from pathlib import Path

from askshift.io import file_sha256, short_hash
from askshift.nn import train
from askshift.nn.config import TrainConfig
from askshift.study.cores import exclusive
from askshift.study.layout import CHECKPOINTS


MAX_EVALS = 10        # validations per run: a 200-image set trained 100 epochs must not validate 100 times
MAX_CHECKPOINTS = 10  # checkpoints per run, for the same reason (a kill loses at most a tenth of the run)
MIN_STEPS_BETWEEN = 25  # optimizer steps between two validations or checkpoints, at least: one
                        # validation of the 1000 val images costs ~3 training steps of 128 and a
                        # checkpoint ~2, so this keeps both under ~15% of a short run's compute


def record_every(epochs: int, most: int, n_train: int | None, batch_size: int) -> int:
    """Epochs between two validations (or checkpoints): at most ``most`` per run, and, when the
    training set size is known, at least :data:`MIN_STEPS_BETWEEN` optimizer steps apart (a
    200-image set has 2 steps per epoch). The last epoch is always recorded."""
    every = max(1, epochs // most)
    if n_train:
        every = max(every, math.ceil(MIN_STEPS_BETWEEN / math.ceil(n_train / batch_size)))
    return min(every, epochs)


def train_config(section, compute, seed: int, n_train: int | None = None, **overrides) -> TrainConfig:
    """A TrainConfig from a params `train` section plus the compute settings. Validations and
    checkpoints follow :func:`record_every` (``n_train``: the training set's size; the weights
    depend on neither)."""
    values = {**dict(section), **overrides}
    values.setdefault("eval_every", record_every(values["epochs"], MAX_EVALS, n_train, values["batch_size"]))
    values.setdefault("checkpoint_every", record_every(values["epochs"], MAX_CHECKPOINTS, n_train,
                                                       values["batch_size"]))
    return TrainConfig(**values, seed=seed, device=compute["device"], amp=compute["amp"],
                       num_threads=compute["threads"], ddp=compute["ddp"])


def checkpoint_dir(stage: str, run: str, recipe: dict, *, data, init=None) -> Path:
    """Resumable checkpoints of one run. The folder name carries a hash of the run's recipe,
    of its training data ``(images, labels)`` and of the file of its initial weights ``init``,
    so a run whose recipe, data or starting point changed (e.g. a `dvc exp run` that changes the
    bias strength or the pre-training) starts afresh instead of resuming one that no longer applies."""
    key = {**recipe, "data": train.fingerprint(*data), "init": None if init is None else file_sha256(init)}
    return CHECKPOINTS / stage / f"{run.replace('/', '__')}-{short_hash(key)}"


def prune_checkpoints(stage: str, keep: set[Path]) -> None:
    """Drop checkpoint folders of recipes that are no longer part of the study. Call it only
    after every run of the stage succeeded: a failed or mistyped experiment must not delete the
    resumable state of the main run."""
    root = CHECKPOINTS / stage
    if root.exists():
        for d in root.iterdir():
            if d not in keep:
                shutil.rmtree(d, ignore_errors=True)


@contextmanager
def live(directory: str | Path):
    """A DVCLive logger for one run; dvc.yaml declares its plots, so no dvc.yaml of its own.

    Its end runs under a lock that one process of the repository holds at a time: DVCLive's
    ``end()`` removes a signal file that every run of the repository shares by first checking that
    it exists and then removing it, so two fanned-out runs that ended together raced (a
    FileNotFoundError in CI, 2026-12-08). The runs themselves are not serialised."""
    from dvclive import Live

    lv = Live(str(directory), dvcyaml=False, save_dvc_exp=False)
    try:
        yield lv
    finally:
        with exclusive(CHECKPOINTS / "dvclive-end.lock"):
            lv.end()
