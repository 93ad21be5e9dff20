"""Stage `pretrain`: the upstream model, trained on the curated corpus or loaded from timm."""
from __future__ import annotations

from askshift import models, study, train
from askshift.data import store
from askshift.params import load_params, main_guard
from askshift.stagekit import Timer, checkpoint_dir, live, prune_checkpoints, write_json

OUT = study.MODELS / "pretrain" / "model.pt"


def main() -> None:
    params = load_params()
    timer = Timer()
    corpus = store.load(study.DATASETS / "pretrain")
    num_classes = int(corpus.meta["label"].max()) + 1
    weights, m = params["pretrain"]["weights"], params["model"]
    metrics = {"weights": weights, "num_classes": num_classes}
    if weights == "pipeline":
        tr, va = corpus.split("train"), corpus.split("val")
        cfg = study.train_config(params["pretrain"]["train"], params["compute"],
                                 study.run_seed(params["seed"], "pretrain"))
        model = models.create_model(m["arch"], num_classes, seed=cfg.seed, **m["kwargs"])
        recipe = {"model": m, "train": cfg.to_dict(), "n_train": len(tr)}
        ckpt = checkpoint_dir("pretrain", "corpus", recipe, data=(tr.images, tr.labels))
        prune_checkpoints("pretrain", {ckpt})
        with live("dvclive/pretrain") as lv:
            history = train.fit(model, (tr.images, tr.labels), (va.images, va.labels), cfg,
                                ckpt_dir=ckpt, live=lv)
        last = history[-1]
        seen = len(tr) * cfg.epochs
        metrics.update(epochs=cfg.epochs, n_train=len(tr), n_val=len(va),
                       val_acc=last.get("val_acc"), train_acc=last["train_acc"],
                       train_seconds=round(sum(h["time"] for h in history), 1),
                       train_images_per_second=round(seen / max(sum(h["time"] for h in history), 1e-9), 1))
    else:
        # pinned timm weights (hub, or a local file offline) or a plain state dict
        model = models.create_model(m["arch"], num_classes, weights=weights, **m["kwargs"])
    models.save_model(model, OUT)
    metrics["wall_seconds"] = timer()
    write_json("results/pretrain/metrics.json", metrics)
    print(f"pretrain: {metrics}")


if __name__ == "__main__":
    main_guard(main)
