"""Step `robustness`: effective robustness per shift, with intervals and fit quality, from the
accuracy table of the evaluate step."""
from __future__ import annotations

import pandas as pd

from askshift.methods.er_tables import pair_table, shift_er
from askshift.study import layout


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


def run(cfg, acc: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], dict]:
    """ER of the pre-trained strategies on every shift of the shift index. Returns the tables
    ``er``, ``points`` (the models' accuracies) and ``lines`` (the fits, for plots), and the
    metrics."""
    rob = cfg.robustness
    tables: dict[str, list] = {"er": [], "points": [], "lines": []}
    shifts = {}
    for name, pair in layout.read_shift_index().items():
        points = pair_table(acc, pair["reference"], pair["shifted"], rob.metric)
        er, line, fit = shift_er(points, rob.scale, rob.confidence, rob.n_boot,
                                 layout.run_seed(cfg.seed, "bootstrap", name))
        for key, frame in (("er", er), ("points", points), ("lines", line)):
            frame.insert(0, "shift", name)
            frame.insert(1, "kind", pair["kind"])
            tables[key].append(frame)
        shifts[name] = {"kind": pair["kind"], **headline(er)}
        print(f"{name:18s} {pair['kind']:15s} ER mean {shifts[name]['er_mean']:+.4f}  "
              f"(fit r2 {fit.r2:.3f}, n {fit.n})", flush=True)
    metrics = {"scale": rob.scale, "metric": rob.metric, "finetune_dataset": cfg.finetune.dataset,
               "shifts": shifts}
    return {k: pd.concat(v, ignore_index=True) for k, v in tables.items()}, metrics
