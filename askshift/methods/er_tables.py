"""ER tables of a study's models, from their accuracies (pure pandas over :mod:`robustness`).

Two kinds of comparisons, both against a line fitted on from-scratch baselines:

* pre-trained *strategies* with several copies each (:func:`pair_table`, :func:`shift_er`):
  the main study's ER per shift, copies averaged first, official interval + bootstrap;
* repeated *arms* of an analysis with several trials each (:func:`pair_frame`, :func:`arm_er`,
  :func:`er_table`): trials averaged first (the paper's rule for copies) with the official
  interval, plus the t-interval of the per-trial ERs (:func:`trial_interval`) and paired
  differences between arms that share seeds (:func:`paired_difference`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from askshift.methods import robustness as R

def pair_table(acc: pd.DataFrame, ref: str, shifted: str, metric: str) -> pd.DataFrame:
    """One row per model with its metric on the reference test set and on the shifted set."""
    keys = ["model", "variant", "role", "strategy", "copy"]
    a = acc[acc["dataset"] == ref].set_index(keys)[metric].rename("ref_acc")
    b = acc[acc["dataset"] == shifted].set_index(keys)[metric].rename("shift_acc")
    return pd.concat([a, b], axis=1, join="inner").reset_index()


def shift_er(points: pd.DataFrame, scale: str, confidence: float, n_boot: int, seed: int):
    """ER rows for the pre-trained strategies (copies averaged) and the fit's plot line."""
    base = points[points["role"] == "baseline"]
    pre = points[points["role"] == "pretrained"]
    avg = R.average_copies(pre, by=["variant", "strategy"], cols=["ref_acc", "shift_acc"])
    avg["model"] = avg["variant"] + "/pretrained/" + avg["strategy"]
    avg["role"] = "pretrained"
    frame = pd.concat([base[["model", "role", "strategy", "ref_acc", "shift_acc"]],
                       avg[["model", "role", "strategy", "ref_acc", "shift_acc", "n_copies"]]],
                      ignore_index=True)
    res = R.er_from_frame(frame, "ref_acc", "shift_acc", frame["role"] == "baseline",
                          scale=scale, confidence=confidence)
    out = res.to_frame()
    out["role"] = frame["role"].to_numpy()
    out["strategy"] = frame["strategy"].to_numpy()
    out["n_copies"] = frame["n_copies"].to_numpy() if "n_copies" in frame else np.nan
    out["boot_low"] = np.nan
    out["boot_high"] = np.nan
    if n_boot:
        is_pre = out["role"].to_numpy() == "pretrained"
        boot = R.bootstrap_er(base["ref_acc"], base["shift_acc"], out.loc[is_pre, "ref_acc"],
                              out.loc[is_pre, "shift_acc"], scale, n_boot=n_boot, seed=seed,
                              confidence=confidence)
        out.loc[is_pre, "boot_low"] = boot.er_low
        out.loc[is_pre, "boot_high"] = boot.er_high
    line = R.line_plot_data(res.fit, extra_points=frame["ref_acc"])
    return out, line, res.fit


# ---------------------------------------------------------------- repeated arms
def pair_frame(points: pd.DataFrame, info: pd.DataFrame, ref: str, shifted: str) -> pd.DataFrame:
    """One row per model (columns of ``info`` + ref_acc, ref_wga, shift_acc, shift_wga).

    ``points`` comes from :func:`accuracy_points`; ``info`` has one row per model with at least
    ``model``, ``arm`` and ``trial``. Models without both datasets are dropped.
    """
    def part(dataset, prefix):
        p = points[points["dataset"] == dataset].set_index("model")
        return pd.DataFrame({f"{prefix}_acc": p["accuracy"], f"{prefix}_wga": p["worst_group_accuracy"]})

    both = pd.concat([part(ref, "ref"), part(shifted, "shift")], axis=1, join="inner")
    return info.merge(both, left_on="model", right_index=True, how="inner")


def trial_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean over trials (nan bounds for 1 trial)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t(v.size - 1).ppf(0.5 + confidence / 2) * v.std(ddof=1) / np.sqrt(v.size))
    return m, m - half, m + half


def arm_er(pairs: pd.DataFrame, *, baseline_arm: str = "baseline", x: str = "ref_acc",
           y: str = "shift_acc", scale: str = "probit", confidence: float = 0.95) -> pd.DataFrame:
    """ER of every non-baseline arm against the line fitted on the ``baseline_arm`` rows.

    Per arm: ``er`` with ``er_low``/``er_high`` (official interval) of the trial-averaged
    accuracies; ``er_trials_mean/low/high`` (t-interval over the per-trial ERs); the
    trial-averaged ``x``/``y``; ``n_trials``; and the fit's r, r2, n_baseline.
    """
    base = pairs[pairs["arm"] == baseline_arm]
    fit = R.fit_line(base[x].to_numpy(), base[y].to_numpy(), scale, confidence=confidence,
                     models=base["model"].tolist(), ref_name=x, shift_name=y)
    rows = []
    for arm, g in pairs[pairs["arm"] != baseline_arm].groupby("arm", sort=False):
        avg = R.effective_robustness(fit, [g[x].mean()], [g[y].mean()], models=[arm])
        per_trial = R.effective_robustness(fit, g[x].to_numpy(), g[y].to_numpy(),
                                           models=g["model"].tolist())
        m, lo, hi = trial_interval(per_trial.er, confidence)
        rows.append({"arm": arm, "n_trials": len(g), x: float(g[x].mean()), y: float(g[y].mean()),
                     "predicted": float(avg.predicted[0]), "er": float(avg.er[0]),
                     "er_low": float(avg.er_low[0]), "er_high": float(avg.er_high[0]),
                     "er_trials_mean": m, "er_trials_low": lo, "er_trials_high": hi,
                     "r": fit.r, "r2": fit.r2, "n_baseline": fit.n})
    return pd.DataFrame(rows)


def arm_summary(pairs: pd.DataFrame, cols: tuple[str, ...] = ("ref_acc", "shift_acc", "shift_wga"),
                confidence: float = 0.95) -> pd.DataFrame:
    """Mean and t-interval over trials of each column, per arm (``<col>``, ``<col>_low``,
    ``<col>_high``)."""
    rows = []
    for arm, g in pairs.groupby("arm", sort=False):
        row = {"arm": arm, "n_trials": len(g)}
        for c in cols:
            row[c], row[f"{c}_low"], row[f"{c}_high"] = trial_interval(g[c], confidence)
        rows.append(row)
    return pd.DataFrame(rows)


def per_trial_er(pairs: pd.DataFrame, *, baseline_arm: str = "baseline", x: str = "ref_acc",
                 y: str = "shift_acc", scale: str = "probit", confidence: float = 0.95) -> pd.DataFrame:
    """ER of every non-baseline model (one row per trial: model, arm, trial, er)."""
    base = pairs[pairs["arm"] == baseline_arm]
    fit = R.fit_line(base[x].to_numpy(), base[y].to_numpy(), scale, confidence=confidence)
    rest = pairs[pairs["arm"] != baseline_arm]
    res = R.effective_robustness(fit, rest[x].to_numpy(), rest[y].to_numpy(), models=rest["model"].tolist())
    return pd.DataFrame({"model": rest["model"].to_numpy(), "arm": rest["arm"].to_numpy(),
                         "trial": rest["trial"].to_numpy(), "er": res.er})


def paired_difference(trial_er: pd.DataFrame, arm_a: str, arm_b: str, confidence: float = 0.95) -> tuple:
    """(mean, low, high) of ER(arm_a) - ER(arm_b) over trials paired by trial index (arms of one
    trial share their seed)."""
    a = trial_er[trial_er["arm"] == arm_a].set_index("trial")["er"]
    b = trial_er[trial_er["arm"] == arm_b].set_index("trial")["er"]
    both = a.index.intersection(b.index)
    return trial_interval((a[both] - b[both]).to_numpy(), confidence)


def er_table(pairs: pd.DataFrame, *, scale: str = "probit", confidence: float = 0.95) -> pd.DataFrame:
    """Per arm: :func:`arm_er` of accuracy (``er``...), of the shifted worst-group accuracy
    against reference accuracy (``wga_er``, ``wga_er_low``, ``wga_er_high``, ``wga_r2``), and the
    t-intervals over trials of the accuracies (:func:`arm_summary`)."""
    er = arm_er(pairs, scale=scale, confidence=confidence)
    if np.isfinite(pairs["shift_wga"].to_numpy(float)).all():
        wga = arm_er(pairs, y="shift_wga", scale=scale, confidence=confidence)
    else:  # no group of the shifted set is large enough for a worst-group accuracy
        wga = pd.DataFrame({"arm": er["arm"], "er": np.nan, "er_low": np.nan, "er_high": np.nan, "r2": np.nan})
    summ = arm_summary(pairs, confidence=confidence)
    er = er.merge(wga[["arm", "er", "er_low", "er_high", "r2"]].rename(
        columns=lambda c: c if c == "arm" else f"wga_{c}"), on="arm")
    return er.merge(summ.drop(columns=["n_trials", "ref_acc", "shift_acc"]), on="arm")


def correctness_matrix(predictions: pd.DataFrame, model_names: list[str], dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """(models x examples) boolean matrix of correct predictions on ``dataset`` and the example
    indices (columns, sorted); every model must have predicted every example."""
    p = predictions[(predictions["dataset"] == dataset) & predictions["model"].isin(model_names)]
    correct = (p["pred"] == p["label"]).to_numpy()
    table = pd.DataFrame({"model": p["model"].to_numpy(), "index": p["index"].to_numpy(),
                          "correct": correct}).pivot(index="model", columns="index", values="correct")
    missing = sorted(set(model_names) - set(table.index))
    if missing or table.isna().any().any():
        raise ValueError(f"predictions on {dataset!r} are incomplete (models without predictions: {missing})")
    table = table.loc[model_names]
    return table.to_numpy(dtype=bool), table.columns.to_numpy()
