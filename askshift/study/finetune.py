"""Step `finetune`: the pre-trained model fine-tuned on each reference variant (FT, LP, LP-FT;
several copies, the learning rate picked on reference validation from a small grid), on the
variant's reference training split or its de-biased set (``finetune.dataset``)."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from askshift.data import store
from askshift.nn import models
from askshift.nn.strategies import finetune
from askshift.study import fanout, layout
from askshift.study.stage import Timer, set_threads
from askshift.study.training import checkpoint_dir, live, prune_checkpoints, train_config


def runs(cfg) -> list[layout.Run]:
    f = cfg.finetune
    return layout.finetune_runs(cfg.baseline.variants, f.strategies, f.copies, f.dataset, f.train.epochs)


def min_steps(cfg) -> int:
    """The step floor of a fine-tune: ``finetune.min_steps`` on the reference training splits;
    on a de-biased set the Sec. 7 recipe for small curated sets, ``debiased.min_steps`` (the
    step that trains the paper's de-biased arms uses it too). 100 steps on a 200-image set
    instead of 200 move the picked fine-tunes' shifted accuracy by <= 0.6 pp (docs/analyses.md)
    and halve the cost of ``dvc exp run -S finetune.dataset=debiased``."""
    return cfg.debiased.min_steps if cfg.finetune.dataset == "debiased" else cfg.finetune.min_steps


@dataclass(frozen=True)
class Job:
    """One fine-tune: run ``run`` at ``lr_factor`` times both learning rates, its model saved to
    ``dest``; self-contained for a worker process or a SLURM job (:mod:`askshift.study.fanout`)."""

    cfg: Any
    run: layout.Run
    lr_factor: float
    dest: Path


def train_one(job: Job) -> dict:
    """Train one fine-tune and save its model; returns its checkpoint folder, validation accuracy
    and epochs / learning rates."""
    cfg, r, lr_factor = job.cfg, job.run, job.lr_factor
    set_threads(cfg)   # the stage's settings, also in a worker process
    f = cfg.finetune
    data = store.load(layout.dataset_dir(r.train_set))
    tr, num_classes = data.split("train"), int(data.meta["label"].max()) + 1
    va = store.load(layout.dataset_dir(layout.reference(r.variant))).split("val")
    seed = layout.run_seed(cfg.seed, "finetune", r.name)
    floor = min_steps(cfg)
    epochs = layout.epochs_for(len(tr), f.train.batch_size, f.train.epochs, floor)
    lp_epochs = layout.epochs_for(len(tr), f.lp.batch_size, f.lp.epochs, floor)
    tcfg = train_config({**f.train, "epochs": epochs, "lr": f.train.lr * lr_factor}, cfg.compute, seed, len(tr))
    lp_cfg = train_config({**f.lp, "epochs": lp_epochs, "lr": f.lp.lr * lr_factor}, cfg.compute, seed, len(tr))
    model = models.create_model(cfg.model.arch, num_classes, weights=f"pipeline:{layout.PRETRAINED_MODEL}", seed=seed)
    recipe = {"run": r.as_dict(), "train": tcfg.identity(), "lp": lp_cfg.identity()}
    ckpt = checkpoint_dir("finetune", r.name, recipe, data=(tr.images, tr.labels), init=layout.PRETRAINED_MODEL)
    with live(layout.live_dir("finetune", f"{r.name}-lr{lr_factor:g}")) as lv:
        hist = finetune(model, (tr.images, tr.labels), (va.images, va.labels), r.strategy, tcfg, lp_cfg,
                        ckpt_dir=ckpt, live=lv)
    models.save_model(model, job.dest)
    last = (hist["ft"] or hist["lp"])[-1]
    return {"ckpt": ckpt, "n_train": len(tr), "val_acc": last.get("val_acc", float("nan")),
            "info": {"epochs": epochs if hist["ft"] else 0, "lp_epochs": lp_epochs if hist["lp"] else 0,
                     "ft_lr": tcfg.lr if hist["ft"] else None, "lp_lr": lp_cfg.lr if hist["lp"] else None}}


def pick(scores: dict[float, float]) -> float:
    """The learning-rate factor with the best validation accuracy (ties: the one nearest 1)."""
    return max(scores, key=lambda m: (round(scores[m], 12), -abs(np.log(m))))


def run(cfg, out: Path) -> tuple[list[dict], list[dict]]:
    """Per variant and strategy: copy 0 at every factor of ``finetune.lr_grid`` (the learning
    rate is picked on the variant's reference validation split, as the paper does), then the
    other copies at the picked factor; each wave spread as ASKSHIFT_FANOUT says. Saves the
    models under ``out``; returns the model index rows and the selection rows (every factor
    with its validation accuracy)."""
    timer = Timer()
    grid = sorted(cfg.finetune.lr_grid)
    all_runs = runs(cfg)
    groups = {key: [r for r in all_runs if (r.variant, r.strategy) == key]
              for key in dict.fromkeys((r.variant, r.strategy) for r in all_runs)}
    scratch, fan = out / ".lr_grid", layout.CHECKPOINTS / "fanout" / "finetune"
    scratch.mkdir()
    # wave 1: copy 0 of every group at every factor of the grid
    wave1 = [Job(cfg, copies[0], m, scratch / f"{copies[0].path.stem}-lr{m:g}.pt") for copies in groups.values()
             for m in grid]
    first = dict(zip(((j.run.name, j.lr_factor) for j in wave1), fanout.run_all(train_one, wave1, fan)))
    best = {key: pick({m: first[copies[0].name, m]["val_acc"] for m in grid}) for key, copies in groups.items()}
    # wave 2: the other copies at their group's picked factor
    wave2 = [Job(cfg, r, best[key], out / r.path.name) for key, copies in groups.items() for r in copies[1:]]
    rest = dict(zip((j.run.name for j in wave2), fanout.run_all(train_one, wave2, fan)))
    index, selection = [], []
    for key, copies in groups.items():
        m_best, c0 = best[key], copies[0]
        (scratch / f"{c0.path.stem}-lr{m_best:g}.pt").rename(out / c0.path.name)
        selection += [{"variant": key[0], "strategy": key[1], "lr_factor": m, "val_acc": first[c0.name, m]["val_acc"],
                       **first[c0.name, m]["info"], "picked": m == m_best} for m in grid]
        for r in copies:
            got = first[c0.name, m_best] if r is c0 else rest[r.name]
            index.append({**r.as_dict(), "n_train": got["n_train"], "lr_factor": m_best, **got["info"],
                          "val_acc": got["val_acc"]})
        scores = ", ".join(f"x{m:g} {first[c0.name, m]['val_acc']:.4f}" for m in grid)
        print(f"finetune {key[0]}/{key[1]} on {c0.train_set} ({got['n_train']} images): lr x{m_best:g} picked "
              f"({scores}), {len(copies)} copies", flush=True)
    shutil.rmtree(scratch)
    prune_checkpoints("finetune", {j["ckpt"] for j in [*first.values(), *rest.values()]})
    print(f"{len(wave1) + len(wave2)} fine-tunes ({timer()} s)", flush=True)
    return index, selection
