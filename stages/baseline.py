"""Stage `baseline`: from-scratch models per reference variant whose accuracies span a range:
snapshots of one full run, and runs on random subsets of the training data."""
from __future__ import annotations

import shutil

import numpy as np

from askshift import models, study, train
from askshift.data import store
from askshift.params import load_params, main_guard
from askshift.stagekit import Timer, checkpoint_dir, live, prune_checkpoints, reset_dir, write_json


def subset(ds: store.Dataset, fraction: float, seed: int) -> store.Dataset:
    """A stratified random subset (at least one image per class)."""
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(ds.labels == c), size=max(1, round(fraction * (ds.labels == c).sum())),
                       replace=False) for c in np.unique(ds.labels)]
    return ds.select(np.sort(np.concatenate(keep)))


def main() -> None:
    params = load_params()
    timer = Timer()
    m, b = params["model"], params["baseline"]
    runs = study.baseline_runs(params)
    reset_dir(study.MODELS / "baseline")
    keep, index = set(), []
    for variant in b["variants"]:
        ref = store.load(study.DATASETS / f"ref_{variant}")
        tr, va = ref.split("train"), ref.split("val")
        num_classes = int(ref.meta["label"].max()) + 1
        jobs = [("full", 1.0, [r for r in runs if r.variant == variant and r.fraction == 1.0])]
        jobs += [(f"subset-{r.fraction:g}", r.fraction, [r]) for r in runs
                 if r.variant == variant and r.fraction < 1.0]
        for tag, fraction, outs in jobs:
            seed = study.run_seed(params["seed"], "baseline", variant, tag)
            data = tr if fraction == 1.0 else subset(tr, fraction, seed)
            cfg = study.train_config(b["train"], params["compute"], seed)
            recipe = {"model": m, "train": cfg.to_dict(), "variant": variant, "fraction": fraction}
            ckpt = checkpoint_dir("baseline", f"{variant}-{tag}", recipe, data=(data.images, data.labels))
            keep.add(ckpt)
            model = models.create_model(m["arch"], num_classes, seed=seed, **m["kwargs"])
            epochs = [r.epoch for r in outs] if fraction == 1.0 else []
            with live(f"dvclive/baseline/{variant}-{tag}") as lv:
                history = train.fit(model, (data.images, data.labels), (va.images, va.labels), cfg,
                                    ckpt_dir=ckpt, live=lv, save_epochs=epochs)
            for r in outs:
                src = train.snapshot_path(ckpt, r.epoch) if fraction == 1.0 else None
                if src is not None:
                    r.path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, r.path)
                else:
                    models.save_model(model, r.path)
                index.append({**r.as_dict(), "n_train": len(data),
                              "val_acc": history[r.epoch - 1].get("val_acc") if fraction == 1.0
                              else history[-1].get("val_acc")})
            print(f"baseline {variant}/{tag}: {len(data)} images, val acc "
                  f"{history[-1].get('val_acc', float('nan')):.4f} ({timer()} s)", flush=True)
    prune_checkpoints("baseline", keep)
    write_json(study.MODELS / "baseline" / "index.json", index)
    write_json("results/baseline/metrics.json", {"n_models": len(index), "wall_seconds": timer()})


if __name__ == "__main__":
    main_guard(main)
