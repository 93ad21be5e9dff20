"""Step `evaluate`: predictions of the models of one stage (baseline or finetune) on every
dataset each is judged on (its reference test split and every shifted set of its variant), and
the accuracy table."""
from __future__ import annotations

import json

import pandas as pd

from askshift.data import store
from askshift.methods.metrics import accuracy_points, prediction_frame
from askshift.nn import models, train
from askshift.study import layout
from askshift.study.stage import InputError, Timer

RUN_COLUMNS = ("model", "variant", "role", "strategy", "copy", "epoch", "fraction", "train_set", "run", "width")


def model_runs(kind: str) -> pd.DataFrame:
    """Every model the stage ``kind`` (baseline or finetune) saved (its ``index.json``)."""
    if kind not in layout.EVALUATED:
        raise InputError(f"evaluate {kind!r}: expected one of {', '.join(layout.EVALUATED)}")
    return pd.DataFrame(json.loads(layout.model_index(kind).read_text()))


def predictions(runs: pd.DataFrame, batch_size: int, device: str) -> pd.DataFrame:
    """One row per (model, dataset, example)."""
    timer = Timer()
    index = layout.read_shift_index()
    datasets: dict[str, store.Dataset] = {}
    frames = []
    for run in runs.itertuples():
        model = models.load_model(run.path)
        for name in layout.eval_sets(index, run.variant):
            if name not in datasets:
                ds = store.load(layout.dataset_dir(name))
                datasets[name] = ds.split("test") if name == layout.reference(run.variant) else ds
            ds = datasets[name]
            logits = train.predict(model, ds.images, batch_size=batch_size, device=device)
            frames.append(prediction_frame(run.name, name, ds.meta, logits))
        print(f"evaluate {run.name} ({timer()} s)", flush=True)
    return pd.concat(frames, ignore_index=True)


def accuracy_table(predictions: pd.DataFrame, runs: pd.DataFrame, min_group_size: int = 1) -> pd.DataFrame:
    """accuracy_points (worst group over groups of at least ``min_group_size`` examples) joined
    with what each model is (variant, role, strategy, ...)."""
    info = runs.rename(columns={"name": "model"})[list(RUN_COLUMNS)]
    return info.merge(accuracy_points(predictions, min_group_size), on="model", how="inner", validate="one_to_many")


def summary(table: pd.DataFrame, n_models: int, n_predictions: int) -> dict:
    """Mean reference accuracy per (variant, role), and counts."""
    ref = table[table["dataset"] == table["variant"].map(layout.reference)]
    out = {f"{v}/{role}_ref_acc": float(g["accuracy"].mean()) for (v, role), g in ref.groupby(["variant", "role"])}
    out.update(n_models=int(n_models), n_predictions=int(n_predictions))
    return out


def headline(summary: dict) -> dict:
    """Mean reference accuracy per (variant, role); the counts stay in the details."""
    return {k: v for k, v in summary.items() if k.endswith("_ref_acc")}
