"""Classification metrics used as the reference / shifted metric of an ER fit.

All functions take 1-D arrays of integer (or any hashable) labels and predictions, and
for the group metrics a 1-D array of group ids, all of the same length. Predictions are
labels, not scores: pass ``scores.argmax(axis=1)``. Results are floats in [0, 1].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "accuracy",
    "per_class_recall",
    "balanced_accuracy",
    "group_accuracy",
    "worst_group_accuracy",
    "group_balanced_accuracy",
    "groups_used",
    "prediction_frame",
    "accuracy_points",
]


def _as_1d(name: str, a) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        hint = " (predictions must be labels; use scores.argmax(axis=1))" if arr.ndim == 2 else ""
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}{hint}")
    return arr


def _check(y_true, y_pred, groups=None):
    yt = _as_1d("y_true", y_true)
    yp = _as_1d("y_pred", y_pred)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true has {yt.shape[0]} entries but y_pred has {yp.shape[0]}")
    if yt.shape[0] == 0:
        raise ValueError("empty input: y_true and y_pred have no entries")
    if groups is None:
        return yt, yp, None
    g = _as_1d("groups", groups)
    if g.shape != yt.shape:
        raise ValueError(f"groups has {g.shape[0]} entries but y_true has {yt.shape[0]}")
    if pd.isna(g).any():
        raise ValueError("groups contains missing values")
    return yt, yp, g


def accuracy(y_true, y_pred) -> float:
    """Fraction of predictions equal to the label."""
    yt, yp, _ = _check(y_true, y_pred)
    return float(np.mean(yt == yp))


def per_class_recall(y_true, y_pred) -> pd.Series:
    """Recall of every class present in ``y_true`` (index: class, sorted)."""
    yt, yp, _ = _check(y_true, y_pred)
    correct = pd.Series(yt == yp)
    return correct.groupby(yt, sort=True).mean().astype(float).rename("recall")


def balanced_accuracy(y_true, y_pred) -> float:
    """Mean per-class recall over the classes present in ``y_true``.

    Classes that appear only in ``y_pred`` do not count (as in scikit-learn's
    ``balanced_accuracy_score`` without adjustment).
    """
    return float(per_class_recall(y_true, y_pred).mean())


def group_accuracy(y_true, y_pred, groups) -> pd.Series:
    """Accuracy within every group present in ``groups`` (index: group, sorted)."""
    yt, yp, g = _check(y_true, y_pred, groups)
    correct = pd.Series(yt == yp)
    return correct.groupby(g, sort=True).mean().astype(float).rename("accuracy")


def worst_group_accuracy(y_true, y_pred, groups, min_size: int = 1) -> float:
    """Minimum accuracy over the groups with at least ``min_size`` examples (NaN when none has):
    the accuracy of a group of 3 examples is too noisy for its minimum to mean anything."""
    yt, yp, g = _check(y_true, y_pred, groups)
    sizes = pd.Series(g).value_counts()
    acc = group_accuracy(yt, yp, g)
    acc = acc[acc.index.isin(sizes.index[sizes >= min_size])]
    return float(acc.min()) if len(acc) else float("nan")


def groups_used(groups, min_size: int = 1) -> int:
    """How many groups have at least ``min_size`` examples (the worst-group accuracy's groups)."""
    return int((pd.Series(np.asarray(groups)).value_counts() >= min_size).sum())


def group_balanced_accuracy(y_true, y_pred, groups) -> float:
    """Mean of the per-group accuracies: the accuracy if every group were equally frequent."""
    return float(group_accuracy(y_true, y_pred, groups).mean())


# ---------------------------------------------------------------- tables of predictions
def prediction_frame(model_name: str, dataset: str, meta: pd.DataFrame, logits: np.ndarray) -> pd.DataFrame:
    """One row per example: what the model predicted, with its label and group."""
    return pd.DataFrame({
        "model": model_name, "dataset": dataset,
        "index": meta["index"].to_numpy(np.int64),
        "label": meta["label"].to_numpy(np.int16),
        "group": meta["group"].to_numpy(np.int16),
        "pred": logits.argmax(1).astype(np.int16),
    })


def accuracy_points(predictions: pd.DataFrame, min_group_size: int = 1) -> pd.DataFrame:
    """accuracy, balanced_accuracy, worst_group_accuracy (over the groups with at least
    ``min_group_size`` examples: ``n_groups`` of them) and n per (model, dataset)."""
    rows = []
    for (model, dataset), p in predictions.groupby(["model", "dataset"], sort=True):
        y, yhat, g = p["label"].to_numpy(), p["pred"].to_numpy(), p["group"].to_numpy()
        rows.append({"model": model, "dataset": dataset, "n": len(p),
                     "accuracy": accuracy(y, yhat),
                     "balanced_accuracy": balanced_accuracy(y, yhat),
                     "worst_group_accuracy": worst_group_accuracy(y, yhat, g, min_group_size),
                     "n_groups": groups_used(g, min_group_size)})
    return pd.DataFrame(rows)
