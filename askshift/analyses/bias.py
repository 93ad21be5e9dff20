"""Sec. 6: pre-training and bias interventions.

* :func:`apply_dfr` -- DFR exactly as PAPER.md defines it: penultimate features of a held-out
  set with group labels, standardised, an L2 logistic regression with group-balanced sample
  weights ``N / (G n_g)`` (``C`` picked by worst-group accuracy on half of the held-out set,
  then refitted on all of it), folded back into a copy of the model's last layer.
* :func:`compose_shift` -- a shifted set made out-of-support on top of its in-support shift
  (the setting of the paper's CIFAR-10 "tint + pad" appendix).
* :func:`minority_groups` -- groups rarer than the median group in the reference training set.
* :func:`corrected_analysis` -- which examples each intervention corrects (usually wrong for
  the baseline arm, usually right with the intervention) and the pairwise overlaps.
"""
from __future__ import annotations

import copy
import itertools

import numpy as np
import pandas as pd

from askshift import interventions as I
from askshift import models, shifts, train
from askshift.analyses.common import correctness_matrix
from askshift.data.store import Dataset

COMPOSE = ("none", "pad", "flip")


def apply_dfr(model, heldout: Dataset, *, Cs=I.DEFAULT_CS, val_fraction: float = 0.5, seed: int = 0,
              batch_size: int = 1024, device: str = "auto"):
    """A copy of ``model`` whose last layer is the DFR head fitted on ``heldout``.

    Returns ``(dfr_model, info)``; ``info`` holds the chosen C, the validation worst-group
    accuracy per C, the solver's convergence, the total sample weight (== N by construction)
    and ``fold_error``: the largest difference between the folded model's logits and the
    logistic regression's own decision values on the held-out set (a check that the
    standardisation was folded in correctly).
    """
    num_classes = int(model.num_classes)
    feats = train.extract_features(model, heldout.images, batch_size=batch_size, device=device)
    y, g = heldout.labels, heldout.groups
    fit_idx, val_idx = I.split_heldout(g, val_fraction=val_fraction, seed=seed)
    sel = I.select_C(feats[fit_idx], y[fit_idx], g[fit_idx], feats[val_idx], y[val_idx], g[val_idx],
                     Cs=Cs, seed=seed, num_classes=num_classes)
    head = I.fit_dfr(feats, y, g, C=sel.best_C, seed=seed, num_classes=num_classes)
    dfr_model = copy.deepcopy(model)
    models.set_head(dfr_model, head.weight, head.bias)
    folded = train.predict(dfr_model, heldout.images, batch_size=batch_size, device=device)
    info = {
        "C": sel.best_C,
        "val_worst_group_accuracy": {f"{c:g}": float(a) for c, a in zip(sel.Cs, sel.worst_group_accuracy)},
        "converged": bool(head.converged),
        "n_iter": head.n_iter,
        "n_heldout": int(len(heldout)),
        "n_groups": int(len(np.unique(g))),
        "sample_weight_sum": head.sample_weight_sum,
        "fold_error": float(np.max(np.abs(folded - head.logits(feats)))),
        "heldout_worst_group_accuracy": I.worst_group_accuracy(folded.argmax(1), y, g),
    }
    return dfr_model, info


def compose_shift(ds: Dataset, how: str, *, pad_pixels: int = 6, pad_value: int = 255) -> Dataset:
    """``ds`` with an out-of-support transform on top ("pad": a frame resized back, "flip":
    upside down, "none": unchanged). Labels and groups are kept."""
    if how == "none":
        return ds
    if how == "pad":
        images = shifts.pad(ds.images, pad_pixels, pad_value)
    elif how == "flip":
        images = shifts.vflip(ds.images)
    else:
        raise ValueError(f"compose={how!r} is not valid; choose one of {COMPOSE}")
    return Dataset(images, ds.meta.copy())


def minority_groups(train_groups) -> set:
    """Groups whose count in the reference training set is below the median group count
    (tinted sets: the 'tint does not match the label' groups; label shift: minority classes)."""
    values, counts = np.unique(np.asarray(train_groups), return_counts=True)
    return {v.item() for v, c in zip(values, counts) if c < np.median(counts)}


def corrected_analysis(predictions: pd.DataFrame, arms: dict[str, list[str]], dataset: str, *,
                       baseline: str, threshold: float = 0.5, minority: set | None = None
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Corrected examples of every arm against the ``baseline`` arm on ``dataset``.

    ``arms`` maps an arm name to its models (trials). An example is corrected by an arm when
    the baseline arm's correct-rate is ``< threshold`` and the arm's is ``> threshold``
    (:func:`askshift.interventions.corrected_examples`). Returns ``(counts, overlaps)``:
    one row per arm (n_corrected, fraction of the baseline's usual errors it corrects,
    share of minority-group examples among them) and one row per pair of arms (sizes, both,
    Jaccard, the overlap expected by chance, hypergeometric p-values).
    """
    base, index = correctness_matrix(predictions, arms[baseline], dataset)
    p = predictions[(predictions["dataset"] == dataset) & (predictions["model"] == arms[baseline][0])]
    groups = p.set_index("index").loc[index, "group"].to_numpy()
    is_minority = np.isin(groups, list(minority or ()))
    usually_wrong = base.mean(axis=0) < threshold
    masks, rows = {}, []
    for arm, names in arms.items():
        if arm == baseline:
            continue
        inter, idx = correctness_matrix(predictions, names, dataset)
        if not np.array_equal(idx, index):
            raise ValueError(f"arm {arm!r} was evaluated on other examples of {dataset!r}")
        m = I.corrected_examples(base, inter, threshold=threshold)
        masks[arm] = m
        rows.append({"dataset": dataset, "arm": arm, "n_examples": int(len(m)),
                     "n_baseline_usually_wrong": int(usually_wrong.sum()),
                     "n_corrected": int(m.sum()),
                     "fraction_of_baseline_errors": float(m.sum() / max(usually_wrong.sum(), 1)),
                     "minority_share_corrected": float(is_minority[m].mean()) if m.any() else float("nan"),
                     "minority_share_all": float(is_minority.mean())})
    pairs = []
    for a, b in itertools.combinations(masks, 2):
        o = I.overlap(masks[a], masks[b])
        pairs.append({"dataset": dataset, "arm_a": a, "arm_b": b, **o.as_dict()})
    return pd.DataFrame(rows), pd.DataFrame(pairs)


# --------------------------------------------------------------------------------------------
# the arms of Sec. 6
# --------------------------------------------------------------------------------------------
def run_arms(train_set: Dataset, heldout: Dataset, eval_sets: dict[str, Dataset], *, trials: int,
             reweight: bool, make_cfg, arch: str, arch_kwargs: dict, num_classes: int,
             pretrained: str, dfr_kwargs: dict, batch_size: int = 1024, device: str = "auto",
             prefix: str = "", log=print):
    """Train and evaluate the arms, ``trials`` times each.

    Arms: ``scratch`` and ``pretrained`` (FT of the pre-trained checkpoint); ``<arm>_dfr``: the
    same model with its last layer re-fitted by :func:`apply_dfr` on ``heldout``; with
    ``reweight``, ``<arm>_rw``: trained with group-balanced loss weights ``N / (G n_g)`` on the
    training set. An arm and its ``_rw`` twin share the trial's seed (paired comparison).
    ``make_cfg(kind, trial) -> TrainConfig`` gives each run's recipe and seed.

    Returns ``(models, info, predictions, dfr_info)``: models by name, one info row per model
    (model, arm, kind, trial, seed), per-example predictions on ``eval_sets``, and the DFR fit
    details per DFR model.
    """
    from askshift import interventions as I
    from askshift.analyses.common import predict_frame, train_arm

    weights = I.group_balanced_weights(train_set.groups)
    out_models, rows, preds, dfr_info = {}, [], [], {}

    def add(name, model, arm, kind, trial, seed):
        out_models[name] = model
        rows.append({"model": name, "arm": arm, "kind": kind, "trial": trial, "seed": seed})
        preds.append(predict_frame(model, name, eval_sets, batch_size=batch_size, device=device))

    for trial in range(trials):
        for kind in ("scratch", "pretrained"):
            cfg = make_cfg(kind, trial)
            for rw in ((False, True) if reweight else (False,)):
                arm = f"{kind}_rw" if rw else kind
                name = f"{prefix}{arm}-t{trial}"
                model, hist = train_arm(kind, train_set, heldout, cfg, arch=arch, arch_kwargs=arch_kwargs,
                                        num_classes=num_classes, pretrained=pretrained,
                                        sample_weight=weights if rw else None)
                add(name, model, arm, kind, trial, cfg.seed)
                log(f"{name}: {len(train_set)} images, {cfg.epochs} epochs, held-out acc "
                    f"{hist[-1].get('val_acc', float('nan')):.4f}")
                if not rw:
                    dfr_model, info = apply_dfr(model, heldout, seed=cfg.seed, batch_size=batch_size,
                                                device=device, **dfr_kwargs)
                    dname = f"{prefix}{kind}_dfr-t{trial}"
                    dfr_info[dname] = info
                    add(dname, dfr_model, f"{kind}_dfr", kind, trial, cfg.seed)
                    log(f"{dname}: C={info['C']:g}, held-out worst-group acc "
                        f"{info['heldout_worst_group_accuracy']:.4f}, fold error {info['fold_error']:.1e}")
    return out_models, pd.DataFrame(rows), pd.concat(preds, ignore_index=True), dfr_info


def analyse(predictions: pd.DataFrame, info: pd.DataFrame, ref: str, shifts: dict[str, str], *,
            minority: set, scale: str = "probit", confidence: float = 0.95, threshold: float = 0.5):
    """ER, worst-group accuracy and corrected examples of the arms of one reference variant.

    ``info`` has one row per model (model, arm, trial; arm ``baseline`` = the main study's
    baselines, the ER line); ``shifts`` maps a shift name to its dataset name in
    ``predictions``; ``ref`` is the reference test dataset. Returns ``(er, counts, overlaps,
    metrics)``: per (shift, arm) ER of accuracy with the official interval of the
    trial-averaged arm and the t-interval over trials, ER of the shifted worst-group accuracy
    (``wga_er*``), the arm's mean accuracies and worst-group accuracy with t-intervals; the
    corrected-examples counts and pairwise overlaps (baseline arm: ``scratch``); and a nested
    dict for the metrics file.
    """
    from askshift.analyses import common

    points = common.accuracy_points(predictions)
    arms = {a: g["model"].tolist() for a, g in info[info["arm"] != "baseline"].groupby("arm", sort=False)}
    er_rows, counts, overlaps, metrics = [], [], [], {"arms": {}, "corrected": {}}
    for shift, shifted in shifts.items():
        pairs = common.pair_frame(points, info, ref, shifted)
        er = common.er_table(pairs, scale=scale, confidence=confidence)
        er.insert(0, "shift", shift)
        er_rows.append(er)
        metrics["arms"][shift] = {
            "fit_r2": float(er["r2"].iloc[0]), "n_baseline": int(er["n_baseline"].iloc[0]),
            **{r.arm: {"er": r.er, "er_low": r.er_low, "er_high": r.er_high, "ref_acc": r.ref_acc,
                       "shift_acc": r.shift_acc, "shift_wga": r.shift_wga,
                       "shift_wga_low": r.shift_wga_low, "shift_wga_high": r.shift_wga_high}
               for r in er.itertuples()}}
        trials = common.per_trial_er(pairs, scale=scale, confidence=confidence)
        others = er[er["arm"].isin(["scratch", "scratch_dfr", "pretrained"])]
        if "pretrained_dfr" in set(er["arm"]) and len(others):
            best = others.sort_values("er").iloc[-1]["arm"]
            d, lo, hi = common.paired_difference(trials, "pretrained_dfr", best, confidence)
            metrics["arms"][shift]["combination_gain"] = {"over": best, "er_difference": d, "low": lo, "high": hi}
        c, o = corrected_analysis(predictions, arms, shifted, baseline="scratch", threshold=threshold,
                                  minority=minority)
        c.insert(0, "shift", shift)
        o.insert(0, "shift", shift)
        counts.append(c)
        overlaps.append(o)
        fwd = o[(o["arm_a"] == "pretrained") & (o["arm_b"] == "scratch_dfr")]
        rev = o[(o["arm_a"] == "scratch_dfr") & (o["arm_b"] == "pretrained")]
        if len(fwd) or len(rev):
            k = fwd.iloc[0] if len(fwd) else rev.iloc[0]
            n_pre, n_dfr = (k["n_a"], k["n_b"]) if len(fwd) else (k["n_b"], k["n_a"])
            metrics["corrected"][shift] = {
                "pretrained": int(n_pre), "scratch_dfr": int(n_dfr), "both": int(k["n_both"]),
                "jaccard": float(k["jaccard"]), "expected_both": float(k["expected_both"]),
                "ratio_to_chance": float(k["ratio_to_chance"]), "p_value_less": float(k["p_value_less"])}
    return (pd.concat(er_rows, ignore_index=True), pd.concat(counts, ignore_index=True),
            pd.concat(overlaps, ignore_index=True), metrics)


def claims(arms: dict, in_shift: str, composed_shift: str | None, what: str = "") -> list[dict]:
    """The paper's Sec. 6 claims as rows for the report's claims table (ER with an interval,
    rule ``positive``): DFR adds ER on the in-support shift, pre-training adds ER once the shift
    is also out-of-support, and pre-training + DFR beats the best single arm (paired difference
    over trials)."""
    out = []

    def row(text, shift, arm, er, low, high):
        a = arms[shift]
        out.append({"claim": text, "paper": "FMoW / CIFAR-10 tint+pad, 64 trials per arm", "er": er, "low": low,
                    "high": high, "r2": a["fit_r2"], "n_baseline": a["n_baseline"], "rule": "positive",
                    "what": f"{arm} on {shift}{what}"})

    if in_shift in arms and "scratch_dfr" in arms[in_shift]:
        r = arms[in_shift]["scratch_dfr"]
        row("DFR adds effective robustness on an in-support (spurious) shift", in_shift, "scratch_dfr",
            r["er"], r["er_low"], r["er_high"])
    if composed_shift and composed_shift in arms:
        a = arms[composed_shift]
        if "pretrained" in a:
            r = a["pretrained"]
            row("Pre-training adds effective robustness once the shift is also out-of-support", composed_shift,
                "pretrained", r["er"], r["er_low"], r["er_high"])
        if "combination_gain" in a:
            g = a["combination_gain"]
            row(f"Pre-training + DFR gives more ER than the best single arm ({g['over']}); paired difference",
                composed_shift, "pretrained_dfr", g["er_difference"], g["low"], g["high"])
    return out
