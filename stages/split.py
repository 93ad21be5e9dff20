"""Stage `split` (paper Sec. 5.2): split shifts into in-support and out-of-support parts.

For each shift of `split.shifts`: a domain classifier (L2 logistic regression on pooled pixels,
frozen penultimate features of the pre-trained model, or both) tells the shift's reference training
images from its shifted images, cross-fitted over `split.k` folds; one temperature is
calibrated on all out-of-fold logits; a shifted example is out-of-support where the density
ratio p_ref/p_shift is below `split.epsilon`. On the mixture shift, whose membership is known,
the split is scored (AUROC, precision, recall). Then the ER of the pre-trained strategies on
each part (in, out, all, and in-support re-weighted to the out-of-support part's difficulty,
cross-fitted over two halves of the baselines),
each part with its own baseline fit, from the evaluate stage's per-example predictions.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from askshift import models, study, train
from askshift import splitting as S
from askshift.analyses import common
from askshift.analyses import split as SP
from askshift.data import store
from askshift.params import load_params, main_guard
from askshift.stagekit import Timer, atomic_path, write_json

OUT = study.RESULTS / "split"
PRETRAINED = study.MODELS / "pretrain" / "model.pt"
RUN_COLUMNS = ["model", "variant", "role", "strategy", "copy"]


def main() -> None:
    params = load_params()
    timer = Timer()
    cfg, rob = params["split"], params["robustness"]
    device, bs = params["compute"]["device"], params["evaluate"]["batch_size"]
    shift_index = json.loads((study.DATASETS / "shifts.json").read_text())
    acc = pd.read_csv(study.RESULTS / "evaluate" / "accuracies.csv")
    wanted = [shift_index[s]["shifted"] for s in cfg["shifts"]]
    preds = pd.read_parquet(study.RESULTS / "evaluate" / "predictions.parquet",
                            filters=[("dataset", "in", wanted)])
    pre = models.load_model(PRETRAINED) if cfg["features"] != "pixels" else None

    def features(images):
        parts = []
        if cfg["features"] in ("pretrained", "both"):
            parts.append(train.extract_features(pre, images, batch_size=bs, device=device))
        if cfg["features"] in ("pixels", "both"):
            parts.append(SP.pixel_features(images, cfg["pixel_size"]))
        return np.hstack(parts)

    ratio_rows, er_rows, metrics = [], [], {"parts": {}}
    ref_feats: dict[str, np.ndarray] = {}
    for name in cfg["shifts"]:
        pair = shift_index[name]
        if pair["reference"] not in ref_feats:
            ref_feats[pair["reference"]] = features(store.load(study.DATASETS / pair["reference"]).split("train").images)
        shifted = store.load(study.DATASETS / pair["shifted"])
        res, oos = SP.split_shift(ref_feats[pair["reference"]], features(shifted.images), k=cfg["k"], C=cfg["C"],
                                  seed=study.run_seed(params["seed"], "split", name), epsilon=cfg["epsilon"])
        meta = shifted.meta
        true_out = ~meta["in_support"].to_numpy(bool) if "in_support" in meta else None
        ratios = pd.DataFrame({"shift": name, "index": meta["index"].to_numpy(), "label": meta["label"].to_numpy(),
                               "log_ratio": res.log_ratio_shift, "out_of_support": oos})
        if true_out is not None:
            ratios["true_out_of_support"] = true_out
        ratio_rows.append(ratios)
        m = {"kind": pair["kind"], "n": int(len(oos)), "out_of_support_fraction": float(oos.mean()),
             "temperature": res.temperature, "domain_auroc": res.domain_auroc,
             "log_loss_calibrated": res.log_loss_calibrated, "log_loss_uncalibrated": res.log_loss_uncalibrated}
        if true_out is not None:
            ms = S.membership_scores(res.ratio_shift, true_out, epsilon=cfg["epsilon"])
            m["membership"] = {"auroc": ms.auroc, "precision": ms.precision, "recall": ms.recall, "f1": ms.f1,
                               "n_predicted_out": ms.n_predicted_out, "n_true_out": ms.n_true_out}

        # ER on each part, from the evaluate stage's predictions of the reference variant's models
        info = acc[acc["dataset"] == pair["reference"]][RUN_COLUMNS + ["accuracy"]].rename(
            columns={"accuracy": "ref_acc"}).reset_index(drop=True)
        correct, index = common.correctness_matrix(preds, info["model"].tolist(), pair["shifted"])
        order = pd.Series(np.arange(len(meta)), index=meta["index"].to_numpy()).loc[index].to_numpy()
        parts = SP.part_weights(oos[order], true_out=None if true_out is None else true_out[order])
        er = SP.part_er(SP.part_points(correct, info, parts), scale=rob["scale"], confidence=rob["confidence"],
                        min_examples=cfg["min_part"])
        matched = SP.matched_er(correct, info, oos[order], scale=rob["scale"], confidence=rob["confidence"],
                                min_examples=cfg["min_part"])
        er = pd.concat([er, matched], ignore_index=True)
        er.insert(0, "shift", name)
        er_rows.append(er)
        m["er"] = {}
        for part, g in er.groupby("part", sort=False):
            ok = g.dropna(subset=["er"]) if "er" in g else g.iloc[0:0]
            n_ex = g["n_examples"].iloc[0] if "n_examples" in g else None
            m["er"][part] = {"n_examples": int(n_ex) if pd.notna(n_ex) else None,
                             "er_mean": float(ok["er"].mean()) if len(ok) else None,
                             "r2": float(ok["r2"].iloc[0]) if len(ok) else None,
                             **{f"er_{r.strategy}": r.er for r in ok.itertuples()}}
        metrics["parts"][name] = m
        print(f"{name:12s} out-of-support {oos.mean():6.1%} of {len(oos)} (T={res.temperature:.3g}, domain AUROC "
              f"{res.domain_auroc:.3f}); ER in {m['er'].get('in', {}).get('er_mean')}, "
              f"out {m['er'].get('out', {}).get('er_mean')}"
              + (f"; membership AUROC {m['membership']['auroc']:.3f} precision {m['membership']['precision']:.3f} "
                 f"recall {m['membership']['recall']:.3f}" if true_out is not None else "")
              + f" ({timer()} s)", flush=True)

    er_all = pd.concat(er_rows, ignore_index=True)
    claims = []
    for name, m in metrics["parts"].items():
        if m["kind"] != "natural":
            continue
        for part, rule, text in (("out", "positive", "Pre-training gives ER on the out-of-support part of {}"),
                                 ("in", "near_zero", "Pre-training gives ~no ER on the in-support part of {}")):
            rows = er_all[(er_all["shift"] == name) & (er_all["part"] == part)].dropna(subset=["er"])
            if len(rows):
                claims.append({"claim": text.format(name), "paper": "Sketch: out 12.3% vs in 1.1%",
                               "er": float(rows["er"].mean()), "low": float(rows["er_low"].mean()),
                               "high": float(rows["er_high"].mean()), "r2": float(rows["r2"].iloc[0]),
                               "n_baseline": int(rows["n_baseline"].iloc[0]), "rule": rule,
                               "what": "mean over the pre-trained strategies"})
    OUT.mkdir(parents=True, exist_ok=True)
    with atomic_path(OUT / "ratios.csv") as tmp:
        pd.concat(ratio_rows, ignore_index=True).to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(OUT / "er.csv") as tmp:
        er_all.to_csv(tmp, index=False, float_format="%.6f")
    metrics.update(epsilon=cfg["epsilon"], k=cfg["k"], features=cfg["features"], pixel_size=cfg["pixel_size"],
                   claims=claims,
                   wall_seconds=timer())
    write_json(OUT / "metrics.json", common.json_clean(metrics))
    print(f"split done ({timer()} s)")


if __name__ == "__main__":
    main_guard(main)
