"""Step `split` (paper Sec. 5.2): split shifts into in-support and out-of-support parts.

For each shift of ``split.shifts``: a domain classifier (L2 logistic regression on pooled
pixels, frozen penultimate features of the pre-trained model, or both) tells the shift's
reference training images from its shifted images, cross-fitted over ``split.k`` folds; one
temperature is calibrated on all out-of-fold logits; a shifted example is out-of-support where
the density ratio p_ref/p_shift is below ``split.epsilon``. On the mixture shift, whose
membership is known, the split is scored (AUROC, precision, recall). Then the ER of the
pre-trained strategies on each part (in, out, all, and in-support re-weighted to the
out-of-support part's difficulty, cross-fitted over two halves of the baselines), each part
with its own baseline fit, from the evaluate step's per-example predictions.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from askshift.data import store
from askshift.methods.er_tables import correctness_matrix
from askshift.methods.split import (matched_er, membership_scores, part_er, part_points, part_weights,
                                    pixel_features, split_shift)
from askshift.nn import models, train
from askshift.study import layout
from askshift.study.stage import Timer

RUN_COLUMNS = ["model", "variant", "role", "strategy", "copy"]


def features(images, kind: str, pixel_size: int, pretrained=None, batch_size: int = 1024,
             device: str = "auto") -> np.ndarray:
    """The domain classifier's input: pooled pixels, frozen pre-trained features, or both."""
    parts = []
    if kind in ("pretrained", "both"):
        parts.append(train.extract_features(pretrained, images, batch_size=batch_size, device=device))
    if kind in ("pixels", "both"):
        parts.append(pixel_features(images, pixel_size))
    return np.hstack(parts)


def split_one(cfg, name: str, pair: dict, ref_features: np.ndarray, shifted: store.Dataset, acc: pd.DataFrame,
              preds: pd.DataFrame, shift_features: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """One shift: the density ratios, the split, its scores, and ER per part."""
    sp, rob = cfg.split, cfg.robustness
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

    # ER on each part, from the evaluate step's predictions of the reference variant's models
    info = acc[acc["dataset"] == pair["reference"]][RUN_COLUMNS + ["accuracy"]].rename(
        columns={"accuracy": "ref_acc"}).reset_index(drop=True)
    correct, index = correctness_matrix(preds, info["model"].tolist(), pair["shifted"])
    order = pd.Series(np.arange(len(meta)), index=meta["index"].to_numpy()).loc[index].to_numpy()
    parts = part_weights(oos[order], true_out=None if true_out is None else true_out[order])
    er = part_er(part_points(correct, info, parts), scale=rob.scale, confidence=rob.confidence,
                 min_examples=sp.min_part)
    matched = matched_er(correct, info, oos[order], scale=rob.scale, confidence=rob.confidence,
                         min_examples=sp.min_part)
    er = pd.concat([er, matched], ignore_index=True)
    er.insert(0, "shift", name)
    m["er"] = {}
    for part, g in er.groupby("part", sort=False):
        ok = g.dropna(subset=["er"]) if "er" in g else g.iloc[0:0]
        n_ex = g["n_examples"].iloc[0] if "n_examples" in g else None
        m["er"][part] = {"n_examples": int(n_ex) if pd.notna(n_ex) else None,
                         "er_mean": float(ok["er"].mean()) if len(ok) else None,
                         "r2": float(ok["r2"].iloc[0]) if len(ok) else None,
                         **{f"er_{r.strategy}": r.er for r in ok.itertuples()}}
    return ratios, er, m


def claims(parts: dict, er_all: pd.DataFrame) -> list[dict]:
    """The Sec. 5.2 claims on each natural shift, as rows of the report's claims table."""
    out = []
    for name, m in parts.items():
        if m["kind"] != "natural":
            continue
        for part, rule, text in (("out", "positive", "Pre-training gives ER on the out-of-support part of {}"),
                                 ("in", "near_zero", "Pre-training gives ~no ER on the in-support part of {}")):
            rows = er_all[(er_all["shift"] == name) & (er_all["part"] == part)].dropna(subset=["er"])
            if len(rows):
                out.append({"claim": text.format(name), "paper": "Sketch: out 12.3% vs in 1.1%",
                            "er": float(rows["er"].mean()), "low": float(rows["er_low"].mean()),
                            "high": float(rows["er_high"].mean()), "r2": float(rows["r2"].iloc[0]),
                            "n_baseline": int(rows["n_baseline"].iloc[0]), "rule": rule,
                            "what": "mean over the pre-trained strategies"})
    return out


def run(cfg, acc: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], dict]:
    """Every shift of ``split.shifts``; tables ``ratios`` and ``er`` and the metrics."""
    timer = Timer()
    sp = cfg.split
    device, bs = cfg.compute.device, cfg.evaluate.batch_size
    index = layout.read_shift_index()
    wanted = [index[s]["shifted"] for s in sp.shifts]
    preds = pd.read_parquet(layout.results("evaluate") / "predictions.parquet", filters=[("dataset", "in", wanted)])
    pre = models.load_model(layout.PRETRAINED_MODEL) if sp.features != "pixels" else None
    ref_feats: dict[str, np.ndarray] = {}
    ratio_rows, er_rows, parts = [], [], {}
    for name in sp.shifts:
        pair = index[name]
        if pair["reference"] not in ref_feats:
            ref_images = store.load(layout.dataset_dir(pair["reference"])).split("train").images
            ref_feats[pair["reference"]] = features(ref_images, sp.features, sp.pixel_size, pre, bs, device)
        shifted = store.load(layout.dataset_dir(pair["shifted"]))
        ratios, er, m = split_one(cfg, name, pair, ref_feats[pair["reference"]], shifted, acc, preds,
                                  features(shifted.images, sp.features, sp.pixel_size, pre, bs, device))
        ratio_rows.append(ratios)
        er_rows.append(er)
        parts[name] = m
        print(f"{name:12s} out-of-support {m['out_of_support_fraction']:6.1%} of {m['n']} (T={m['temperature']:.3g}, "
              f"domain AUROC {m['domain_auroc']:.3f}); ER in {m['er'].get('in', {}).get('er_mean')}, "
              f"out {m['er'].get('out', {}).get('er_mean')}"
              + (f"; membership AUROC {m['membership']['auroc']:.3f} precision {m['membership']['precision']:.3f} "
                 f"recall {m['membership']['recall']:.3f}" if "membership" in m else "")
              + f" ({timer()} s)", flush=True)
    er_all = pd.concat(er_rows, ignore_index=True)
    metrics = {"parts": parts, "epsilon": sp.epsilon, "k": sp.k, "features": sp.features,
               "pixel_size": sp.pixel_size, "claims": claims(parts, er_all)}
    return {"ratios": pd.concat(ratio_rows, ignore_index=True), "er": er_all}, metrics
