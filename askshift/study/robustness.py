"""Step `robustness`: effective robustness of the pre-trained strategies per shift, and on the
in- and out-of-support parts of the shifts that the split step split (Sec. 5.2), each with its
interval and the quality of its baseline fit."""
from __future__ import annotations

import numpy as np
import pandas as pd

from askshift.methods.er_tables import correctness_matrix, pair_table, shift_er
from askshift.methods.split import matched_er, part_er, part_points, part_weights
from askshift.study import layout

RUN_COLUMNS = ["model", "variant", "role", "strategy", "copy", "run"]


def shift_headline(er_rows: pd.DataFrame) -> dict:
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


def shift_tables(cfg, acc: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], dict]:
    """ER of the pre-trained strategies on every shift of the shift index whose variant has
    models. Returns the tables ``er``, ``points`` (the models' accuracies) and ``lines`` (the
    fits, for plots), and the per-shift headline numbers."""
    rob = cfg.robustness
    tables: dict[str, list] = {"er": [], "points": [], "lines": []}
    shifts = {}
    trained = set(acc["dataset"])  # shifts of variants without models (not in baseline.variants) are skipped
    for name, pair in layout.read_shift_index().items():
        if pair["reference"] not in trained:
            continue
        points = pair_table(acc, pair["reference"], pair["shifted"], rob.metric)
        er, line, fit = shift_er(points, rob.scale, rob.confidence, rob.n_boot,
                                 layout.run_seed(cfg.seed, "bootstrap", name))
        for key, frame in (("er", er), ("points", points), ("lines", line)):
            frame.insert(0, "shift", name)
            frame.insert(1, "kind", pair["kind"])
            tables[key].append(frame)
        shifts[name] = {"kind": pair["kind"], **shift_headline(er)}
        print(f"{name:18s} {pair['kind']:15s} ER mean {shifts[name]['er_mean']:+.4f}  "
              f"(fit r2 {fit.r2:.3f}, n {fit.n})", flush=True)
    return {k: pd.concat(v, ignore_index=True) for k, v in tables.items()}, shifts


def part_tables(cfg, acc: pd.DataFrame, preds: pd.DataFrame, ratios: pd.DataFrame) -> pd.DataFrame:
    """ER on the parts of every split shift: ``in``, ``out``, ``all``, ``in_matched`` (in-support
    examples re-weighted to the out-of-support part's difficulty, cross-fitted over two halves of
    the baselines) and, with known membership, ``true_in`` / ``true_out``; each part has its own
    baseline fit. ``ratios`` is the split step's table, ``preds`` the evaluate step's."""
    rob, index, rows = cfg.robustness, layout.read_shift_index(), []
    for name, r in ratios.groupby("shift", sort=False):
        pair = index[name]
        # accuracy on both axes: a part's shifted accuracy is the mean correctness on its examples
        info = acc[acc["dataset"] == pair["reference"]][RUN_COLUMNS + ["accuracy"]].rename(
            columns={"accuracy": "ref_acc"}).reset_index(drop=True)
        correct, examples = correctness_matrix(preds, info["model"].tolist(), pair["shifted"])
        r = r.set_index("index").loc[examples]
        oos = r["out_of_support"].to_numpy(bool)
        true_out = r["true_out_of_support"].to_numpy(bool) if r.get("true_out_of_support") is not None \
            and r["true_out_of_support"].notna().all() else None
        er = part_er(part_points(correct, info, part_weights(oos, true_out=true_out)), scale=rob.scale,
                     confidence=rob.confidence, min_examples=cfg.split.min_part)
        gate = {"scale": rob.scale, "confidence": rob.confidence, "min_examples": cfg.split.min_part,
                "min_share": cfg.split.matched_min_share}
        matched = [matched_er(correct, info, oos, **gate)]
        if true_out is not None:  # the control's check: on the truly in-support half it must give ~0
            matched.append(matched_er(correct, info, true_out, **gate, part="true_in_matched"))
        er = pd.concat([er, *matched], ignore_index=True)
        er.insert(0, "shift", name)
        rows.append(er)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


CHECK_EXAMPLES = 1000     # examples drawn from each half of a control-check mixture
CHECK_VARIANT = "plain"   # its reference test split is the check's known in-support half


def prediction_sets(ratios: pd.DataFrame) -> list[str]:
    """The datasets whose predictions the step reads: the split shifts, and the check variant's
    reference and shifted sets."""
    ref = layout.reference(CHECK_VARIANT)
    checked = {p["shifted"] for p in layout.read_shift_index().values() if p["reference"] == ref}
    return sorted({layout.shifted(s) for s in ratios["shift"].unique()} | checked | {ref})


def control_check(cfg, acc: pd.DataFrame, preds: pd.DataFrame, variant: str = CHECK_VARIANT) -> pd.DataFrame:
    """The difficulty-matched control on mixtures whose in-support half is known: reference test
    examples of ``variant`` (truly in-support: the truth is ER = 0) plus the examples of one of
    its shifted sets, for each such set. Ungated (every share reported), so the table shows how
    far the control strays from 0 as the difficulty overlap (``share``) shrinks; the
    ``split.matched_min_share`` gate is read against it."""
    rob, index, rows = cfg.robustness, layout.read_shift_index(), []
    ref = layout.reference(variant)
    info = acc[acc["dataset"] == ref][RUN_COLUMNS + ["accuracy"]].rename(
        columns={"accuracy": "ref_acc"}).reset_index(drop=True)
    if info.empty:
        return pd.DataFrame()
    models = info["model"].tolist()
    rng = np.random.default_rng(layout.run_seed(cfg.seed, "control-check", variant))
    c_in, _ = correctness_matrix(preds, models, ref)
    c_in = c_in[:, rng.permutation(c_in.shape[1])[:CHECK_EXAMPLES]]
    predicted = set(preds["dataset"].unique())
    for name, pair in index.items():
        if pair["reference"] != ref or pair["shifted"] not in predicted:
            continue
        c_out, _ = correctness_matrix(preds, models, pair["shifted"])
        c_out = c_out[:, rng.permutation(c_out.shape[1])[:CHECK_EXAMPLES]]
        oos = np.r_[np.zeros(c_in.shape[1], bool), np.ones(c_out.shape[1], bool)]
        er = matched_er(np.concatenate([c_in, c_out], axis=1), info, oos, scale=rob.scale,
                        confidence=rob.confidence, min_examples=cfg.split.min_part, part="true_in_matched")
        er.insert(0, "hard_half", name)
        er.insert(1, "kind", pair["kind"])
        rows.append(er)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def part_headline(parts: pd.DataFrame) -> dict:
    """{shift: {part: {n_examples, er_mean, r2, er_<strategy>...}}} for the metrics."""
    out: dict = {}
    for (name, part), g in parts.groupby(["shift", "part"], sort=False):
        ok = g.dropna(subset=["er"]) if "er" in g else g.iloc[0:0]
        n_ex = g["n_examples"].iloc[0] if "n_examples" in g else None
        out.setdefault(name, {})[part] = {
            "n_examples": int(n_ex) if pd.notna(n_ex) else None,
            "er_mean": float(ok["er"].mean()) if len(ok) else None,
            "r2": float(ok["r2"].iloc[0]) if len(ok) else None,
            **{f"er_{r.strategy}": r.er for r in ok.itertuples()}}
    return out


def part_claims(parts: pd.DataFrame, kinds: dict[str, str]) -> list[dict]:
    """The Sec. 5.2 claims on each natural shift and each of the paper's strategies (FT, LP-FT),
    as rows of the report's claims table."""
    out = []
    for name in dict.fromkeys(parts["shift"]):
        if kinds.get(name) != "natural":
            continue
        for part, rule, text in (("out", "positive", "Pre-training gives ER on the out-of-support part of {} ({})"),
                                 ("in", "near_zero", "Pre-training gives ~no ER on the in-support part of {} ({})")):
            rows = parts[(parts["shift"] == name) & (parts["part"] == part)].dropna(subset=["er"])
            for r in rows[rows["strategy"].isin(["ft", "lpft"])].itertuples():
                out.append({"key": f"{name}/{part}/{r.strategy}", "claim": text.format(name, r.strategy.upper()),
                            "paper": "Sketch: out 12.3% vs in 1.1%", "er": float(r.er), "low": float(r.er_low),
                            "high": float(r.er_high), "r2": float(r.r2), "n_baseline": int(r.n_baseline),
                            "rule": rule, "what": f"{r.strategy.upper()} on {int(r.n_examples)} examples"})
    return out


def run(cfg, acc: pd.DataFrame, preds: pd.DataFrame, ratios: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], dict]:
    """The per-shift tables (``er``, ``points``, ``lines``), the per-part table (``parts``), the
    difficulty control's check (``control_check``) and the metrics (per shift, per part of each
    split shift, and the Sec. 5.2 claims)."""
    tables, shifts = shift_tables(cfg, acc)
    parts = part_tables(cfg, acc, preds, ratios)
    check = control_check(cfg, acc, preds)
    for name, p in part_headline(parts).items():
        print(f"{name:18s} parts: " + ", ".join(f"{k} {v['er_mean']:+.4f}" for k, v in p.items()
                                                 if v["er_mean"] is not None and np.isfinite(v["er_mean"])), flush=True)
    metrics = {"scale": cfg.robustness.scale, "metric": cfg.robustness.metric,
               "finetune_dataset": cfg.finetune.dataset, "shifts": shifts, "parts": part_headline(parts),
               "claims": part_claims(parts, {k: v["kind"] for k, v in shifts.items()})}
    return {**tables, "parts": parts, "control_check": check}, metrics


def headline(metrics: dict) -> dict:
    """What `dvc exp show` and `dvc metrics diff` show: each strategy's ER with its interval and
    the fit's r^2 per shift, and each strategy's ER per part of the split shifts."""
    keep = lambda k: k == "r2" or (k.startswith("er_") and k != "er_mean")  # noqa: E731 - a filter
    return {"shifts": {s: {k: v for k, v in m.items() if keep(k)} for s, m in metrics["shifts"].items()},
            "parts": {s: {p: {k: v for k, v in m.items() if keep(k)} for p, m in parts.items()}
                      for s, parts in metrics["parts"].items()}}
