"""Sec. 5.2: split a natural shift into in-support and out-of-support parts, and measure ER on
each part.

* :func:`split_shift` -- cross-fitted domain classifier over k folds, one temperature on all
  out-of-fold logits, density ratio ``p_ref/p_shift``, out-of-support where it is below epsilon
  (:mod:`askshift.splitting`).
* :func:`part_weights` -- the parts as weights over the shifted examples: ``all``, ``in``,
  ``out``, and ``in_matched`` (in-support examples re-weighted so that their difficulty
  distribution matches the out-of-support part's: the appendix's control; difficulty = mean
  correctness of the baseline models on the example). With known membership (the mixture
  shift), also ``true_in`` / ``true_out``.
* :func:`part_points` / :func:`part_er` -- each model's accuracy on each part, then the ER of
  the pre-trained strategies on each part with its own baseline fit
  (:func:`askshift.er_study.shift_er`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from askshift import er_study
from askshift import splitting as S
from askshift.robustness import FitError


def split_shift(ref_features, shift_features, *, k: int = S.DEFAULT_K, C: float = 1.0, seed: int = 0,
                epsilon: float = S.DEFAULT_EPSILON) -> tuple[S.DomainRatio, np.ndarray]:
    """Density ratio of every shifted example and its out-of-support mask (ratio < epsilon)."""
    res = S.cross_fit_domain_logits(ref_features, shift_features, k=k,
                                    make_classifier=lambda: S.default_domain_classifier(C=C), seed=seed)
    return res, res.out_of_support(epsilon)


def part_weights(out_of_support, baseline_correct=None, *, true_out=None, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Weights over the shifted examples for each part (see the module docstring).

    ``baseline_correct`` is a (baseline models x examples) boolean matrix, needed for
    ``in_matched`` (skipped when either part is empty); ``true_out`` the known membership.
    """
    oos = np.asarray(out_of_support, dtype=bool)
    parts = {"all": np.ones(oos.size), "in": (~oos).astype(float), "out": oos.astype(float)}
    if baseline_correct is not None and oos.any() and (~oos).any():
        difficulty = np.asarray(baseline_correct, dtype=float).mean(axis=0)
        dw = S.difficulty_matched_weights(difficulty[~oos], difficulty[oos])
        w = np.zeros(oos.size)
        w[~oos] = dw.weights
        parts["in_matched"] = w
    if true_out is not None:
        t = np.asarray(true_out, dtype=bool)
        parts["true_in"] = (~t).astype(float)
        parts["true_out"] = t.astype(float)
    return parts


def part_points(correct: np.ndarray, info: pd.DataFrame, parts: dict[str, np.ndarray]) -> pd.DataFrame:
    """Accuracy of each model (rows of ``correct``, described by ``info`` in the same order)
    on each part: weighted mean of its correctness. Columns: ``info``'s + part, shift_acc,
    n_examples (examples with non-zero weight), effective_n (Kish's effective sample size)."""
    c = np.asarray(correct, dtype=float)
    frames = []
    for name, w in parts.items():
        w = np.asarray(w, dtype=float)
        if w.sum() <= 0:
            continue
        f = info.copy()
        f["part"] = name
        f["shift_acc"] = c @ w / w.sum()
        f["n_examples"] = int((w > 0).sum())
        f["effective_n"] = float(w.sum() ** 2 / (w ** 2).sum())
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def part_er(points: pd.DataFrame, *, scale: str = "probit", confidence: float = 0.95,
            min_examples: int = 20) -> pd.DataFrame:
    """ER of the pre-trained strategies (copies averaged) on every part, with the baseline fit
    of that part; ``points`` from :func:`part_points` with ``ref_acc`` and the run columns
    (model, variant, role, strategy, copy). Parts with fewer than ``min_examples`` examples, or
    whose fit is undefined, get one row with ``note`` and no ER."""
    rows = []
    for part, p in points.groupby("part", sort=False):
        n = int(p["n_examples"].iloc[0])
        eff = float(p["effective_n"].iloc[0])
        if n < min_examples:
            rows.append(pd.DataFrame([{"part": part, "n_examples": n, "effective_n": eff,
                                       "note": f"only {n} examples (< {min_examples}): no ER"}]))
            continue
        try:
            er, _, _ = er_study.shift_er(p, scale, confidence, 0, 0)
        except FitError as e:
            rows.append(pd.DataFrame([{"part": part, "n_examples": n, "effective_n": eff, "note": str(e)}]))
            continue
        er = er[er["role"] == "pretrained"].copy()
        er.insert(0, "part", part)
        er["n_examples"] = n
        er["effective_n"] = eff
        er["note"] = ""
        rows.append(er)
    return pd.concat(rows, ignore_index=True)
