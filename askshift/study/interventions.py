"""Step `interventions` (paper Sec. 6): pre-training and bias interventions are complementary.

Per reference variant with a spurious attribute (default: spurious_tint), ``trials`` seeds of
four arms -- scratch, scratch+DFR, pre-trained (FT), pre-trained+DFR -- and, with
``interventions.reweight``, group-balanced re-weighting during training (scratch_rw,
pretrained_rw). DFR is fitted on the reference validation split (held out from training, with
group labels). Every model and the variant's baselines are evaluated on the reference test
split, on each shifted set of the variant, and on that set made out-of-support on top
(``interventions.compose``: flip by default; the paper's CIFAR-10 appendix uses tint + pad).
Then: ER and worst-group accuracy per arm with intervals, and the corrected-examples overlaps.

* :func:`apply_dfr` -- DFR exactly as PAPER.md defines it, folded back into a copy of the model.
* :func:`compose_shift` -- a shifted set made out-of-support on top of its in-support shift.
* :func:`run_arms` / :func:`analyse` / :func:`claims` -- the arms (independent jobs, spread as
  ``ASKSHIFT_FANOUT`` says), their ER and corrected examples, and the paper's claims as rows of
  the report's claims table.
* :func:`run` -- all of it for every variant of ``interventions.variants``.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from askshift.data import store
from askshift.data.store import Dataset
from askshift.io import read_json, write_json
from askshift.data.worlds import COMPOSE
from askshift.methods import shifts
from askshift.methods.er_tables import er_table, pair_frame, paired_difference, per_trial_er
from askshift.methods.interventions import (DEFAULT_CS, corrected_analysis, fit_dfr, group_balanced_weights,
                                            minority_groups, select_C, split_heldout)
from askshift.methods.metrics import accuracy_points, worst_group_accuracy
from askshift.nn import models, train
from askshift.nn.config import TrainConfig
from askshift.study import fanout, layout
from askshift.study.config import scratch_model
from askshift.study.stage import Timer, set_threads
from askshift.study.arms import predict_frame, train_arm
from askshift.study.training import train_config



def apply_dfr(model, heldout: Dataset, *, Cs=DEFAULT_CS, val_fraction: float = 0.5, seed: int = 0,
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
    fit_idx, val_idx = split_heldout(g, val_fraction=val_fraction, seed=seed)
    sel = select_C(feats[fit_idx], y[fit_idx], g[fit_idx], feats[val_idx], y[val_idx], g[val_idx],
                     Cs=Cs, seed=seed, num_classes=num_classes)
    head = fit_dfr(feats, y, g, C=sel.best_C, seed=seed, num_classes=num_classes)
    dfr_model = copy.deepcopy(model)
    models.set_head(dfr_model, head.weight, head.bias)
    folded = train.predict(dfr_model, heldout.images, batch_size=batch_size, device=device)
    info = {
        "C": sel.best_C,
        "val_group_balanced_accuracy": {f"{c:g}": float(a) for c, a in zip(sel.Cs, sel.group_balanced_accuracy)},
        "converged": bool(head.converged),
        "n_iter": head.n_iter,
        "n_heldout": int(len(heldout)),
        "n_groups": int(len(np.unique(g))),
        "sample_weight_sum": head.sample_weight_sum,
        "fold_error": float(np.max(np.abs(folded - head.logits(feats)))),
        "heldout_worst_group_accuracy": worst_group_accuracy(y, folded.argmax(1), g),
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


@dataclass(frozen=True)
class ArmSetup:
    """What the arm jobs of one variant share (self-contained for a worker process or a SLURM
    job: :mod:`askshift.study.fanout`)."""

    train_set: Dataset
    heldout: Dataset
    eval_sets: dict
    arch: str
    arch_kwargs: dict
    num_classes: int
    pretrained: str
    pretrained_arch: str | None
    dfr_kwargs: dict
    batch_size: int
    device: str
    prefix: str
    stage_cfg: Any = None     # the stage's params: its thread settings, also in a worker process


@dataclass(frozen=True)
class ArmJob:
    """One trained model of an arm (and its DFR twin when it is not re-weighted)."""

    setup: ArmSetup
    trial: int
    kind: str
    reweight: bool
    cfg: TrainConfig


def arm_job(job: ArmJob) -> dict:
    """Train one job's model, fit DFR on it (arms without re-weighting) and predict the evaluation
    sets: ``{"models", "rows", "preds", "dfr"}``."""
    t0, su = time.monotonic(), job.setup
    if su.stage_cfg is not None:
        set_threads(su.stage_cfg)
    arm = f"{job.kind}_rw" if job.reweight else job.kind
    name = f"{su.prefix}{arm}-t{job.trial}"
    model, hist = train_arm(job.kind, su.train_set, su.heldout, job.cfg, arch=su.arch, arch_kwargs=su.arch_kwargs,
                            num_classes=su.num_classes, pretrained=su.pretrained, pretrained_arch=su.pretrained_arch,
                            sample_weight=group_balanced_weights(su.train_set.groups) if job.reweight else None)
    named, dfr = [(name, model, arm)], {}
    print(f"{name}: {len(su.train_set)} images, {job.cfg.epochs} epochs, held-out acc "
          f"{hist[-1].get('val_acc', float('nan')):.4f} ({time.monotonic() - t0:.1f} s)", flush=True)
    if not job.reweight:
        dfr_model, info = apply_dfr(model, su.heldout, seed=job.cfg.seed, batch_size=su.batch_size,
                                    device=su.device, **su.dfr_kwargs)
        dname = f"{su.prefix}{job.kind}_dfr-t{job.trial}"
        dfr[dname] = info
        named.append((dname, dfr_model, f"{job.kind}_dfr"))
        print(f"{dname}: C={info['C']:g}, held-out worst-group acc "
              f"{info['heldout_worst_group_accuracy']:.4f}, fold error {info['fold_error']:.1e}", flush=True)
    return {"models": {n: m for n, m, _ in named},
            "rows": [{"model": n, "arm": a, "kind": job.kind, "trial": job.trial, "seed": job.cfg.seed}
                     for n, _, a in named],
            "preds": [predict_frame(m, n, su.eval_sets, batch_size=su.batch_size, device=su.device)
                      for n, m, _ in named],
            "dfr": dfr}


def run_arms(train_set: Dataset, heldout: Dataset, eval_sets: dict[str, Dataset], *, trials: int,
             reweight: bool, configs: dict[tuple[str, int], TrainConfig], arch: str, arch_kwargs: dict,
             num_classes: int, pretrained: str, dfr_kwargs: dict, pretrained_arch: str | None = None, batch_size: int = 1024, device: str = "auto",
             prefix: str = "", stage_cfg=None, scratch: Path | None = None):
    """Train and evaluate the arms, ``trials`` times each.

    Arms: ``scratch`` and ``pretrained`` (FT of the pre-trained checkpoint); ``<arm>_dfr``: the
    same model with its last layer re-fitted by :func:`apply_dfr` on ``heldout``; with
    ``reweight``, ``<arm>_rw``: trained with group-balanced loss weights ``N / (G n_g)`` on the
    training set. An arm and its ``_rw`` twin share the trial's seed (paired comparison).
    ``configs[(kind, trial)]`` is each run's recipe and seed; ``arch`` / ``arch_kwargs`` the
    scratch arm's model, ``pretrained_arch`` the pre-trained checkpoint's (default ``arch``).
    The trained models are independent jobs (:func:`arm_job`), spread as ``ASKSHIFT_FANOUT``
    says (:mod:`askshift.study.fanout`; ``scratch`` holds submitit's logs) with the serial
    run's results; ``stage_cfg`` gives each job the stage's thread settings.

    Returns ``(models, info, predictions, dfr_info)``: models by name, one info row per model
    (model, arm, kind, trial, seed), per-example predictions on ``eval_sets``, and the DFR fit
    details per DFR model.
    """
    setup = ArmSetup(train_set, heldout, eval_sets, arch, arch_kwargs, num_classes, pretrained, pretrained_arch,
                     dfr_kwargs, batch_size, device, prefix, stage_cfg)
    jobs = [ArmJob(setup, trial, kind, rw, configs[kind, trial]) for trial in range(trials)
            for kind in ("scratch", "pretrained") for rw in ((False, True) if reweight else (False,))]
    done = fanout.run_all(arm_job, jobs, scratch or layout.CHECKPOINTS / "fanout" / "interventions")
    trained = {n: m for d in done for n, m in d["models"].items()}
    dfr_info = {n: i for d in done for n, i in d["dfr"].items()}
    rows = [r for d in done for r in d["rows"]]
    preds = [p for d in done for p in d["preds"]]
    return trained, pd.DataFrame(rows), pd.concat(preds, ignore_index=True), dfr_info


def analyse(predictions: pd.DataFrame, info: pd.DataFrame, ref: str, shifts: dict[str, str], *,
            minority: set, scale: str = "probit", confidence: float = 0.95, threshold: float = 0.5,
            min_group_size: int = 1):
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
    points = accuracy_points(predictions, min_group_size)
    arms = {a: g["model"].tolist() for a, g in info[info["arm"] != "baseline"].groupby("arm", sort=False)}
    er_rows, counts, overlaps, metrics = [], [], [], {"arms": {}, "corrected": {}}
    for shift, shifted in shifts.items():
        pairs = pair_frame(points, info, ref, shifted)
        er = er_table(pairs, scale=scale, confidence=confidence)
        er.insert(0, "shift", shift)
        er_rows.append(er)
        metrics["arms"][shift] = {
            "fit_r2": float(er["r2"].iloc[0]), "n_baseline": int(er["n_baseline"].iloc[0]),
            **{r.arm: {"er": r.er, "er_low": r.er_low, "er_high": r.er_high, "ref_acc": r.ref_acc,
                       "shift_acc": r.shift_acc, "shift_wga": r.shift_wga,
                       "shift_wga_low": r.shift_wga_low, "shift_wga_high": r.shift_wga_high}
               for r in er.itertuples()}}
        trials = per_trial_er(pairs, scale=scale, confidence=confidence)
        others = er[er["arm"].isin(["scratch", "scratch_dfr", "pretrained"])]
        if "pretrained_dfr" in set(er["arm"]) and len(others):
            best = others.sort_values("er").iloc[-1]["arm"]
            d, lo, hi = paired_difference(trials, "pretrained_dfr", best, confidence)
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


# --------------------------------------------------------------------------------------------
# the step
# --------------------------------------------------------------------------------------------
def arm_config(cfg, kind: str, trial: int, variant: str, n_train: int) -> TrainConfig:
    """Recipe of one arm's model: the baseline recipe from scratch, the fine-tuning recipe (with
    the fine-tunes' minimum number of steps) from the pre-trained model."""
    seed = layout.run_seed(cfg.seed, "interventions", variant, kind, trial)
    if kind == "scratch":
        return train_config(cfg.baseline.train, cfg.compute, seed)
    f = cfg.finetune
    epochs = layout.epochs_for(n_train, f.train.batch_size, f.train.epochs, f.min_steps)
    return train_config({**f.train, "epochs": epochs}, cfg.compute, seed, n_train)


def evaluation_sets(cfg, variant: str, ref: Dataset) -> tuple[dict[str, Dataset], dict[str, str]]:
    """The variant's reference test split and shifted sets (each also composed with
    ``interventions.compose``); and {shift name: dataset name} of the shifts."""
    ref_name, how = layout.reference(variant), cfg.interventions.compose
    sets, names = {ref_name: ref.split("test")}, {}
    for name, pair in layout.read_shift_index().items():
        if pair["reference"] != ref_name:
            continue
        ds = store.load(layout.dataset_dir(pair["shifted"]))
        sets[pair["shifted"]] = ds
        names[name] = pair["shifted"]
        if how != "none":
            sets[f"{pair['shifted']}+{how}"] = compose_shift(ds, how, pad_pixels=cfg.curate.pad.pixels,
                                                             pad_value=cfg.curate.pad.value)
            names[f"{name}+{how}"] = f"{pair['shifted']}+{how}"
    return sets, names


def baseline_predictions(variant: str, sets: dict[str, Dataset], batch_size: int, device: str):
    """The variant's baselines (the ER line): one info row each and their predictions."""
    rows = [r for r in read_json(layout.model_index("baseline")) if r["variant"] == variant]
    info = pd.DataFrame([{"model": r["name"], "variant": variant, "arm": "baseline", "kind": "scratch",
                          "trial": i, "seed": -1} for i, r in enumerate(rows)])
    preds = pd.concat([predict_frame(models.load_model(r["path"]), r["name"], sets, batch_size, device)
                       for r in rows], ignore_index=True)
    return info, preds


def run(cfg, out_models: Path) -> tuple[dict[str, pd.DataFrame], dict]:
    """Every variant's arms, trained, evaluated and analysed; models saved under ``out_models``
    (with ``index.json``). Returns the tables (predictions, points, er, corrected, overlap)
    and the metrics."""
    timer = Timer()
    iv, rob = cfg.interventions, cfg.robustness
    device, bs = cfg.compute.device, cfg.evaluate.batch_size
    infos, preds, ers, counts, overlaps, claim_rows = [], [], [], [], [], []
    trained, dfr_info = {}, {}
    metrics: dict = {"arms": {}, "corrected": {}}
    arch, arch_kwargs = scratch_model(cfg)
    for variant in iv.variants:
        ref = store.load(layout.dataset_dir(layout.reference(variant)))
        tr, heldout = ref.split("train"), ref.split("val")
        sets, shift_names = evaluation_sets(cfg, variant, ref)
        base_info, base_preds = baseline_predictions(variant, sets, bs, device)
        configs = {(kind, t): arm_config(cfg, kind, t, variant, len(tr))
                   for t in range(iv.trials) for kind in ("scratch", "pretrained")}
        models_v, info, pred, dinfo = run_arms(
            tr, heldout, sets, trials=iv.trials, reweight=iv.reweight, configs=configs,
            arch=arch, arch_kwargs=arch_kwargs, num_classes=int(ref.meta["label"].max()) + 1,
            pretrained=str(layout.PRETRAINED_MODEL), pretrained_arch=cfg.model.arch, dfr_kwargs={"Cs": list(iv.dfr.Cs), "val_fraction": iv.dfr.val_fraction},
            batch_size=bs, device=device, prefix=f"{variant}/", stage_cfg=cfg)
        trained.update(models_v)
        print(f"{variant}: {len(models_v)} arm models ({timer()} s)", flush=True)
        dfr_info.update(dinfo)
        info.insert(1, "variant", variant)
        info_v = pd.concat([base_info, info], ignore_index=True)
        preds_v = pd.concat([base_preds, pred], ignore_index=True)
        infos.append(info_v)
        preds.append(preds_v)
        er, c, o, m = analyse(preds_v, info_v, layout.reference(variant), shift_names,
                              minority=minority_groups(tr.groups), scale=rob.scale, confidence=rob.confidence,
                              threshold=iv.threshold, min_group_size=cfg.evaluate.min_group_size)
        for frame in (er, c, o):
            frame.insert(0, "variant", variant)
        ers.append(er)
        counts.append(c)
        overlaps.append(o)
        metrics["arms"][variant] = m["arms"]
        metrics["corrected"][variant] = m["corrected"]
        in_shift = next(s for s in shift_names if "+" not in s)
        composed = f"{in_shift}+{iv.compose}" if iv.compose != "none" else None
        claim_rows += claims(m["arms"], in_shift, composed, what=f" ({variant}, {iv.trials} trials)")
        _print_variant(variant, shift_names, er, m["corrected"])

    info_all = pd.concat(infos, ignore_index=True)
    preds_all = pd.concat(preds, ignore_index=True)
    save_models(trained, info_all, dfr_info, out_models)
    metrics["dfr"] = {"max_fold_error": max(d["fold_error"] for d in dfr_info.values()),
                      "all_converged": all(d["converged"] for d in dfr_info.values())}
    metrics["claims"] = claim_rows
    tables = {"predictions": preds_all, "points": info_all.merge(accuracy_points(preds_all, cfg.evaluate.min_group_size),
                                                                  on="model"),
              "er": pd.concat(ers, ignore_index=True), "corrected": pd.concat(counts, ignore_index=True),
              "overlap": pd.concat(overlaps, ignore_index=True)}
    return tables, metrics


def save_models(trained: dict, info: pd.DataFrame, dfr_info: dict, out: Path) -> None:
    """Every arm's model and ``index.json`` (model, arm, trial, seed, path, DFR fit)."""
    index = []
    for r in info[info["arm"] != "baseline"].to_dict("records"):
        fname = f"{r['model'].replace('/', '__')}.pt"
        models.save_model(trained[r["model"]], out / fname)
        index.append({**r, "path": str(layout.models_dir("interventions") / fname), "dfr": dfr_info.get(r["model"])})
    write_json(out / "index.json", index)


def _print_variant(variant: str, shift_names: dict, er: pd.DataFrame, corrected: dict) -> None:
    for shift in shift_names:
        e = er[er["shift"] == shift]
        k = corrected.get(shift, {})
        print(f"{variant} / {shift}: ER " + ", ".join(f"{r.arm} {r.er:+.4f}" for r in e.itertuples())
              + f" | corrected by pretrained {k.get('pretrained')}, by scratch_dfr {k.get('scratch_dfr')}, "
                f"both {k.get('both')} (chance {k.get('expected_both', float('nan')):.1f})", flush=True)


HEADLINE_ARM = ("er", "er_low", "er_high", "shift_wga")


def headline(metrics: dict) -> dict:
    """Per variant and shift: each arm's ER with its interval and shifted worst-group accuracy,
    the gain of combining pre-training and DFR, and the fit's r^2."""
    out = {}
    for variant, by_shift in metrics["arms"].items():
        for shift, arms in by_shift.items():
            row = {"fit_r2": arms["fit_r2"]}
            for arm, v in arms.items():
                if isinstance(v, dict) and arm != "combination_gain":
                    row[arm] = {k: v[k] for k in HEADLINE_ARM}
            if "combination_gain" in arms:
                row["combination_gain"] = {k: arms["combination_gain"][k] for k in ("er_difference", "low", "high")}
            out.setdefault(variant, {})[shift] = row
    return {"arms": out}
