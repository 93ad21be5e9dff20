"""Effective robustness (ER): the "accuracy on the line" fit and its intervals.

Definitions follow the paper (Cohen-Wang, Vendrow, Madry 2024, Sec. 2-3) and the
official code (``src/robustness_utils.py`` of MadryLab/pretraining-distribution-
shift-robustness, read for reference only):

* Fit ordinary least squares of ``scale(acc_shift)`` on ``scale(acc_ref)`` over the
  *baseline* models only, with ``scale`` the probit (``scipy.stats.norm.ppf``,
  default) or the logit.
* ``ER(M) = acc_shift(M) - inv_scale(slope * scale(acc_ref(M)) + intercept)``.
* 95% interval from the fitted line's mean-prediction band, in transformed space::

      t_crit(n - 2) * s_e * sqrt(1/n + (x - mean(x))**2 / Sxx)
      s_e = std(y) * sqrt((1 - r**2) * (n - 1) / (n - 2))

  where ``x``, ``y`` are the transformed baseline accuracies and ``Sxx`` is the sum
  of squared deviations of ``x``. The official code computes ``std(y)`` with numpy's
  default ``np.std`` (``ddof=0``) and ``Sxx = np.std(x)**2 * n`` (exact). ``ddof=0`` is
  therefore our default (``DEFAULT_DDOF``); ``ddof=1`` gives the textbook standard
  error of the estimate ``sqrt(SSE / (n - 2))``, a band wider by ``sqrt(n / (n - 1))``.
  The point estimates (slope, intercept, r, ER) do not depend on ``ddof``.
  ER with interval is ``(shift - inv(upper), shift - inv(pred), shift - inv(lower))``,
  so ``er_low <= er <= er_high``.

* Accuracies are clipped into ``[eps, 1 - eps]`` (``EPS = 1e-6``) before the transform
  so that an accuracy of exactly 0 or 1 maps to a finite value (probit(1e-6) = -4.75).
  This changes nothing for accuracies already inside that range (the official code
  does not clip; on any real table with 0 < acc < 1 - 1e-6 the results are identical).

Everything here is a pure function over numpy arrays / pandas frames; results are
dataclasses that carry the fit quality (slope, intercept, r, r^2, n) with them.
No file I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

__all__ = [
    "EPS",
    "DEFAULT_DDOF",
    "SCALES",
    "AccuracyError",
    "FitError",
    "LineFit",
    "ERResult",
    "BootstrapResult",
    "transform",
    "inverse_transform",
    "check_accuracies",
    "fit_line",
    "effective_robustness",
    "er_from_frame",
    "bootstrap_er",
    "average_copies",
    "summarize_er",
    "line_plot_data",
]

#: Accuracies are clipped into [EPS, 1 - EPS] before probit/logit.
EPS: float = 1e-6
#: ddof of std(y) in the interval's s_e; 0 reproduces the official code (np.std default).
DEFAULT_DDOF: int = 0
SCALES: tuple[str, ...] = ("probit", "logit")

_FORWARD = {"probit": stats.norm.ppf, "logit": special.logit}
_INVERSE = {"probit": stats.norm.cdf, "logit": special.expit}


class AccuracyError(ValueError):
    """Accuracies that are not finite numbers in [0, 1] (message names column and model)."""


class FitError(ValueError):
    """The baseline fit cannot be computed (too few points, degenerate x, ...)."""


# --------------------------------------------------------------------------- transforms
def _check_scale(scale: str) -> str:
    if scale not in _FORWARD:
        raise ValueError(f"unknown scale {scale!r}; valid choices: {', '.join(SCALES)}")
    return scale


def transform(acc, scale: str = "probit", eps: float = EPS) -> np.ndarray:
    """probit/logit of accuracies, after clipping into [eps, 1 - eps]."""
    _check_scale(scale)
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps}")
    a = np.clip(np.asarray(acc, dtype=float), eps, 1.0 - eps)
    return _FORWARD[scale](a)


def inverse_transform(z, scale: str = "probit") -> np.ndarray:
    """Inverse of :func:`transform` (normal CDF or sigmoid), back to accuracy units."""
    _check_scale(scale)
    return _INVERSE[scale](np.asarray(z, dtype=float))


# --------------------------------------------------------------------------- validation
def _model_names(models, n: int) -> list[str]:
    if models is None:
        return [str(i) for i in range(n)]
    names = [str(m) for m in models]
    if len(names) != n:
        raise ValueError(f"got {len(names)} model names for {n} accuracies")
    return names


def check_accuracies(
    values,
    *,
    column: str = "accuracy",
    models: Sequence | None = None,
    upper: float = 1.0,
) -> np.ndarray:
    """Return ``values`` as a 1-D float array, or raise :class:`AccuracyError`.

    Checks: numeric, 1-D, no NaN/inf, every value in ``[0, upper]`` (``upper=100`` for
    percent). The message names the column and the first offending model.
    """
    raw = np.asarray(values)
    if raw.ndim != 1:
        raise AccuracyError(f"column {column!r}: expected a 1-D array of accuracies, got shape {raw.shape}")
    names = _model_names(models, raw.shape[0])
    try:
        arr = raw.astype(float)
    except (TypeError, ValueError):
        bad = []
        for name, v in zip(names, raw):
            try:
                float(v)
            except (TypeError, ValueError):
                bad.append((name, v))
        name, v = bad[0] if bad else ("?", "?")
        raise AccuracyError(
            f"column {column!r}: model {name!r} has a non-numeric accuracy {v!r}"
        ) from None
    nan = ~np.isfinite(arr)
    if nan.any():
        i = int(np.flatnonzero(nan)[0])
        raise AccuracyError(
            f"column {column!r}: model {names[i]!r} has a missing/non-finite accuracy ({arr[i]}); "
            f"{int(nan.sum())} such value(s) in this column"
        )
    out = (arr < 0) | (arr > upper)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        hint = " (are these percentages? use percent units)" if upper == 1.0 and arr[i] <= 100 else ""
        raise AccuracyError(
            f"column {column!r}: model {names[i]!r} has accuracy {arr[i]:.17g} outside [0, {upper:g}]{hint}; "
            f"{int(out.sum())} such value(s) in this column"
        )
    return arr


# --------------------------------------------------------------------------- the line fit
@dataclass(frozen=True)
class LineFit:
    """OLS fit of scale(acc_shift) on scale(acc_ref) over the baseline models.

    ``slope``/``intercept`` live in transformed space. ``x_mean``, ``sxx`` and ``s_e``
    are the transformed-space quantities of the mean-prediction band. ``x_min``/``x_max``
    are the baseline reference accuracies' range (accuracy units).
    """

    scale: str
    slope: float
    intercept: float
    r: float
    n: int
    x_mean: float
    sxx: float
    s_e: float
    t_crit: float
    confidence: float
    ddof: int
    eps: float
    x_min: float
    x_max: float

    @property
    def r2(self) -> float:
        return self.r**2

    def quality(self) -> dict:
        """Fit quality that must travel with every ER number."""
        return {
            "scale": self.scale,
            "slope": self.slope,
            "intercept": self.intercept,
            "r": self.r,
            "r2": self.r2,
            "n": self.n,
        }

    def predict_transformed(self, acc_ref) -> np.ndarray:
        return self.slope * transform(acc_ref, self.scale, self.eps) + self.intercept

    def half_width(self, acc_ref) -> np.ndarray:
        """Half-width of the mean-prediction band at ``acc_ref``, in transformed space."""
        x = transform(acc_ref, self.scale, self.eps)
        return self.t_crit * self.s_e * np.sqrt(1.0 / self.n + (x - self.x_mean) ** 2 / self.sxx)

    def predict(self, acc_ref) -> np.ndarray:
        """Predicted shifted accuracy on the line (accuracy units)."""
        return inverse_transform(self.predict_transformed(acc_ref), self.scale)

    def band(self, acc_ref) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lower, predicted, upper) shifted accuracy, accuracy units."""
        z = self.predict_transformed(acc_ref)
        h = self.half_width(acc_ref)
        inv = lambda v: inverse_transform(v, self.scale)  # noqa: E731
        return inv(z - h), inv(z), inv(z + h)


def fit_line(
    baseline_ref,
    baseline_shift,
    scale: str = "probit",
    *,
    confidence: float = 0.95,
    ddof: int = DEFAULT_DDOF,
    eps: float = EPS,
    models: Sequence | None = None,
    ref_name: str = "ref",
    shift_name: str = "shift",
) -> LineFit:
    """Fit the baseline line; accuracies in [0, 1]. See the module docstring."""
    _check_scale(scale)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (official code) or 1 (textbook), got {ddof}")
    xr = check_accuracies(baseline_ref, column=ref_name, models=models)
    yr = check_accuracies(baseline_shift, column=shift_name, models=models)
    if xr.shape != yr.shape:
        raise FitError(f"{len(xr)} baseline {ref_name!r} accuracies but {len(yr)} {shift_name!r} accuracies")
    n = xr.shape[0]
    if n < 3:
        raise FitError(
            f"need at least 3 baseline models to fit the line and its interval, got {n}"
        )
    x = transform(xr, scale, eps)
    y = transform(yr, scale, eps)
    x_mean = float(np.mean(x))
    sxx = float(np.sum((x - x_mean) ** 2))
    if not sxx > 0:
        raise FitError(
            f"all {n} baseline models have the same {ref_name!r} accuracy after the {scale} transform; "
            "the line is undefined (baselines must span a range of accuracies)"
        )
    res = stats.linregress(x, y)
    r = float(res.rvalue)
    if not np.isfinite(r):  # all y identical: perfect horizontal line
        r = 0.0
    s_e = float(np.std(y, ddof=ddof) * np.sqrt((1.0 - r**2) * (n - 1) / (n - 2)))
    t_crit = float(stats.t(n - 2).ppf(1.0 - (1.0 - confidence) / 2.0))
    return LineFit(
        scale=scale,
        slope=float(res.slope),
        intercept=float(res.intercept),
        r=r,
        n=n,
        x_mean=x_mean,
        sxx=sxx,
        s_e=s_e,
        t_crit=t_crit,
        confidence=confidence,
        ddof=ddof,
        eps=eps,
        x_min=float(xr.min()),
        x_max=float(xr.max()),
    )


# --------------------------------------------------------------------------- ER
@dataclass(frozen=True)
class ERResult:
    """Per-model ER with its mean-prediction-band interval, plus the fit that made it.

    All accuracy-valued arrays are in accuracy units [0, 1].
    """

    models: tuple[str, ...]
    ref_acc: np.ndarray
    shift_acc: np.ndarray
    predicted: np.ndarray
    er: np.ndarray
    er_low: np.ndarray
    er_high: np.ndarray
    fit: LineFit
    is_baseline: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.models)

    def to_frame(self, with_fit: bool = True) -> pd.DataFrame:
        """One row per model; with_fit adds scale, slope, intercept, r, r2, n_baseline."""
        df = pd.DataFrame(
            {
                "model": list(self.models),
                "ref_acc": self.ref_acc,
                "shift_acc": self.shift_acc,
                "predicted": self.predicted,
                "er": self.er,
                "er_low": self.er_low,
                "er_high": self.er_high,
            }
        )
        if self.is_baseline is not None:
            df["is_baseline"] = np.asarray(self.is_baseline, dtype=bool)
        if with_fit:
            q = self.fit.quality()
            for k in ("scale", "slope", "intercept", "r", "r2"):
                df[k] = q[k]
            df["n_baseline"] = q["n"]
        return df

    def subset(self, mask) -> "ERResult":
        m = np.asarray(mask, dtype=bool)
        return ERResult(
            models=tuple(np.asarray(self.models, dtype=object)[m]),
            ref_acc=self.ref_acc[m],
            shift_acc=self.shift_acc[m],
            predicted=self.predicted[m],
            er=self.er[m],
            er_low=self.er_low[m],
            er_high=self.er_high[m],
            fit=self.fit,
            is_baseline=None if self.is_baseline is None else np.asarray(self.is_baseline)[m],
        )

    def summary(self) -> dict:
        """n, mean/max/min ER, argmax model, and the fit quality."""
        out = {"n": len(self)}
        if len(self):
            i = int(np.argmax(self.er))
            out.update(
                mean_er=float(np.mean(self.er)),
                max_er=float(self.er[i]),
                argmax_model=self.models[i],
                min_er=float(np.min(self.er)),
            )
        else:
            out.update(mean_er=float("nan"), max_er=float("nan"), argmax_model=None, min_er=float("nan"))
        out["fit"] = self.fit.quality()
        return out


def effective_robustness(
    fit: LineFit,
    ref_acc,
    shift_acc,
    *,
    models: Sequence | None = None,
    is_baseline=None,
    ref_name: str = "ref",
    shift_name: str = "shift",
) -> ERResult:
    """ER of each model against an existing ``fit``; accuracies in [0, 1]."""
    x = check_accuracies(ref_acc, column=ref_name, models=models)
    y = check_accuracies(shift_acc, column=shift_name, models=models)
    if x.shape != y.shape:
        raise ValueError(f"{len(x)} {ref_name!r} accuracies but {len(y)} {shift_name!r} accuracies")
    names = tuple(_model_names(models, len(x)))
    lower, pred, upper = fit.band(x)
    return ERResult(
        models=names,
        ref_acc=x,
        shift_acc=y,
        predicted=pred,
        er=y - pred,
        er_low=y - upper,
        er_high=y - lower,
        fit=fit,
        is_baseline=None if is_baseline is None else np.asarray(is_baseline, dtype=bool),
    )


def _frame_models(df: pd.DataFrame, model_col: str | None) -> list[str]:
    if model_col is None:
        return [str(i) for i in df.index]
    if model_col not in df.columns:
        raise KeyError(f"model column {model_col!r} not found; available columns: {', '.join(map(str, df.columns))}")
    return [str(m) for m in df[model_col]]


def er_from_frame(
    df: pd.DataFrame,
    ref: str,
    shift: str,
    baseline,
    *,
    model_col: str | None = "model",
    scale: str = "probit",
    confidence: float = 0.95,
    ddof: int = DEFAULT_DDOF,
    eps: float = EPS,
) -> ERResult:
    """Fit on the baseline rows of ``df`` and compute the ER of *every* row.

    ``baseline`` is a boolean mask aligned with ``df`` (array or Series) or the name of a
    boolean column. Use ``result.subset(~result.is_baseline)`` for the other models.
    Accuracies in [0, 1]. ``model_col=None`` uses the row index as model name.
    """
    for col in (ref, shift):
        if col not in df.columns:
            raise KeyError(f"column {col!r} not found; available columns: {', '.join(map(str, df.columns))}")
    models = _frame_models(df, model_col)
    if isinstance(baseline, str):
        if baseline not in df.columns:
            raise KeyError(f"baseline column {baseline!r} not found; available columns: {', '.join(map(str, df.columns))}")
        mask = df[baseline].to_numpy()
    else:
        mask = baseline.to_numpy() if isinstance(baseline, pd.Series) else np.asarray(baseline)
    if mask.shape != (len(df),):
        raise ValueError(f"baseline mask has shape {mask.shape}, expected ({len(df)},)")
    if mask.dtype != bool:
        if pd.isna(mask).any():
            raise ValueError("baseline mask contains missing values")
        mask = mask.astype(bool)
    x = check_accuracies(df[ref].to_numpy(), column=ref, models=models)
    y = check_accuracies(df[shift].to_numpy(), column=shift, models=models)
    base_models = [m for m, b in zip(models, mask) if b]
    fit = fit_line(
        x[mask], y[mask], scale, confidence=confidence, ddof=ddof, eps=eps,
        models=base_models, ref_name=ref, shift_name=shift,
    )
    return effective_robustness(fit, x, y, models=models, is_baseline=mask, ref_name=ref, shift_name=shift)


# --------------------------------------------------------------------------- bootstrap
@dataclass(frozen=True)
class BootstrapResult:
    """Percentile bootstrap interval of ER over resampled baseline models."""

    models: tuple[str, ...]
    er: np.ndarray
    er_low: np.ndarray
    er_high: np.ndarray
    n_boot: int
    n_used: int
    seed: int
    confidence: float
    fit: LineFit
    slopes: np.ndarray
    intercepts: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        q = self.fit.quality()
        return pd.DataFrame(
            {
                "model": list(self.models),
                "er": self.er,
                "er_boot_low": self.er_low,
                "er_boot_high": self.er_high,
                "scale": q["scale"],
                "slope": q["slope"],
                "intercept": q["intercept"],
                "r": q["r"],
                "r2": q["r2"],
                "n_baseline": q["n"],
                "n_boot": self.n_used,
            }
        )


def bootstrap_er(
    baseline_ref,
    baseline_shift,
    ref_acc,
    shift_acc,
    scale: str = "probit",
    *,
    models: Sequence | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    eps: float = EPS,
) -> BootstrapResult:
    """Bootstrap the baseline rows (with replacement), refit, take the ER percentiles.

    Resamples whose reference accuracies are all equal (undefined slope) are dropped;
    ``n_used`` says how many were kept. Deterministic for a given ``seed``.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    fit = fit_line(baseline_ref, baseline_shift, scale, confidence=confidence, eps=eps)
    point = effective_robustness(fit, ref_acc, shift_acc, models=models)
    bx = transform(check_accuracies(baseline_ref, column="baseline ref"), scale, eps)
    by = transform(check_accuracies(baseline_shift, column="baseline shift"), scale, eps)
    n = bx.shape[0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    X, Y = bx[idx], by[idx]
    xm, ym = X.mean(axis=1, keepdims=True), Y.mean(axis=1, keepdims=True)
    sxx = ((X - xm) ** 2).sum(axis=1)
    sxy = ((X - xm) * (Y - ym)).sum(axis=1)
    ok = sxx > 1e-12 * max(1.0, fit.sxx)
    slopes = sxy[ok] / sxx[ok]
    intercepts = ym[ok, 0] - slopes * xm[ok, 0]
    if slopes.size == 0:
        raise FitError("every bootstrap resample had identical reference accuracies")
    tx = transform(point.ref_acc, scale, eps)
    preds = inverse_transform(slopes[:, None] * tx[None, :] + intercepts[:, None], scale)
    ers = point.shift_acc[None, :] - preds
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(ers, [alpha, 1.0 - alpha], axis=0)
    return BootstrapResult(
        models=point.models,
        er=point.er,
        er_low=low,
        er_high=high,
        n_boot=n_boot,
        n_used=int(slopes.size),
        seed=seed,
        confidence=confidence,
        fit=fit,
        slopes=slopes,
        intercepts=intercepts,
    )


# --------------------------------------------------------------------------- copies / variants
def average_copies(
    df: pd.DataFrame,
    by: str | Sequence[str],
    cols: Sequence[str],
) -> pd.DataFrame:
    """Average repeated copies (e.g. seeds) of a model before computing ER.

    Groups ``df`` by ``by`` (a column or columns naming the model / variant) and takes
    the mean of each accuracy column in ``cols``. Adds ``n_copies``. Other columns are
    kept when constant within every group (e.g. a ``group`` label) and dropped otherwise
    (e.g. ``seed``). NaNs in ``cols`` are an error (a missing copy should be explicit).
    """
    keys = [by] if isinstance(by, str) else list(by)
    cols = list(cols)
    missing = [c for c in keys + cols if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not found; available columns: {', '.join(map(str, df.columns))}")
    if df.empty:
        raise ValueError("cannot average copies of an empty table")
    for c in cols:
        bad = df[c].isna()
        if bad.any():
            row = df.loc[bad, keys].iloc[0].tolist()
            raise AccuracyError(f"column {c!r}: missing accuracy for {dict(zip(keys, row))}")
    grouped = df.groupby(keys, sort=False, dropna=False)
    out = grouped[cols].mean()
    out["n_copies"] = grouped.size()
    others = [c for c in df.columns if c not in keys and c not in cols]
    if others:
        nun = grouped[others].nunique(dropna=False)
        const = [c for c in others if (nun[c] <= 1).all()]
        if const:
            out = out.join(grouped[const].first())
    out = out.reset_index()
    return out[keys + [c for c in out.columns if c not in keys]]


def summarize_er(er: pd.DataFrame | ERResult, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Mean / max / min ER and n per variant (or over everything when ``by`` is None).

    ``er`` is an :class:`ERResult` or a frame with columns ``model`` and ``er`` (plus the
    ``by`` column(s), and optionally the fit columns of ``ERResult.to_frame``, which are
    carried along when constant within each variant).
    """
    df = er.to_frame() if isinstance(er, ERResult) else er
    for c in ("model", "er"):
        if c not in df.columns:
            raise KeyError(f"column {c!r} not found; available columns: {', '.join(map(str, df.columns))}")
    if by is None:
        df = df.assign(_all="all")
        keys = ["_all"]
    else:
        keys = [by] if isinstance(by, str) else list(by)
        missing = [c for c in keys if c not in df.columns]
        if missing:
            raise KeyError(f"column(s) {missing} not found; available columns: {', '.join(map(str, df.columns))}")
    rows = []
    fit_cols = [c for c in ("scale", "slope", "intercept", "r", "r2", "n_baseline") if c in df.columns]
    for key, g in df.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        e = g["er"].to_numpy(dtype=float)
        i = int(np.argmax(e))
        row = dict(zip(keys, key))
        row.update(
            n=len(e),
            mean_er=float(e.mean()),
            max_er=float(e[i]),
            argmax_model=str(g["model"].iloc[i]),
            min_er=float(e.min()),
            std_er=float(e.std(ddof=1)) if len(e) > 1 else float("nan"),
        )
        for c in fit_cols:
            if g[c].nunique(dropna=False) == 1:
                row[c] = g[c].iloc[0]
        rows.append(row)
    out = pd.DataFrame(rows)
    if by is None:
        out = out.drop(columns="_all")
    return out


# --------------------------------------------------------------------------- plots
def line_plot_data(
    fit: LineFit,
    x_range: tuple[float, float] | None = None,
    num: int = 200,
    extra_points: Iterable[float] | None = None,
) -> pd.DataFrame:
    """Grid for accuracy-on-the-line figures: x, predicted, lower, upper (accuracy units).

    The grid is evenly spaced in transformed (probit/logit) space, so it is even on the
    usual probit-scaled axes; ``x_range`` defaults to the baseline range, widened to
    cover ``extra_points`` (e.g. the pre-trained models' reference accuracies). Columns
    ``x_t``/``y_t`` give the transformed coordinates of the line.
    """
    if num < 2:
        raise ValueError(f"num must be >= 2, got {num}")
    lo, hi = (fit.x_min, fit.x_max) if x_range is None else x_range
    if extra_points is not None:
        pts = check_accuracies(np.asarray(list(extra_points), dtype=float), column="extra_points")
        if pts.size:
            lo, hi = min(lo, float(pts.min())), max(hi, float(pts.max()))
    check_accuracies(np.array([lo, hi]), column="x_range")
    if not lo < hi:
        raise ValueError(f"x_range must satisfy low < high, got ({lo}, {hi})")
    t_lo, t_hi = transform([lo, hi], fit.scale, fit.eps)
    xt = np.linspace(t_lo, t_hi, num)
    x = inverse_transform(xt, fit.scale)
    lower, pred, upper = fit.band(x)
    return pd.DataFrame(
        {
            "x": x,
            "predicted": pred,
            "lower": lower,
            "upper": upper,
            "x_t": xt,
            "y_t": fit.slope * xt + fit.intercept,
        }
    )
