"""Step `finetune`: the pre-trained model fine-tuned on each reference variant (FT, LP, LP-FT;
several copies), on the variant's reference training split or its de-biased set
(``finetune.dataset``)."""
from __future__ import annotations

from pathlib import Path

from askshift.data import store
from askshift.nn import models
from askshift.nn.strategies import finetune
from askshift.study import layout
from askshift.study.stage import Timer
from askshift.study.training import checkpoint_dir, live, prune_checkpoints, train_config


def runs(cfg) -> list[layout.Run]:
    f = cfg.finetune
    return layout.finetune_runs(cfg.baseline.variants, f.strategies, f.copies, f.dataset, f.train.epochs)


def run(cfg, out: Path) -> list[dict]:
    """Fine-tune every run, save its model under ``out``; returns the model index rows."""
    timer = Timer()
    f = cfg.finetune
    keep, index = set(), []
    for r in runs(cfg):
        data = store.load(layout.dataset_dir(r.train_set))
        tr = data.split("train")
        va = store.load(layout.dataset_dir(layout.reference(r.variant))).split("val")
        seed = layout.run_seed(cfg.seed, "finetune", r.name)
        epochs = layout.epochs_for(len(tr), f.train.batch_size, f.train.epochs, f.min_steps)
        lp_epochs = layout.epochs_for(len(tr), f.lp.batch_size, f.lp.epochs, f.min_steps)
        tcfg = train_config({**f.train, "epochs": epochs}, cfg.compute, seed)
        lp_cfg = train_config({**f.lp, "epochs": lp_epochs}, cfg.compute, seed)
        num_classes = int(data.meta["label"].max()) + 1
        model = models.create_model(cfg.model.arch, num_classes, weights=f"pipeline:{layout.PRETRAINED_MODEL}",
                                    seed=seed)
        recipe = {"run": r.as_dict(), "train": tcfg.identity(), "lp": lp_cfg.identity()}
        ckpt = checkpoint_dir("finetune", r.name, recipe, data=(tr.images, tr.labels), init=layout.PRETRAINED_MODEL)
        keep.add(ckpt)
        with live(layout.live_dir("finetune", r.name)) as lv:
            hist = finetune(model, (tr.images, tr.labels), (va.images, va.labels), r.strategy, tcfg, lp_cfg,
                            ckpt_dir=ckpt, live=lv)
        models.save_model(model, out / r.path.name)
        last = (hist["ft"] or hist["lp"])[-1]
        index.append({**r.as_dict(), "n_train": len(tr), "epochs": epochs if hist["ft"] else 0,
                      "lp_epochs": lp_epochs if hist["lp"] else 0, "val_acc": last.get("val_acc")})
        print(f"finetune {r.name} on {r.train_set} ({len(tr)} images): val acc "
              f"{last.get('val_acc', float('nan')):.4f} ({timer()} s)", flush=True)
    prune_checkpoints("finetune", keep)
    return index
