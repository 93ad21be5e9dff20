"""Step `theory` (paper Sec. 4): the logistic-regression simulation of Theorem 4.1.

Gradient descent with step 4 / ||X||_op^2 from any initialisation converges to
w* + proj_{W-perp}(w_init) when the data lies in a subspace W: the step reports the numerical
error of that identity, identical in-support predictions across initialisations, an
out-of-support accuracy that depends on the initialisation (a "pre-trained" one wins), and two
negative controls that must break the identity (a far too large step, data leaving W).
"""
from __future__ import annotations

import pandas as pd

from askshift.methods.theory import theory_report
from askshift.study import layout


def claims(metrics: dict, per_init: pd.DataFrame) -> list[dict]:
    """The Sec. 4 claims as rows of the report's claims table."""
    others = per_init[per_init["init"] != "pretrained"]["out_of_support_accuracy"]
    margin = metrics["oos_accuracy_pretrained"] - float(others.max())
    spread = metrics["in_support_max_logit_diff"]
    return [
        {"claim": "In-support predictions are identical for every initialisation (max logit spread)",
         "paper": "exact (Theorem 4.1)", "er": spread, "low": spread, "high": spread,
         "rule": "near_zero", "what": "max over in-support test points of the logit spread across inits"},
        {"claim": "Out-of-support accuracy depends on the initialisation and a pre-trained one wins "
                  "(pre-trained minus the best other initialisation)",
         "paper": "pre-trained init wins", "er": margin, "low": margin, "high": margin,
         "rule": "positive", "what": "out-of-support accuracy margin"},
    ]


def run(cfg) -> tuple[dict[str, pd.DataFrame], dict]:
    """The simulation; tables ``inits`` (one row per initialisation) and ``convergence``, and
    the metrics (``theorem``, ``claims``)."""
    t = cfg.theory
    metrics, per_init, curve = theory_report(
        d=t.d, k=t.k, n=t.n, noise=t.noise, inits=t.inits, steps=t.steps,
        seed=layout.run_seed(cfg.seed, "theory"), n_test=t.n_test, oos_scale=t.oos_scale,
        pretrained_noise=t.pretrained_noise)
    print(f"Theorem 4.1: ||w_gd - (w* + proj_W-perp(w_init))|| = {metrics['theorem_error']:.3e} "
          f"(max over {len(per_init)} initialisations, {t.steps} steps at lr {metrics['lr']:.4g})")
    print(f"in-support logits: max spread across initialisations {metrics['in_support_max_logit_diff']:.3e}; "
          f"accuracy {metrics['in_support_accuracy']:.4f} for every initialisation")
    print("out-of-support accuracy: " + ", ".join(
        f"{r.init} {r.out_of_support_accuracy:.4f}" for r in per_init.itertuples()))
    print(f"controls (must break the identity): step x20 -> error "
          f"{metrics['control_big_step']['theorem_error']:.3g}; data off W -> error "
          f"{metrics['control_off_subspace']['theorem_error']:.3g}")
    return {"inits": per_init, "convergence": curve}, {"theorem": metrics, "claims": claims(metrics, per_init)}


HEADLINE = ("theorem_error", "in_support_max_logit_diff", "oos_accuracy_pretrained", "oos_accuracy_zero",
            "oos_accuracy_random_mean")


def headline(metrics: dict) -> dict:
    """The theorem's numerical error, the in-support logit spread, out-of-support accuracy per
    kind of initialisation, and the two controls (which must break the identity)."""
    t = metrics["theorem"]
    return {"theorem": {**{k: t[k] for k in HEADLINE},
                        "control_big_step_error": t["control_big_step"]["theorem_error"],
                        "control_off_subspace_error": t["control_off_subspace"]["theorem_error"]}}
