"""Effective robustness of the study's models, per shift, from the accuracy table.

For each (reference, shifted) pair: the baseline fit over the from-scratch models of the pair's
reference variant, then the ER of each pre-trained strategy with its copies averaged first, with
the official mean-prediction interval and a bootstrap interval over baseline models.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from askshift import robustness as R


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


def headline(er_rows: pd.DataFrame) -> dict:
    """Per-shift numbers for `dvc metrics` / `dvc exp show`: mean ER over the pre-trained
    strategies, each strategy's ER with its interval, and the fit's r^2 and n."""
    pre = er_rows[er_rows["role"] == "pretrained"]
    first = er_rows.iloc[0]
    out = {"er_mean": float(pre["er"].mean()), "r2": float(first["r2"]),
           "n_baseline": int((er_rows["role"] == "baseline").sum())}
    for r in pre.itertuples():
        out[f"er_{r.strategy}"] = float(r.er)
        out[f"er_{r.strategy}_low"] = float(r.er_low)
        out[f"er_{r.strategy}_high"] = float(r.er_high)
    return out
