"""Step `baseline`: from-scratch models per reference variant whose accuracies span a range:
snapshots of independent full runs (several seeds, and narrower versions of the architecture),
and runs on random subsets of the training data (the x-axis of every ER fit)."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from askshift.data import store
from askshift.nn import models, train
from askshift.study import fanout, layout
from askshift.study.config import scratch_model
from askshift.study.stage import Timer, set_threads
from askshift.study.training import checkpoint_dir, live, prune_checkpoints, train_config


def subset(ds: store.Dataset, fraction: float, seed: int) -> store.Dataset:
    """A stratified random subset (at least one image per class)."""
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(ds.labels == c), size=max(1, round(fraction * (ds.labels == c).sum())),
                       replace=False) for c in np.unique(ds.labels)]
    return ds.select(np.sort(np.concatenate(keep)))


def runs(cfg) -> list[layout.Run]:
    b = cfg.baseline
    return layout.baseline_runs(b.variants, b.snapshot_epochs, b.subset_fractions, b.train.epochs, b.seeds, b.widths)


def scaled(kwargs: dict, width: float) -> dict:
    """The architecture's keyword arguments with its channel widths times ``width`` (a timm
    ResNet's ``channels`` and ``stem_width``; the params rules require them for width != 1)."""
    if width == 1.0:
        return dict(kwargs)
    out = dict(kwargs)
    out["channels"] = [max(1, round(c * width)) for c in kwargs["channels"]]
    if "stem_width" in kwargs:
        out["stem_width"] = max(1, round(kwargs["stem_width"] * width))
    return out


@dataclass(frozen=True)
class Job:
    """One training run of a variant (its snapshots are its outputs), self-contained so that a
    worker process or a SLURM job can run it (:mod:`askshift.study.fanout`)."""

    cfg: Any
    variant: str
    tag: str
    outs: tuple[layout.Run, ...]
    out: Path


def jobs(cfg, out: Path) -> list[Job]:
    all_runs = runs(cfg)
    return [Job(cfg, variant, tag, tuple(r for r in all_runs if r.variant == variant and r.run == tag), Path(out))
            for variant in cfg.baseline.variants
            for tag in dict.fromkeys(r.run for r in all_runs if r.variant == variant)]


def train_job(job: Job) -> tuple[Path, list[dict]]:
    """Train one run, save its snapshots (or final model) under ``job.out``; returns its
    checkpoint folder and its model index rows."""
    t0 = time.monotonic()
    cfg, variant, tag, outs = job.cfg, job.variant, job.tag, job.outs
    set_threads(cfg)   # the stage's settings, also in a worker process
    arch, arch_kwargs = scratch_model(cfg)
    ref = store.load(layout.dataset_dir(layout.reference(variant)))
    tr, va = ref.split("train"), ref.split("val")
    num_classes = int(ref.meta["label"].max()) + 1
    fraction, width = outs[0].fraction, outs[0].width
    seed = layout.run_seed(cfg.seed, "baseline", variant, tag)
    data = tr if fraction == 1.0 else subset(tr, fraction, seed)
    tcfg = train_config(cfg.baseline.train, cfg.compute, seed)
    kwargs = scaled(arch_kwargs, width)
    recipe = {"model": {"arch": arch, "kwargs": kwargs}, "train": tcfg.identity(), "variant": variant, "fraction": fraction}
    ckpt = checkpoint_dir("baseline", f"{variant}-{tag}", recipe, data=(data.images, data.labels))
    model = models.create_model(arch, num_classes, seed=seed, **kwargs)
    epochs = [r.epoch for r in outs] if fraction == 1.0 else []
    with live(layout.live_dir("baseline", f"{variant}-{tag}")) as lv:
        history = train.fit(model, (data.images, data.labels), (va.images, va.labels), tcfg,
                            ckpt_dir=ckpt, live=lv, save_epochs=epochs)
    index = []
    for r in outs:
        dest = job.out / r.path.name
        if fraction == 1.0:
            shutil.copyfile(train.snapshot_path(ckpt, r.epoch), dest)
        else:
            models.save_model(model, dest)
        index.append({**r.as_dict(), "n_train": len(data),
                      "val_acc": history[r.epoch - 1].get("val_acc") if fraction == 1.0
                      else history[-1].get("val_acc")})
    print(f"baseline {variant}/{tag}: {len(data)} images, val acc "
          f"{history[-1].get('val_acc', float('nan')):.4f} ({time.monotonic() - t0:.1f} s)", flush=True)
    return ckpt, index


def run(cfg, out: Path) -> list[dict]:
    """Train every baseline run (spread as ASKSHIFT_FANOUT says: :mod:`askshift.study.fanout`),
    save its models under ``out`` (the stage's models folder, named as :attr:`layout.Run.path`
    names them); returns the model index rows, in run order."""
    timer = Timer()
    done = fanout.run_all(train_job, jobs(cfg, out), layout.CHECKPOINTS / "fanout" / "baseline")
    prune_checkpoints("baseline", {ckpt for ckpt, _ in done})
    print(f"{len(done)} baseline runs ({timer()} s)", flush=True)
    return [row for _, rows in done for row in rows]
