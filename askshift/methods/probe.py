"""How well a linear classifier recovers an attribute from frozen features (a model can only
rely on a spurious attribute that its features represent)."""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def attribute_decodability(features, attribute, *, folds: int = 5, C: float = 1.0, seed: int = 0) -> dict:
    """``{"accuracy", "chance", "n", "n_values"}``: cross-validated (stratified ``folds``)
    accuracy of predicting ``attribute`` from ``features`` linearly, and the majority rate."""
    x, a = np.asarray(features, dtype=np.float64), np.asarray(attribute)
    if x.ndim != 2 or len(x) != len(a):
        raise ValueError(f"features must be (N, D) with N = len(attribute) = {len(a)}, got shape {x.shape}")
    values, counts = np.unique(a, return_counts=True)
    if len(values) < 2:
        raise ValueError("the attribute takes a single value: nothing to decode")
    if counts.min() < folds:
        raise ValueError(f"the rarest attribute value has {counts.min()} examples, fewer than folds={folds}")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    acc = float(cross_val_score(clf, x, a, cv=cv).mean())
    return {"accuracy": acc, "chance": float(counts.max() / counts.sum()), "n": int(len(a)),
            "n_values": int(len(values))}
