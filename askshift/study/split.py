"""Step `split` (paper Sec. 5.2): split shifts into in-support and out-of-support parts.

For each shift of ``split.shifts``: a domain classifier (L2 logistic regression on pooled
pixels, frozen penultimate features of the pre-trained model, or both) tells the shift's
reference training images from its shifted images, cross-fitted over ``split.k`` folds; one
temperature is calibrated on all out-of-fold logits; a shifted example is out-of-support where
the density ratio p_ref/p_shift is below ``split.epsilon``. On the mixture shift, whose
membership is known, the split is scored (AUROC, precision, recall). The ER on each part is the
robustness step's (:func:`askshift.study.robustness.part_tables`): it changes with the models,
the split does not.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from askshift.data import store
from askshift.methods.split import membership_scores, pixel_features, split_shift
from askshift.nn import models, train
from askshift.study import layout
from askshift.study.stage import Timer


def features(images, kind: str, pixel_size: int, pretrained=None, batch_size: int = 1024,
             device: str = "auto") -> np.ndarray:
    """The domain classifier's input: pooled pixels, frozen pre-trained features, or both."""
    parts = []
    if kind in ("pretrained", "both"):
        parts.append(train.extract_features(pretrained, images, batch_size=batch_size, device=device))
    if kind in ("pixels", "both"):
        parts.append(pixel_features(images, pixel_size))
    return np.hstack(parts)


def split_one(cfg, name: str, pair: dict, ref_features: np.ndarray, shifted: store.Dataset,
              shift_features: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """One shift: the density ratio of every shifted example, the split, and its scores."""
    sp = cfg.split
    res, oos = split_shift(ref_features, shift_features, k=sp.k, C=sp.C,
                           seed=layout.run_seed(cfg.seed, "split", name), epsilon=sp.epsilon)
    meta = shifted.meta
    true_out = ~meta["in_support"].to_numpy(bool) if "in_support" in meta else None
    ratios = pd.DataFrame({"shift": name, "index": meta["index"].to_numpy(), "label": meta["label"].to_numpy(),
                           "log_ratio": res.log_ratio_shift, "out_of_support": oos})
    if true_out is not None:
        ratios["true_out_of_support"] = true_out
    m = {"kind": pair["kind"], "n": int(len(oos)), "out_of_support_fraction": float(oos.mean()),
         "temperature": res.temperature, "domain_auroc": res.domain_auroc,
         "log_loss_calibrated": res.log_loss_calibrated, "log_loss_uncalibrated": res.log_loss_uncalibrated}
    if true_out is not None:
        ms = membership_scores(res.ratio_shift, true_out, epsilon=sp.epsilon)
        m["membership"] = {"auroc": ms.auroc, "precision": ms.precision, "recall": ms.recall, "f1": ms.f1,
                           "n_predicted_out": ms.n_predicted_out, "n_true_out": ms.n_true_out}
    return ratios, m


def run(cfg) -> tuple[pd.DataFrame, dict]:
    """Every shift of ``split.shifts``: the table of density ratios and the metrics."""
    timer = Timer()
    sp = cfg.split
    device, bs = cfg.compute.device, cfg.evaluate.batch_size
    index = layout.read_shift_index()
    pre = models.load_model(layout.PRETRAINED_MODEL) if sp.features != "pixels" else None
    ref_feats: dict[str, np.ndarray] = {}
    ratio_rows, parts = [], {}
    for name in sp.shifts:
        pair = index[name]
        if pair["reference"] not in ref_feats:
            ref_images = store.load(layout.dataset_dir(pair["reference"])).split("train").images
            ref_feats[pair["reference"]] = features(ref_images, sp.features, sp.pixel_size, pre, bs, device)
        shifted = store.load(layout.dataset_dir(pair["shifted"]))
        ratios, m = split_one(cfg, name, pair, ref_feats[pair["reference"]], shifted,
                              features(shifted.images, sp.features, sp.pixel_size, pre, bs, device))
        ratio_rows.append(ratios)
        parts[name] = m
        print(f"{name:12s} out-of-support {m['out_of_support_fraction']:6.1%} of {m['n']} (T={m['temperature']:.3g}, "
              f"domain AUROC {m['domain_auroc']:.3f})"
              + (f"; membership AUROC {m['membership']['auroc']:.3f} precision {m['membership']['precision']:.3f} "
                 f"recall {m['membership']['recall']:.3f}" if "membership" in m else "")
              + f" ({timer()} s)", flush=True)
    metrics = {"parts": parts, "epsilon": sp.epsilon, "k": sp.k, "features": sp.features, "pixel_size": sp.pixel_size}
    return pd.concat(ratio_rows, ignore_index=True), metrics


def headline(metrics: dict) -> dict:
    """Per shift: the out-of-support share and the domain classifier's AUROC; on shifts whose
    membership is known, how well the split recovers it."""
    out = {}
    for name, m in metrics["parts"].items():
        row = {"out_of_support_fraction": m["out_of_support_fraction"], "domain_auroc": m["domain_auroc"]}
        if "membership" in m:
            row["membership"] = {k: m["membership"][k] for k in ("auroc", "precision", "recall")}
        out[name] = row
    return {"parts": out}
