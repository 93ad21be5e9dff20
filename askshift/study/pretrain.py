"""Step `pretrain`: the upstream model, trained on the curated corpus (``pretrain.weights:
pipeline``) or loaded from pinned timm weights / a local state dict."""
from __future__ import annotations

from askshift.data import store
from askshift.nn import models, train
from askshift.data.worlds import WORLDS
from askshift.study import layout
from askshift.study.params import check_weights_file
from askshift.study.stage import InputError
from askshift.study.training import checkpoint_dir, live, prune_checkpoints, train_config


def run(cfg) -> tuple[dict, dict]:
    """Train or load the model, save it to ``models/pretrain/model.pt``; returns its metrics and
    its timings (kept apart: timings differ between identical runs)."""
    weights, m = cfg.pretrain.weights, cfg.model.to_dict()
    check_weights_file(weights, cfg.pretrain.weights_sha256)   # the params stage may not have re-run
    corpus = store.load(layout.dataset_dir(layout.CORPUS))
    if not len(corpus) and weights == "pipeline":  # the params stage refuses this first
        raise InputError(f"pretrain.weights = 'pipeline' but the {cfg.world} world has no pre-training corpus")
    # a loaded model's head is replaced by every fine-tune: its size only has to be valid
    num_classes = int(corpus.meta["label"].max()) + 1 if len(corpus) else WORLDS[cfg.world].num_classes
    metrics, timings = {"weights": weights, "num_classes": num_classes}, {}
    if weights == "pipeline":
        tr, va = corpus.split("train"), corpus.split("val")
        tcfg = train_config(cfg.pretrain.train, cfg.compute, layout.run_seed(cfg.seed, "pretrain"))
        model = models.create_model(m["arch"], num_classes, seed=tcfg.seed, **m["kwargs"])
        recipe = {"model": m, "train": tcfg.identity(), "n_train": len(tr)}
        ckpt = checkpoint_dir("pretrain", "corpus", recipe, data=(tr.images, tr.labels))
        with live(layout.live_dir("pretrain")) as lv:
            history = train.fit(model, (tr.images, tr.labels), (va.images, va.labels), tcfg,
                                ckpt_dir=ckpt, live=lv)
        prune_checkpoints("pretrain", {ckpt})  # only after success: a failed run keeps the others
        last = history[-1]
        seconds = sum(h["time"] for h in history)
        metrics.update(epochs=tcfg.epochs, n_train=len(tr), n_val=len(va),
                       val_acc=last.get("val_acc"), train_acc=last["train_acc"])
        # every epoch's time, also those of a run this one resumed (from the checkpoint's history)
        timings = {"train_seconds": round(seconds, 1),
                   "train_images_per_second": round(len(tr) * tcfg.epochs / max(seconds, 1e-9), 1)}
    else:
        # pinned timm weights (hub, or a local file offline) or a plain state dict
        model = models.create_model(m["arch"], num_classes, weights=weights, **m["kwargs"])
        with live(layout.live_dir("pretrain")) as lv:  # a declared output: no curve, the weights' name
            lv.log_param("weights", weights)
    models.save_model(model, layout.PRETRAINED_MODEL)
    return metrics, timings


def headline(details: dict) -> dict:
    """The pre-trained model's accuracy on its corpus (training and held-out)."""
    return {k: details[k] for k in ("val_acc", "train_acc") if k in details}
