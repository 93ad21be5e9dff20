"""Stage `finetune`: the pre-trained model fine-tuned on each reference variant (FT, LP,
LP-FT; several copies), on the variant's reference training split or its de-biased set."""
from __future__ import annotations

from askshift import models, study, train
from askshift.data import store
from askshift.params import load_params, main_guard
from askshift.stagekit import Timer, checkpoint_dir, live, prune_checkpoints, reset_dir, write_json

PRETRAINED = study.MODELS / "pretrain" / "model.pt"


def main() -> None:
    params = load_params()
    timer = Timer()
    f = params["finetune"]
    reset_dir(study.MODELS / "finetune")
    keep, index = set(), []
    for r in study.finetune_runs(params):
        data = store.load(study.DATASETS / r.train_set)
        tr = data.split("train")
        va = store.load(study.DATASETS / f"ref_{r.variant}").split("val")
        seed = study.run_seed(params["seed"], "finetune", r.name)
        epochs = study.epochs_for(len(tr), f["train"]["batch_size"], f["train"]["epochs"], f["min_steps"])
        lp_epochs = study.epochs_for(len(tr), f["lp"]["batch_size"], f["lp"]["epochs"], f["min_steps"])
        cfg = study.train_config({**f["train"], "epochs": epochs}, params["compute"], seed)
        lp_cfg = study.train_config({**f["lp"], "epochs": lp_epochs}, params["compute"], seed)
        num_classes = int(data.meta["label"].max()) + 1
        model = models.create_model(params["model"]["arch"], num_classes,
                                    weights=f"pipeline:{PRETRAINED}", seed=seed)
        recipe = {"run": r.as_dict(), "train": cfg.to_dict(), "lp": lp_cfg.to_dict()}
        ckpt = checkpoint_dir("finetune", r.name, recipe, data=(tr.images, tr.labels), init=PRETRAINED)
        keep.add(ckpt)
        with live(f"dvclive/finetune/{r.name.replace('/', '-')}") as lv:
            hist = models.finetune(model, (tr.images, tr.labels), (va.images, va.labels), r.strategy,
                                   cfg, lp_cfg, ckpt_dir=ckpt, live=lv)
        models.save_model(model, r.path)
        last = (hist["ft"] or hist["lp"])[-1]
        index.append({**r.as_dict(), "n_train": len(tr), "epochs": epochs if hist["ft"] else 0,
                      "lp_epochs": lp_epochs if hist["lp"] else 0, "val_acc": last.get("val_acc")})
        print(f"finetune {r.name} on {r.train_set} ({len(tr)} images): val acc "
              f"{last.get('val_acc', float('nan')):.4f} ({timer()} s)", flush=True)
    prune_checkpoints("finetune", keep)
    write_json(study.MODELS / "finetune" / "index.json", index)
    write_json("results/finetune/metrics.json", {"n_models": len(index), "dataset": f["dataset"],
                                                 "wall_seconds": timer()})


if __name__ == "__main__":
    main_guard(main)
