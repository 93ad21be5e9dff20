"""Predictions of trained models on curated datasets, and the accuracy table built from them."""
from __future__ import annotations

import numpy as np
import pandas as pd

from askshift import metrics

RUN_COLUMNS = ("model", "variant", "role", "strategy", "copy", "epoch", "fraction", "train_set")


def prediction_frame(model_name: str, dataset: str, meta: pd.DataFrame, logits: np.ndarray) -> pd.DataFrame:
    """One row per example: what the model predicted, with its label and group."""
    return pd.DataFrame({
        "model": model_name, "dataset": dataset,
        "index": meta["index"].to_numpy(np.int64),
        "label": meta["label"].to_numpy(np.int16),
        "group": meta["group"].to_numpy(np.int16),
        "pred": logits.argmax(1).astype(np.int16),
    })


def accuracy_points(predictions: pd.DataFrame) -> pd.DataFrame:
    """accuracy, balanced_accuracy, worst_group_accuracy and n per (model, dataset)."""
    rows = []
    for (model, dataset), p in predictions.groupby(["model", "dataset"], sort=True):
        y, yhat, g = p["label"].to_numpy(), p["pred"].to_numpy(), p["group"].to_numpy()
        rows.append({"model": model, "dataset": dataset, "n": len(p),
                     "accuracy": metrics.accuracy(y, yhat),
                     "balanced_accuracy": metrics.balanced_accuracy(y, yhat),
                     "worst_group_accuracy": metrics.worst_group_accuracy(y, yhat, g)})
    return pd.DataFrame(rows)


def accuracy_table(predictions: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """accuracy_points joined with what each model is (variant, role, strategy, ...)."""
    info = runs.rename(columns={"name": "model"})[list(RUN_COLUMNS)]
    return info.merge(accuracy_points(predictions), on="model", how="inner", validate="one_to_many")
