"""Sec. 7: the curated stage's summary of its arms and size sweep.

The sets themselves are drawn by :mod:`askshift.data.debias` (shared with the curate stage).
"""
from __future__ import annotations


def summarise(table, *, n_debiased: int, n_reference: int):
    """Split an ER table (:func:`askshift.analyses.common.er_table`) of the curated stage into
    the arms and the size sweep (arms ``sweep_<n>``), each with its set size; returns
    ``(arms, sweep, metrics, claims)`` where ``claims`` are rows for the report's claims table:
    pre-trained on the de-biased set has ER > 0, on the full biased reference ER ~ 0."""
    t = table.copy()
    sweep_mask = t["arm"].str.startswith("sweep_")
    fixed = {"pretrained_debiased": n_debiased, "scratch_debiased": n_debiased, "pretrained_balanced": n_debiased,
             "pretrained_reference": n_reference}
    t["size"] = [int(a.removeprefix("sweep_")) if a.startswith("sweep_") else fixed.get(a, 0) for a in t["arm"]]
    arms, sweep = t[~sweep_mask], t[sweep_mask].sort_values("size")
    metrics = {
        "fit_r2": float(t["r2"].iloc[0]), "n_baseline": int(t["n_baseline"].iloc[0]),
        "curated_arms": {r.arm: {"size": int(r.size), "ref_acc": r.ref_acc, "shift_acc": r.shift_acc,
                                 "shift_wga": r.shift_wga, "er": r.er, "er_low": r.er_low, "er_high": r.er_high,
                                 "wga_er": r.wga_er} for r in arms.itertuples()},
        "size_sweep": {str(int(r.size)): {"ref_acc": r.ref_acc, "shift_acc": r.shift_acc, "shift_wga": r.shift_wga,
                                          "er": r.er, "er_low": r.er_low, "er_high": r.er_high}
                       for r in sweep.itertuples()},
    }
    claims = []
    for arm, rule, text in (
            ("pretrained_debiased", "positive",
             "A pre-trained model fine-tuned on a small curated de-biased set is robust (ER > 0)"),
            ("pretrained_reference", "near_zero",
             "Fine-tuned on the full biased reference, the pre-trained model has ~0 ER")):
        rows = arms[arms["arm"] == arm]
        if len(rows):
            r = rows.iloc[0]
            claims.append({"claim": text, "paper": "CelebA, 64 curated images", "er": r.er, "low": r.er_low,
                           "high": r.er_high, "r2": r.r2, "n_baseline": int(r.n_baseline), "rule": rule,
                           "what": f"{arm} ({int(r['size'])} images), {int(r.n_trials)} trials averaged"})
    return arms, sweep, metrics, claims
