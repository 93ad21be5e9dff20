"""Step `finetune`: the pre-trained model fine-tuned on each reference variant (FT, LP, LP-FT;
several copies, the learning rate picked on reference validation from a small grid), on the
variant's reference training split or its de-biased set (``finetune.dataset``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from askshift.data import store
from askshift.nn import models
from askshift.nn.strategies import finetune
from askshift.study import layout
from askshift.study.stage import Timer
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


def train_one(cfg, r: layout.Run, lr_factor: float, tr, va, num_classes: int, keep: set):
    """One fine-tune of run ``r`` with both learning rates (FT's and LP's) times ``lr_factor``;
    returns the model, its history and its epochs."""
    f = cfg.finetune
    seed = layout.run_seed(cfg.seed, "finetune", r.name)
    floor = min_steps(cfg)
    epochs = layout.epochs_for(len(tr), f.train.batch_size, f.train.epochs, floor)
    lp_epochs = layout.epochs_for(len(tr), f.lp.batch_size, f.lp.epochs, floor)
    tcfg = train_config({**f.train, "epochs": epochs, "lr": f.train.lr * lr_factor}, cfg.compute, seed, len(tr))
    lp_cfg = train_config({**f.lp, "epochs": lp_epochs, "lr": f.lp.lr * lr_factor}, cfg.compute, seed, len(tr))
    model = models.create_model(cfg.model.arch, num_classes, weights=f"pipeline:{layout.PRETRAINED_MODEL}", seed=seed)
    recipe = {"run": r.as_dict(), "train": tcfg.identity(), "lp": lp_cfg.identity()}
    ckpt = checkpoint_dir("finetune", r.name, recipe, data=(tr.images, tr.labels), init=layout.PRETRAINED_MODEL)
    keep.add(ckpt)
    with live(layout.live_dir("finetune", f"{r.name}-lr{lr_factor:g}")) as lv:
        hist = finetune(model, (tr.images, tr.labels), (va.images, va.labels), r.strategy, tcfg, lp_cfg,
                        ckpt_dir=ckpt, live=lv)
    last = (hist["ft"] or hist["lp"])[-1]
    return model, last.get("val_acc", float("nan")), {"epochs": epochs if hist["ft"] else 0,
                                                       "lp_epochs": lp_epochs if hist["lp"] else 0,
                                                       "ft_lr": tcfg.lr if hist["ft"] else None,
                                                       "lp_lr": lp_cfg.lr if hist["lp"] else None}


def pick(scores: dict[float, float]) -> float:
    """The learning-rate factor with the best validation accuracy (ties: the one nearest 1)."""
    return max(scores, key=lambda m: (round(scores[m], 12), -abs(np.log(m))))


def run(cfg, out: Path) -> tuple[list[dict], list[dict]]:
    """Per variant and strategy: copy 0 at every factor of ``finetune.lr_grid`` (the learning
    rate is picked on the variant's reference validation split, as the paper does), then the
    other copies at the picked factor. Saves the models under ``out``; returns the model index
    rows and the selection rows (every factor with its validation accuracy)."""
    timer = Timer()
    keep, index, selection = set(), [], []
    grid = sorted(cfg.finetune.lr_grid)
    all_runs = runs(cfg)
    for (variant, strategy) in dict.fromkeys((r.variant, r.strategy) for r in all_runs):
        copies = [r for r in all_runs if r.variant == variant and r.strategy == strategy]
        data = store.load(layout.dataset_dir(copies[0].train_set))
        tr, num_classes = data.split("train"), int(data.meta["label"].max()) + 1
        va = store.load(layout.dataset_dir(layout.reference(variant))).split("val")
        first = {m: train_one(cfg, copies[0], m, tr, va, num_classes, keep) for m in grid}
        best = pick({m: v[1] for m, v in first.items()})
        selection += [{"variant": variant, "strategy": strategy, "lr_factor": m, "val_acc": v[1], **v[2],
                       "picked": m == best} for m, v in first.items()]
        for r in copies:
            model, val_acc, info = first[best] if r is copies[0] else train_one(cfg, r, best, tr, va, num_classes, keep)
            models.save_model(model, out / r.path.name)
            index.append({**r.as_dict(), "n_train": len(tr), "lr_factor": best, **info, "val_acc": val_acc})
        print(f"finetune {variant}/{strategy} on {copies[0].train_set} ({len(tr)} images): lr x{best:g} picked "
              f"({', '.join(f'x{m:g} {v[1]:.4f}' for m, v in first.items())}), {len(copies)} copies ({timer()} s)",
              flush=True)
    prune_checkpoints("finetune", keep)
    return index, selection
