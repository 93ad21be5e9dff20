"""Sec. 5.2: split a natural shift into in-support and out-of-support parts, and measure ER on
each part.

* :func:`split_shift` -- cross-fitted domain classifier over k folds, one temperature on all
  out-of-fold logits, density ratio ``p_ref/p_shift``, out-of-support where it is below epsilon
  (:mod:`askshift.splitting`).
* :func:`part_weights` -- the parts as weights over the shifted examples: ``all``, ``in``,
  ``out``; with known membership (the mixture shift), also ``true_in`` / ``true_out``.
* :func:`matched_er` -- ``in_matched``: in-support examples re-weighted so that their difficulty
  distribution matches the out-of-support part's (the appendix's control; difficulty = mean
  correctness of baseline models), cross-fitted over two halves of the baselines.
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


def pixel_features(images, size: int = 16) -> np.ndarray:
    """uint8 (N, H, W, C) images average-pooled to ``size`` x ``size`` and flattened, in [0, 1]:
    the input space itself, where support is defined (tints, backgrounds, frames stay visible,
    unlike in features of a model pre-trained to ignore them). ``size`` must divide H and W."""
    x = np.asarray(images)
    n, h, w, c = x.shape
    if h % size or w % size:
        raise ValueError(f"pixel size {size} must divide the image size {h}x{w}")
    fh, fw = h // size, w // size
    pooled = x.reshape(n, size, fh, size, fw, c).mean(axis=(2, 4), dtype=np.float64)
    return (pooled.reshape(n, -1) / 255.0).astype(np.float32)


def split_shift(ref_features, shift_features, *, k: int = S.DEFAULT_K, C: float = 1.0, seed: int = 0,
                epsilon: float = S.DEFAULT_EPSILON) -> tuple[S.DomainRatio, np.ndarray]:
    """Density ratio of every shifted example and its out-of-support mask (ratio < epsilon)."""
    res = S.cross_fit_domain_logits(ref_features, shift_features, k=k,
                                    make_classifier=lambda: S.default_domain_classifier(C=C), seed=seed)
    return res, res.out_of_support(epsilon)


def part_weights(out_of_support, *, true_out=None) -> dict[str, np.ndarray]:
    """Weights over the shifted examples for the parts ``all``, ``in``, ``out`` and, with the
    known membership ``true_out`` (the mixture shift), ``true_in`` / ``true_out``."""
    oos = np.asarray(out_of_support, dtype=bool)
    parts = {"all": np.ones(oos.size), "in": (~oos).astype(float), "out": oos.astype(float)}
    if true_out is not None:
        t = np.asarray(true_out, dtype=bool)
        parts["true_in"] = (~t).astype(float)
        parts["true_out"] = t.astype(float)
    return parts


def matched_weights(out_of_support, difficulty, n_bins: int = 10) -> np.ndarray | None:
    """Weights over the shifted examples: the in-support ones re-weighted so that their
    difficulty histogram matches the out-of-support part's (zero elsewhere; None when a part is
    empty). Difficulty = mean correctness of some models on the example."""
    oos = np.asarray(out_of_support, dtype=bool)
    if not oos.any() or oos.all():
        return None
    d = np.asarray(difficulty, dtype=float)
    dw = S.difficulty_matched_weights(d[~oos], d[oos], n_bins=n_bins)
    w = np.zeros(oos.size)
    w[~oos] = dw.weights
    return w


def matched_er(correct: np.ndarray, info: pd.DataFrame, out_of_support, *, scale: str = "probit",
               confidence: float = 0.95, min_examples: int = 20) -> pd.DataFrame:
    """ER on the in-support part at the out-of-support part's difficulty (appendix control),
    cross-fitted: difficulty measured by the same baselines that fit the line would select the
    examples those baselines got wrong and push the line down (every other model would look
    robust). So the baselines are split into two halves that both span accuracies; the weights
    come from one half's difficulty, the line from the other half, and the two ERs (and interval
    bounds) are averaged. Part name ``in_matched``; ``n_baseline`` is the half's size."""
    base = np.flatnonzero(info["role"].to_numpy() == "baseline")
    rest = np.flatnonzero(info["role"].to_numpy() != "baseline")
    order = base[np.argsort(np.asarray(correct, dtype=float)[base].mean(axis=1), kind="stable")]
    halves = (order[0::2], order[1::2])
    if min(len(h) for h in halves) < 3:
        return pd.DataFrame([{"part": "in_matched", "note": f"needs >= 6 baselines to cross-fit, got {len(base)}"}])
    ers = []
    for fit_half, diff_half in (halves, halves[::-1]):
        w = matched_weights(out_of_support, np.asarray(correct, dtype=float)[diff_half].mean(axis=0))
        if w is None:
            return pd.DataFrame([{"part": "in_matched", "note": "an empty part: nothing to match"}])
        rows = np.sort(np.concatenate([fit_half, rest]))
        pts = part_points(np.asarray(correct)[rows], info.iloc[rows].reset_index(drop=True), {"in_matched": w})
        ers.append(part_er(pts, scale=scale, confidence=confidence, min_examples=min_examples))
    if any("er" not in e or e["er"].isna().all() for e in ers):
        return ers[0]
    out = ers[0].copy()
    for c in ("ref_acc", "shift_acc", "predicted", "er", "er_low", "er_high", "r", "r2", "effective_n"):
        if c in out:
            out[c] = (ers[0][c].to_numpy() + ers[1][c].to_numpy()) / 2
    out["note"] = "cross-fitted over two halves of the baselines (weights from one, line from the other)"
    return out


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
