"""Shared pieces of the analysis stages.

* :func:`train_arm` -- one model of an arm: from scratch or from the pre-trained checkpoint,
  trained with :func:`askshift.train.fit`, optionally with group-balanced loss weights.
* :func:`predict_frame` -- per-example predictions of one model on several datasets.
* :func:`accuracy_points` -- accuracy, balanced and worst-group accuracy per (model, dataset).
* :func:`pair_frame` -- one row per model with its metrics on a (reference, shifted) pair.
* :func:`arm_er` -- the baseline fit, then every arm's ER: trials averaged first (the paper's
  rule for copies) with the official mean-prediction interval, plus the mean and t-interval of
  the per-trial ERs and of the shifted worst-group accuracy.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from askshift import evaluation, models, train
from askshift import robustness as R
from askshift.data.store import Dataset

ARM_KINDS = ("scratch", "pretrained")


def train_arm(kind: str, train_set: Dataset, val_set: Dataset | None, cfg: train.TrainConfig, *,
              arch: str, arch_kwargs: dict, num_classes: int, pretrained: str | None = None,
              sample_weight=None, live=None):
    """Train one model of an arm and return it with its history.

    ``kind="scratch"``: ``arch`` with ``arch_kwargs``, random init seeded by ``cfg.seed``.
    ``kind="pretrained"``: the pipeline checkpoint ``pretrained`` with a fresh head, all
    parameters fine-tuned (FT). ``sample_weight`` is passed to :func:`askshift.train.fit`
    (e.g. group-balanced weights for the re-weighting intervention).
    """
    if kind == "scratch":
        model = models.create_model(arch, num_classes, seed=cfg.seed, **arch_kwargs)
    elif kind == "pretrained":
        if pretrained is None:
            raise ValueError("kind='pretrained' needs the path of the pre-trained checkpoint")
        model = models.create_model(arch, num_classes, weights=f"pipeline:{pretrained}", seed=cfg.seed)
    else:
        raise ValueError(f"kind={kind!r} is not valid; choose one of {ARM_KINDS}")
    val = (val_set.images, np.array(val_set.labels)) if val_set is not None else None
    history = train.fit(model, (train_set.images, np.array(train_set.labels)), val, cfg, live=live,
                        sample_weight=sample_weight)
    return model, history


def predict_frame(model, model_name: str, datasets: dict[str, Dataset], batch_size: int = 1024,
                  device: str = "auto") -> pd.DataFrame:
    """One row per (dataset, example): model, dataset, index, label, group, pred."""
    frames = []
    for name, ds in datasets.items():
        logits = train.predict(model, ds.images, batch_size=batch_size, device=device)
        frames.append(evaluation.prediction_frame(model_name, name, ds.meta, logits))
    return pd.concat(frames, ignore_index=True)


accuracy_points = evaluation.accuracy_points  # one implementation, shared with the evaluate stage


def pair_frame(points: pd.DataFrame, info: pd.DataFrame, ref: str, shifted: str) -> pd.DataFrame:
    """One row per model (columns of ``info`` + ref_acc, ref_wga, shift_acc, shift_wga).

    ``points`` comes from :func:`accuracy_points`; ``info`` has one row per model with at least
    ``model``, ``arm`` and ``trial``. Models without both datasets are dropped.
    """
    def part(dataset, prefix):
        p = points[points["dataset"] == dataset].set_index("model")
        return pd.DataFrame({f"{prefix}_acc": p["accuracy"], f"{prefix}_wga": p["worst_group_accuracy"]})

    both = pd.concat([part(ref, "ref"), part(shifted, "shift")], axis=1, join="inner")
    return info.merge(both, left_on="model", right_index=True, how="inner")


def trial_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean over trials (nan bounds for 1 trial)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t(v.size - 1).ppf(0.5 + confidence / 2) * v.std(ddof=1) / np.sqrt(v.size))
    return m, m - half, m + half


def arm_er(pairs: pd.DataFrame, *, baseline_arm: str = "baseline", x: str = "ref_acc",
           y: str = "shift_acc", scale: str = "probit", confidence: float = 0.95) -> pd.DataFrame:
    """ER of every non-baseline arm against the line fitted on the ``baseline_arm`` rows.

    Per arm: ``er`` with ``er_low``/``er_high`` (official interval) of the trial-averaged
    accuracies; ``er_trials_mean/low/high`` (t-interval over the per-trial ERs); the
    trial-averaged ``x``/``y``; ``n_trials``; and the fit's r, r2, n_baseline.
    """
    base = pairs[pairs["arm"] == baseline_arm]
    fit = R.fit_line(base[x].to_numpy(), base[y].to_numpy(), scale, confidence=confidence,
                     models=base["model"].tolist(), ref_name=x, shift_name=y)
    rows = []
    for arm, g in pairs[pairs["arm"] != baseline_arm].groupby("arm", sort=False):
        avg = R.effective_robustness(fit, [g[x].mean()], [g[y].mean()], models=[arm])
        per_trial = R.effective_robustness(fit, g[x].to_numpy(), g[y].to_numpy(),
                                           models=g["model"].tolist())
        m, lo, hi = trial_interval(per_trial.er, confidence)
        rows.append({"arm": arm, "n_trials": len(g), x: float(g[x].mean()), y: float(g[y].mean()),
                     "predicted": float(avg.predicted[0]), "er": float(avg.er[0]),
                     "er_low": float(avg.er_low[0]), "er_high": float(avg.er_high[0]),
                     "er_trials_mean": m, "er_trials_low": lo, "er_trials_high": hi,
                     "r": fit.r, "r2": fit.r2, "n_baseline": fit.n})
    return pd.DataFrame(rows)


def arm_summary(pairs: pd.DataFrame, cols: tuple[str, ...] = ("ref_acc", "shift_acc", "shift_wga"),
                confidence: float = 0.95) -> pd.DataFrame:
    """Mean and t-interval over trials of each column, per arm (``<col>``, ``<col>_low``,
    ``<col>_high``)."""
    rows = []
    for arm, g in pairs.groupby("arm", sort=False):
        row = {"arm": arm, "n_trials": len(g)}
        for c in cols:
            row[c], row[f"{c}_low"], row[f"{c}_high"] = trial_interval(g[c], confidence)
        rows.append(row)
    return pd.DataFrame(rows)


def correctness_matrix(predictions: pd.DataFrame, model_names: list[str], dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """(models x examples) boolean matrix of correct predictions on ``dataset`` and the example
    indices (columns, sorted); every model must have predicted every example."""
    p = predictions[(predictions["dataset"] == dataset) & predictions["model"].isin(model_names)]
    correct = (p["pred"] == p["label"]).to_numpy()
    table = pd.DataFrame({"model": p["model"].to_numpy(), "index": p["index"].to_numpy(),
                          "correct": correct}).pivot(index="model", columns="index", values="correct")
    missing = sorted(set(model_names) - set(table.index))
    if missing or table.isna().any().any():
        raise ValueError(f"predictions on {dataset!r} are incomplete (models without predictions: {missing})")
    table = table.loc[model_names]
    return table.to_numpy(dtype=bool), table.columns.to_numpy()


def json_clean(obj):
    """Plain-JSON version of nested metrics: numpy scalars to Python, NaN / inf to None."""
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def per_trial_er(pairs: pd.DataFrame, *, baseline_arm: str = "baseline", x: str = "ref_acc",
                 y: str = "shift_acc", scale: str = "probit", confidence: float = 0.95) -> pd.DataFrame:
    """ER of every non-baseline model (one row per trial: model, arm, trial, er)."""
    base = pairs[pairs["arm"] == baseline_arm]
    fit = R.fit_line(base[x].to_numpy(), base[y].to_numpy(), scale, confidence=confidence)
    rest = pairs[pairs["arm"] != baseline_arm]
    res = R.effective_robustness(fit, rest[x].to_numpy(), rest[y].to_numpy(), models=rest["model"].tolist())
    return pd.DataFrame({"model": rest["model"].to_numpy(), "arm": rest["arm"].to_numpy(),
                         "trial": rest["trial"].to_numpy(), "er": res.er})


def paired_difference(trial_er: pd.DataFrame, arm_a: str, arm_b: str, confidence: float = 0.95) -> tuple:
    """(mean, low, high) of ER(arm_a) - ER(arm_b) over trials paired by trial index (arms of one
    trial share their seed)."""
    a = trial_er[trial_er["arm"] == arm_a].set_index("trial")["er"]
    b = trial_er[trial_er["arm"] == arm_b].set_index("trial")["er"]
    both = a.index.intersection(b.index)
    return trial_interval((a[both] - b[both]).to_numpy(), confidence)


def er_table(pairs: pd.DataFrame, *, scale: str = "probit", confidence: float = 0.95) -> pd.DataFrame:
    """Per arm: :func:`arm_er` of accuracy (``er``...), of the shifted worst-group accuracy
    against reference accuracy (``wga_er``, ``wga_er_low``, ``wga_er_high``, ``wga_r2``), and the
    t-intervals over trials of the accuracies (:func:`arm_summary`)."""
    er = arm_er(pairs, scale=scale, confidence=confidence)
    wga = arm_er(pairs, y="shift_wga", scale=scale, confidence=confidence)
    summ = arm_summary(pairs, confidence=confidence)
    er = er.merge(wga[["arm", "er", "er_low", "er_high", "r2"]].rename(
        columns=lambda c: c if c == "arm" else f"wga_{c}"), on="arm")
    return er.merge(summ.drop(columns=["n_trials", "ref_acc", "shift_acc"]), on="arm")
