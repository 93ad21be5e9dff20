"""Step `theory` (paper Sec. 4): the logistic-regression simulation of Theorem 4.1.

Gradient descent with step 4 / ||X||_op^2 from any initialisation converges to
w* + proj_{W-perp}(w_init) when the data lies in a subspace W: the step reports the numerical
error of that identity, identical in-support predictions across initialisations, an
out-of-support accuracy that depends on the initialisation, and two negative controls that must
break the identity (a far too large step, data leaving W). The "pre-trained" initialisation is
logistic regression on a related task over all of R^d, not the answer; the out-of-support
accuracy it reaches is measured across how related that task is.
"""
from __future__ import annotations

import pandas as pd

from askshift.methods.theory import theory_report
from askshift.study import layout


def claims(metrics: dict, per_init: pd.DataFrame) -> list[dict]:
    """The Sec. 4 claims as rows of the report's claims table."""
    margin = metrics["pretrained_margin"]
    spread = metrics["in_support_max_logit_diff"]
    return [
        {"claim": "In-support predictions are identical for every initialisation (max logit spread)",
         "paper": "exact (Theorem 4.1)", "er": spread, "low": spread, "high": spread,
         "rule": "near_zero", "what": "max over in-support test points of the logit spread across inits"},
        {"claim": "Out-of-support accuracy depends on the initialisation and a pre-trained one wins "
                  "(pre-trained on a related task, minus the best of zero and random initialisations)",
         "paper": "pre-trained init wins", "er": margin, "low": margin, "high": margin,
         "rule": "positive", "what": f"out-of-support accuracy margin at relatedness {metrics['relatedness']:g}"},
    ]


def run(cfg) -> tuple[dict[str, pd.DataFrame], dict]:
    """The simulation; tables ``inits`` (one row per initialisation) and ``convergence``, and
    the metrics (``theorem``, ``claims``)."""
    t = cfg.theory
    metrics, per_init, curve, related = theory_report(
        d=t.d, k=t.k, n=t.n, noise=t.noise, inits=t.inits, steps=t.steps,
        seed=layout.run_seed(cfg.seed, "theory"), n_test=t.n_test, oos_scale=t.oos_scale,
        relatedness=t.relatedness, n_pretrain=t.n_pretrain, relatedness_grid=t.relatedness_grid)
    print(f"Theorem 4.1: ||w_gd - (w* + proj_W-perp(w_init))|| = {metrics['theorem_error']:.3e} "
          f"(max over {len(per_init)} initialisations, {t.steps} steps at lr {metrics['lr']:.4g})")
    print(f"in-support logits: max spread across initialisations {metrics['in_support_max_logit_diff']:.3e}; "
          f"accuracy {metrics['in_support_accuracy']:.4f} for every initialisation")
    print("out-of-support accuracy: " + ", ".join(
        f"{r.init} {r.out_of_support_accuracy:.4f}" for r in per_init.itertuples()))
    print("pre-trained init by relatedness of its task: " + ", ".join(
        f"{r.relatedness:g} -> {r.oos_accuracy_pretrained:.4f}" for r in related.itertuples()))
    print(f"controls (must break the identity): step x20 -> error "
          f"{metrics['control_big_step']['theorem_error']:.3g}; data off W -> error "
          f"{metrics['control_off_subspace']['theorem_error']:.3g}")
    return ({"inits": per_init, "convergence": curve, "relatedness": related},
            {"theorem": metrics, "claims": claims(metrics, per_init)})


HEADLINE = ("theorem_error", "in_support_max_logit_diff", "oos_accuracy_pretrained", "oos_accuracy_zero",
            "oos_accuracy_random_mean", "pretrained_margin")


def headline(metrics: dict) -> dict:
    """The theorem's numerical error, the in-support logit spread, out-of-support accuracy per
    kind of initialisation, and the two controls (which must break the identity)."""
    t = metrics["theorem"]
    return {"theorem": {**{k: t[k] for k in HEADLINE},
                        "control_big_step_error": t["control_big_step"]["theorem_error"],
                        "control_off_subspace_error": t["control_off_subspace"]["theorem_error"]}}
