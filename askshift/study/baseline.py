"""Step `baseline`: from-scratch models per reference variant whose accuracies span a range:
snapshots of one full run, and runs on random subsets of the training data (the x-axis of every
ER fit)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from askshift.data import store
from askshift.nn import models, train
from askshift.study import layout
from askshift.study.stage import Timer
from askshift.study.training import checkpoint_dir, live, prune_checkpoints, train_config


def subset(ds: store.Dataset, fraction: float, seed: int) -> store.Dataset:
    """A stratified random subset (at least one image per class)."""
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(ds.labels == c), size=max(1, round(fraction * (ds.labels == c).sum())),
                       replace=False) for c in np.unique(ds.labels)]
    return ds.select(np.sort(np.concatenate(keep)))


def runs(cfg) -> list[layout.Run]:
    b = cfg.baseline
    return layout.baseline_runs(b.variants, b.snapshot_epochs, b.subset_fractions, b.train.epochs)


def run(cfg, out: Path) -> list[dict]:
    """Train every baseline run, save its model under ``out`` (the stage's models folder, named
    as :attr:`layout.Run.path` names it); returns the model index rows."""
    timer = Timer()
    m = cfg.model.to_dict()
    all_runs = runs(cfg)
    keep, index = set(), []
    for variant in cfg.baseline.variants:
        ref = store.load(layout.dataset_dir(layout.reference(variant)))
        tr, va = ref.split("train"), ref.split("val")
        num_classes = int(ref.meta["label"].max()) + 1
        jobs = [("full", 1.0, [r for r in all_runs if r.variant == variant and r.fraction == 1.0])]
        jobs += [(f"subset-{r.fraction:g}", r.fraction, [r]) for r in all_runs
                 if r.variant == variant and r.fraction < 1.0]
        for tag, fraction, outs in jobs:
            seed = layout.run_seed(cfg.seed, "baseline", variant, tag)
            data = tr if fraction == 1.0 else subset(tr, fraction, seed)
            tcfg = train_config(cfg.baseline.train, cfg.compute, seed)
            recipe = {"model": m, "train": tcfg.identity(), "variant": variant, "fraction": fraction}
            ckpt = checkpoint_dir("baseline", f"{variant}-{tag}", recipe, data=(data.images, data.labels))
            keep.add(ckpt)
            model = models.create_model(m["arch"], num_classes, seed=seed, **m["kwargs"])
            epochs = [r.epoch for r in outs] if fraction == 1.0 else []
            with live(layout.live_dir("baseline", f"{variant}-{tag}")) as lv:
                history = train.fit(model, (data.images, data.labels), (va.images, va.labels), tcfg,
                                    ckpt_dir=ckpt, live=lv, save_epochs=epochs)
            for r in outs:
                dest = out / r.path.name
                if fraction == 1.0:
                    shutil.copyfile(train.snapshot_path(ckpt, r.epoch), dest)
                else:
                    models.save_model(model, dest)
                index.append({**r.as_dict(), "n_train": len(data),
                              "val_acc": history[r.epoch - 1].get("val_acc") if fraction == 1.0
                              else history[-1].get("val_acc")})
            print(f"baseline {variant}/{tag}: {len(data)} images, val acc "
                  f"{history[-1].get('val_acc', float('nan')):.4f} ({timer()} s)", flush=True)
    prune_checkpoints("baseline", keep)
    return index
