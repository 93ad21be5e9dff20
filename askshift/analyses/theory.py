"""Sec. 4: the logistic-regression simulation as a report (:func:`askshift.theory.simulate`).

:func:`theory_report` runs the simulation with the given parameters and returns
- metrics: Theorem 4.1's error ``max_init ||w_gd - (w* + proj_{W-perp}(w_init))||``, the
  in-support logit spread across initialisations, out-of-support accuracy per initialisation,
  and two negative controls that must *fail* the check: a step far above ``4 / ||X||_op^2``
  and data that leaves the subspace W (``off_subspace_noise``);
- one row per initialisation (in-/out-of-support accuracy, theorem error, drift off W);
- the convergence curve: theorem error after a growing number of gradient steps.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from askshift import theory as T


def theory_report(*, d: int, k: int, n: int, noise: float, inits: int, steps: int, seed: int,
                  n_test: int = 2000, oos_scale: float = 1.0, pretrained_noise: float = 0.0,
                  broken_step_factor: float = 20.0, broken_off_subspace_noise: float = 0.3,
                  curve_points: int = 12) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    common = dict(d=d, k=k, n=n, noise=noise, n_inits=inits, seed=seed, n_test=n_test,
                  oos_scale=oos_scale, pretrained_noise=pretrained_noise)
    r = T.simulate(steps=steps, **common)
    big_step = T.simulate(steps=steps, lr=broken_step_factor * r.lr, **common)
    off_w = T.simulate(steps=steps, off_subspace_noise=broken_off_subspace_noise, **common)
    metrics = {
        "theorem_error": r.theorem_error,
        "w_star_error": r.w_star_error,
        "max_perp_drift": max(r.perp_drift.values()),
        "newton_grad_norm": r.newton_grad_norm,
        "in_support_max_logit_diff": r.in_support_max_logit_diff,
        "in_support_accuracy": float(np.mean(list(r.in_support_accuracy.values()))),
        "in_support_accuracy_identical": len(set(r.in_support_accuracy.values())) == 1,
        "oos_accuracy_pretrained": r.oos_accuracy_pretrained,
        "oos_accuracy_zero": r.oos_accuracy_zero,
        "oos_accuracy_random_mean": r.oos_accuracy_random_mean,
        "oos_accuracy_random_std": r.oos_accuracy_random_std,
        "pretrained_wins": bool(r.oos_accuracy_pretrained > max(
            v for name, v in r.out_of_support_accuracy.items() if name != "pretrained")),
        "lr": r.lr,
        "separable": r.separable,
        "control_big_step": {"lr": big_step.lr, "theorem_error": big_step.theorem_error,
                             "max_perp_drift": max(big_step.perp_drift.values())},
        "control_off_subspace": {"off_subspace_noise": broken_off_subspace_noise,
                                 "theorem_error": off_w.theorem_error,
                                 "max_perp_drift": max(off_w.perp_drift.values())},
    }
    per_init = pd.DataFrame({
        "init": r.init_names,
        "in_support_accuracy": [r.in_support_accuracy[i] for i in r.init_names],
        "out_of_support_accuracy": [r.out_of_support_accuracy[i] for i in r.init_names],
        "theorem_error": [r.theorem_errors[i] for i in r.init_names],
        "perp_drift": [r.perp_drift[i] for i in r.init_names],
    })
    grid = np.unique(np.round(np.geomspace(1, max(steps, 1), curve_points)).astype(int))
    curve = []
    for s in grid:
        rs = T.simulate(steps=int(s), **common)
        curve.append({"steps": int(s), "theorem_error": rs.theorem_error, "w_star_error": rs.w_star_error,
                      "in_support_max_logit_diff": rs.in_support_max_logit_diff,
                      "oos_accuracy_pretrained": rs.oos_accuracy_pretrained,
                      "oos_accuracy_random_mean": rs.oos_accuracy_random_mean})
    return metrics, per_init, pd.DataFrame(curve)
