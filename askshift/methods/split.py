"""Split a distribution shift into in-support and out-of-support parts (paper Sec. 5.2).

The density ratio ``p_ref(x) / p_shift(x)`` is estimated with a domain classifier trained to
tell reference from shifted examples:

1. :func:`cross_fit_domain_logits` -- k-fold cross-fitting, stratified by domain: every
   example gets a logit from a classifier that never saw it.
2. :func:`fit_temperature` -- ONE temperature ``T`` for all out-of-fold logits, minimising the
   mean log loss (scipy, optimised over ``log T``).
3. :func:`density_ratio` -- with the calibrated logits.
4. :func:`split_out_of_support` -- a shifted example is out-of-support when its ratio is
   below ``epsilon`` (0.2 in the paper, 0.1 in the released notebook).

Sign convention
---------------
``logit`` is the log-odds that an example is *shifted* (domain label 1 = shifted, 0 =
reference). If ``logit / T`` is calibrated on a pool of ``n_ref`` reference and ``n_shift``
shifted examples, Bayes' rule gives ``logit / T = log(p_shift(x) n_shift / (p_ref(x) n_ref))``,
so::

    p_ref(x) / p_shift(x) = exp(-logit / T) * n_shift / n_ref

The factor ``n_shift / n_ref`` removes the class prior of the pool: two identical
distributions give ratio ~1 whatever their sizes. Small ratio = the reference distribution
(almost) never produces x = out-of-support.

Also :func:`membership_scores` (checking a split against known membership) and
:func:`difficulty_matched_weights` (the appendix's control for example difficulty).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from askshift.methods.er_tables import shift_er
from askshift.methods.robustness import FitError

__all__ = [
    "DEFAULT_EPSILON",
    "DEFAULT_K",
    "DomainRatio",
    "MembershipScores",
    "DifficultyWeights",
    "default_domain_classifier",
    "cross_fit_domain_logits",
    "fit_temperature",
    "binary_log_loss",
    "density_ratio",
    "log_density_ratio",
    "split_out_of_support",
    "membership_scores",
    "auroc",
    "difficulty_matched_weights",
    "pixel_features",
    "split_shift",
    "part_weights",
    "matched_weights",
    "baseline_halves",
    "matched_er",
    "part_points",
    "part_er",
]

#: Paper's threshold on p_ref/p_shift below which a shifted example is out-of-support.
DEFAULT_EPSILON: float = 0.2
#: Number of cross-fitting folds (paper: 10).
DEFAULT_K: int = 10
#: Bounds of the temperature search, T in [1e-4, 1e4].
_LOG_T_BOUNDS = (float(np.log(1e-4)), float(np.log(1e4)))


def default_domain_classifier(C: float = 1.0, max_iter: int = 1000) -> Any:
    """Default domain classifier: standardise inputs, then L2 logistic regression (lbfgs)."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter))


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _as_examples(name: str, x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim == 0:
        raise ValueError(f"{name} must be an array with one row per example, got a scalar")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; need at least one example")
    arr = arr.reshape(arr.shape[0], -1)  # images etc. are flattened to vectors
    if np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_epsilon(epsilon: Any) -> float:
    try:
        eps = float(epsilon)
    except (TypeError, ValueError):
        raise TypeError(f"epsilon must be a float in (0, 1], got {epsilon!r}") from None
    if not (np.isfinite(eps) and 0.0 < eps <= 1.0):
        raise ValueError(
            f"epsilon must be in (0, 1] (a threshold on p_ref/p_shift; paper 0.2), got {epsilon!r}"
        )
    return eps


def _estimator_logits(est: Any, x: np.ndarray) -> np.ndarray:
    """Log-odds of class 1 (shifted) from an sklearn-like fitted estimator."""
    classes = getattr(est, "classes_", None)
    if classes is not None and list(np.asarray(classes)) != [0, 1]:
        raise ValueError(f"domain classifier has classes_ {list(classes)}, expected [0, 1] (0=reference, 1=shifted)")
    if hasattr(est, "decision_function"):
        z = np.asarray(est.decision_function(x), dtype=np.float64)
        if z.ndim == 2 and z.shape[1] == 1:
            z = z[:, 0]
        if z.ndim != 1:
            raise ValueError(f"decision_function returned shape {z.shape}; expected one logit per example")
        return z
    if hasattr(est, "predict_proba"):
        p = np.asarray(est.predict_proba(x), dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"predict_proba returned shape {p.shape}; expected (n, 2)")
        p = np.clip(p, 1e-12, 1.0)
        return np.log(p[:, 1]) - np.log(p[:, 0])
    raise TypeError(
        f"domain classifier {type(est).__name__} has neither decision_function nor predict_proba; "
        "make_classifier must return an sklearn-like classifier with one of them"
    )


def binary_log_loss(logits: Any, y: Any, temperature: float = 1.0) -> float:
    """Mean binary cross-entropy of ``sigmoid(logits / temperature)`` against ``y`` in {0, 1}."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    yy = np.asarray(y, dtype=np.float64)
    # -[y log s(z) + (1-y) log(1-s(z))] = softplus(z) - y z, computed stably
    return float(np.mean(np.logaddexp(0.0, z) - yy * z))


def fit_temperature(logits: Any, y: Any) -> float:
    """One temperature ``T > 0`` minimising the mean log loss of ``sigmoid(logits / T)``.

    Optimised over ``u = log T`` with bounded Brent (``scipy.optimize.minimize_scalar``),
    T in [1e-4, 1e4]. The loss is convex in ``1/T``, hence unimodal in ``log T``. Logits that
    are all zero leave T undetermined: 1.0 is returned. A T at the upper bound means the
    logits carry no (or inverted) information about the domain.
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    yy = np.asarray(y).reshape(-1)
    if z.size == 0:
        raise ValueError("logits is empty; need out-of-fold logits to calibrate")
    if z.size != yy.size:
        raise ValueError(f"length mismatch: logits={z.size}, y={yy.size}")
    if not np.all(np.isin(yy, (0, 1))):
        raise ValueError("y must hold domain labels 0 (reference) / 1 (shifted)")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits contain NaN or infinite values")
    if np.all(z == 0):
        return 1.0
    res = optimize.minimize_scalar(
        lambda u: binary_log_loss(z, yy, np.exp(u)),
        bounds=_LOG_T_BOUNDS,
        method="bounded",
        options={"xatol": 1e-10, "maxiter": 500},
    )
    return float(np.exp(res.x))


def log_density_ratio(logits: Any, temperature: float, n_ref: int, n_shift: int) -> np.ndarray:
    """``log(p_ref/p_shift) = -logit / T + log(n_shift / n_ref)`` (logit = log-odds of shifted)."""
    T = float(temperature)
    if not (np.isfinite(T) and T > 0):
        raise ValueError(f"temperature must be a positive finite float, got {temperature!r}")
    if int(n_ref) <= 0 or int(n_shift) <= 0:
        raise ValueError(f"n_ref and n_shift must be positive counts, got n_ref={n_ref}, n_shift={n_shift}")
    z = np.asarray(logits, dtype=np.float64)
    return -z / T + np.log(int(n_shift) / int(n_ref))


def density_ratio(logits: Any, temperature: float, n_ref: int, n_shift: int) -> np.ndarray:
    """``p_ref(x)/p_shift(x) = exp(-logit / T) * n_shift / n_ref``; may overflow to ``inf``
    (deep inside the reference support), which is harmless for thresholding."""
    with np.errstate(over="ignore"):
        return np.exp(log_density_ratio(logits, temperature, n_ref, n_shift))


# --------------------------------------------------------------------------------------------
# cross-fitting
# --------------------------------------------------------------------------------------------
@dataclass
class DomainRatio:
    """Result of :func:`cross_fit_domain_logits`.

    logits_ref (n_ref,), logits_shift (n_shift,) : out-of-fold log-odds of "shifted" (raw,
        before temperature).
    fold_ref, fold_shift : the fold each example was held out in (0..k-1).
    temperature : the one calibration temperature fitted on all out-of-fold logits.
    ratio_ref, ratio_shift : calibrated ``p_ref/p_shift`` per example.
    log_ratio_ref, log_ratio_shift : their logs (finite, better for plots and ranking).
    log_loss_uncalibrated, log_loss_calibrated : mean log loss of the out-of-fold logits at
        T = 1 and at the fitted T.
    domain_auroc : AUROC of the out-of-fold logits for telling shifted from reference.
    n_ref, n_shift, k, seed.
    """

    logits_ref: np.ndarray
    logits_shift: np.ndarray
    fold_ref: np.ndarray
    fold_shift: np.ndarray
    temperature: float
    ratio_ref: np.ndarray
    ratio_shift: np.ndarray
    log_ratio_ref: np.ndarray
    log_ratio_shift: np.ndarray
    log_loss_uncalibrated: float
    log_loss_calibrated: float
    domain_auroc: float
    n_ref: int
    n_shift: int
    k: int
    seed: int

    def out_of_support(self, epsilon: float = DEFAULT_EPSILON) -> np.ndarray:
        """Boolean mask over the *shifted* examples: ratio < epsilon."""
        return split_out_of_support(self.ratio_shift, epsilon)


def cross_fit_domain_logits(
    X_ref: Any,
    X_shift: Any,
    k: int = DEFAULT_K,
    make_classifier: Callable[[], Any] | Any | None = None,
    seed: int = 0,
) -> DomainRatio:
    """Cross-fitted, temperature-calibrated density ratio ``p_ref/p_shift``.

    ``X_ref`` (n_ref, ...) and ``X_shift`` (n_shift, ...) are feature vectors (or images, which
    are flattened). The pooled examples (label 0 = reference, 1 = shifted) are split into
    ``k`` folds stratified by domain (``StratifiedKFold(shuffle=True, random_state=seed)``);
    each fold's examples get logits from a classifier fitted on the other ``k - 1`` folds.

    ``make_classifier``: None (default: :func:`default_domain_classifier`, standardise + L2
    logistic regression), a zero-argument callable returning a fresh sklearn-like classifier,
    or an unfitted estimator instance (cloned per fold). The classifier must expose
    ``decision_function`` (log-odds of class 1) or ``predict_proba``; seed any randomness it
    has yourself (e.g. ``functools.partial(RandomForestClassifier, random_state=0)``).
    """
    xr = _as_examples("X_ref", X_ref)
    xs = _as_examples("X_shift", X_shift)
    if xr.shape[1:] != xs.shape[1:]:
        raise ValueError(f"X_ref and X_shift must have the same feature shape, got {xr.shape[1:]} and {xs.shape[1:]}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer >= 2, got {k!r}")
    n_ref, n_shift = xr.shape[0], xs.shape[0]
    if k < 2:
        raise ValueError(f"k must be an integer >= 2 (number of cross-fitting folds; paper 10), got {k}")
    if k > min(n_ref, n_shift):
        raise ValueError(
            f"k={k} folds need at least k examples of each domain; got n_ref={n_ref}, n_shift={n_shift}"
        )

    if make_classifier is None:
        factory: Callable[[], Any] = default_domain_classifier
    elif hasattr(make_classifier, "fit") and not isinstance(make_classifier, type):
        template = make_classifier
        factory = lambda: clone(template)  # noqa: E731
    elif callable(make_classifier):
        factory = make_classifier
    else:
        raise TypeError(
            f"make_classifier must be None, a zero-argument callable or an sklearn estimator, got {make_classifier!r}"
        )

    x = np.concatenate([xr, xs], axis=0)
    y = np.concatenate([np.zeros(n_ref, dtype=np.int64), np.ones(n_shift, dtype=np.int64)])
    logits = np.empty(x.shape[0])
    folds = np.empty(x.shape[0], dtype=np.int64)
    skf = StratifiedKFold(n_splits=int(k), shuffle=True, random_state=seed)
    for f, (tr, te) in enumerate(skf.split(np.zeros(len(y)), y)):
        est = factory()
        if not hasattr(est, "fit"):
            raise TypeError(f"make_classifier() returned {type(est).__name__}, which has no fit method")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(x[tr], y[tr])
        logits[te] = _estimator_logits(est, x[te])
        folds[te] = f
    if not np.all(np.isfinite(logits)):
        raise ValueError("the domain classifier produced non-finite logits")

    T = fit_temperature(logits, y)
    log_ratio = log_density_ratio(logits, T, n_ref, n_shift)
    with np.errstate(over="ignore"):
        ratio = np.exp(log_ratio)
    return DomainRatio(
        logits_ref=logits[:n_ref],
        logits_shift=logits[n_ref:],
        fold_ref=folds[:n_ref],
        fold_shift=folds[n_ref:],
        temperature=T,
        ratio_ref=ratio[:n_ref],
        ratio_shift=ratio[n_ref:],
        log_ratio_ref=log_ratio[:n_ref],
        log_ratio_shift=log_ratio[n_ref:],
        log_loss_uncalibrated=binary_log_loss(logits, y, 1.0),
        log_loss_calibrated=binary_log_loss(logits, y, T),
        domain_auroc=auroc(logits, y.astype(bool)),
        n_ref=n_ref,
        n_shift=n_shift,
        k=int(k),
        seed=int(seed),
    )


# --------------------------------------------------------------------------------------------
# split and scores
# --------------------------------------------------------------------------------------------
def split_out_of_support(ratio: Any, epsilon: float = DEFAULT_EPSILON) -> np.ndarray:
    """Boolean mask: ``True`` (out-of-support) where ``ratio < epsilon``, epsilon in (0, 1]."""
    eps = _check_epsilon(epsilon)
    r = np.asarray(ratio, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"ratio must be a 1-D array, got shape {r.shape}")
    if np.any(np.isnan(r)) or np.any(r < 0):
        raise ValueError("ratio must be non-negative and not NaN (it is p_ref/p_shift)")
    return r < eps


def auroc(scores: Any, positive: Any) -> float:
    """Area under the ROC curve of ``scores`` for the boolean ``positive`` labels
    (Mann-Whitney with average ranks for ties; handles +-inf scores)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    pos = np.asarray(positive).reshape(-1)
    if pos.dtype != bool:
        if not np.all(np.isin(pos, (0, 1))):
            raise ValueError("positive must be boolean or 0/1")
        pos = pos.astype(bool)
    if s.size != pos.size:
        raise ValueError(f"length mismatch: scores={s.size}, positive={pos.size}")
    if np.any(np.isnan(s)):
        raise ValueError("scores contain NaN")
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes; got {n_pos} positive and {n_neg} negative examples")
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass
class MembershipScores:
    """How well a density-ratio split recovers known out-of-support membership.

    auroc : AUROC of ``-ratio`` for the out-of-support class (threshold-free).
    precision, recall, f1 : of the split ``ratio < epsilon`` (precision is nan when nothing is
        predicted out-of-support).
    epsilon, n_predicted_out, n_true_out, n_total.
    """

    auroc: float
    precision: float
    recall: float
    f1: float
    epsilon: float
    n_predicted_out: int
    n_true_out: int
    n_total: int


def membership_scores(ratio: Any, is_out_of_support: Any, epsilon: float = DEFAULT_EPSILON) -> MembershipScores:
    """Compare ``ratio`` (p_ref/p_shift of shifted examples) with known membership."""
    pred = split_out_of_support(ratio, epsilon)
    truth = np.asarray(is_out_of_support).reshape(-1)
    if truth.dtype != bool:
        if not np.all(np.isin(truth, (0, 1))):
            raise ValueError("is_out_of_support must be boolean or 0/1")
        truth = truth.astype(bool)
    if truth.size != pred.size:
        raise ValueError(f"length mismatch: ratio={pred.size}, is_out_of_support={truth.size}")
    r = np.asarray(ratio, dtype=np.float64)
    with np.errstate(divide="ignore"):
        score = -np.log(r)  # monotone in -ratio, finite-friendly
    tp = int(np.sum(pred & truth))
    n_pred, n_true = int(pred.sum()), int(truth.sum())
    precision = tp / n_pred if n_pred else float("nan")
    recall = tp / n_true if n_true else float("nan")
    f1 = 2 * tp / (n_pred + n_true) if (n_pred + n_true) else float("nan")
    return MembershipScores(
        auroc=auroc(score, truth),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        epsilon=_check_epsilon(epsilon),
        n_predicted_out=n_pred,
        n_true_out=n_true,
        n_total=int(truth.size),
    )


# --------------------------------------------------------------------------------------------
# difficulty control (appendix)
# --------------------------------------------------------------------------------------------
@dataclass
class DifficultyWeights:
    """Result of :func:`difficulty_matched_weights`.

    weights : (n_source,) non-negative, summing to 1, such that the weighted histogram of the
        source difficulties matches the target's over ``bin_edges``.
    bin_edges : (n_bins + 1,) quantile edges over source and target difficulties together.
    coverage : fraction of the target mass in bins that contain source examples (1 = exact
        match; target mass in source-empty bins cannot be matched and is dropped).
    """

    weights: np.ndarray
    bin_edges: np.ndarray
    coverage: float


def difficulty_matched_weights(
    source_difficulty: Any, target_difficulty: Any, n_bins: int = 10
) -> DifficultyWeights:
    """Re-weight source examples so their difficulty distribution matches the target's.

    Used to compare ER on in-support vs out-of-support examples at equal difficulty (e.g.
    difficulty = mean baseline accuracy on the example): pass the in-support difficulties as
    source and the out-of-support ones as target, then compute weighted accuracies.
    Histogram matching over ``n_bins`` quantile bins of the pooled difficulties.
    """
    src = np.asarray(source_difficulty, dtype=np.float64).reshape(-1)
    tgt = np.asarray(target_difficulty, dtype=np.float64).reshape(-1)
    if src.size == 0 or tgt.size == 0:
        raise ValueError(f"source_difficulty and target_difficulty must be non-empty, got sizes {src.size} and {tgt.size}")
    if not (np.all(np.isfinite(src)) and np.all(np.isfinite(tgt))):
        raise ValueError("difficulties must be finite")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    edges = np.unique(np.quantile(np.concatenate([src, tgt]), np.linspace(0, 1, n_bins + 1)))
    if edges.size < 2:  # all difficulties equal
        return DifficultyWeights(np.full(src.size, 1.0 / src.size), np.array([src[0], src[0]]), 1.0)
    inner = edges[1:-1]
    sb = np.searchsorted(inner, src, side="right")
    tb = np.searchsorted(inner, tgt, side="right")
    nb = edges.size - 1
    s_count = np.bincount(sb, minlength=nb).astype(np.float64)
    t_mass = np.bincount(tb, minlength=nb) / tgt.size
    covered = s_count > 0
    coverage = float(t_mass[covered].sum())
    if coverage == 0:
        raise ValueError("no bin holds both source and target examples; cannot match difficulty")
    per_bin = np.where(covered, t_mass / np.where(covered, s_count, 1.0), 0.0) / coverage
    w = per_bin[sb]
    return DifficultyWeights(weights=w, bin_edges=edges, coverage=coverage)


# --------------------------------------------------------------------------------------------
# the parts of a shift and ER on each part
# --------------------------------------------------------------------------------------------
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


def split_shift(ref_features, shift_features, *, k: int = DEFAULT_K, C: float = 1.0, seed: int = 0,
                epsilon: float = DEFAULT_EPSILON) -> tuple[DomainRatio, np.ndarray]:
    """Density ratio of every shifted example and its out-of-support mask (ratio < epsilon)."""
    res = cross_fit_domain_logits(ref_features, shift_features, k=k,
                                    make_classifier=lambda: default_domain_classifier(C=C), seed=seed)
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
    dw = difficulty_matched_weights(d[~oos], d[oos], n_bins=n_bins)
    w = np.zeros(oos.size)
    w[~oos] = dw.weights
    return w


def baseline_halves(correct: np.ndarray, info: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Two halves of the baseline rows for cross-fitting, made of whole training runs: the
    snapshots of one run (``info["run"]``) make correlated errors, so they must never sit on
    both sides. Runs are ordered by mean correctness and dealt alternately, so both halves span
    the accuracies. Without a ``run`` column every model is its own run."""
    base = np.flatnonzero(info["role"].to_numpy() == "baseline")
    runs = info["run"].to_numpy()[base] if "run" in info else info["model"].to_numpy()[base]
    acc = np.asarray(correct, dtype=float)[base].mean(axis=1)
    units = pd.DataFrame({"row": base, "run": runs, "acc": acc}).groupby("run", sort=False)
    order = units["acc"].mean().sort_values(kind="stable").index
    first = set(order[0::2])
    rows = [base[np.isin(runs, list(first))], base[~np.isin(runs, list(first))]]
    return rows[0], rows[1]


def matched_er(correct: np.ndarray, info: pd.DataFrame, out_of_support, *, scale: str = "probit",
               confidence: float = 0.95, min_examples: int = 20, min_share: float = 0.0,
               part: str = "in_matched") -> pd.DataFrame:
    """ER on the in-support part at the out-of-support part's difficulty (appendix control),
    cross-fitted: difficulty measured by the same baselines that fit the line would select the
    examples those baselines got wrong and push the line down (every other model would look
    robust). So the baselines are split into two halves of independent training runs
    (:func:`baseline_halves`); the weights come from one half's difficulty, the line from the
    other half, and the two ERs (and interval bounds) are averaged. ``n_baseline`` is the
    smaller half's size.

    ``share`` is the re-weighted part's effective size (Kish) over the in-support examples. A
    small share means the in-support part has few examples as hard as the out-of-support ones,
    and the control then measures ER on the examples scratch models find hardest, where any
    other family of models looks robust even without a shift (on mixtures with a known in-support
    half: several to 20+ pp at shares of a few percent, within ~1 pp above 60%; the robustness
    step's ``control_check`` table). Below
    ``min_share`` one row with ``note`` and no ER is returned."""
    rest = np.flatnonzero(info["role"].to_numpy() != "baseline")
    halves = baseline_halves(correct, info)
    units = [len(set((info["run"] if "run" in info else info["model"]).to_numpy()[h])) for h in halves]
    if min(len(h) for h in halves) < 3 or min(units) < 1:
        return pd.DataFrame([{"part": part, "note": f"needs two halves of independent baseline runs with >= 3 "
                                                    f"models each, got {[len(h) for h in halves]}"}])
    ers, shares = [], []
    n_in = int((~np.asarray(out_of_support, dtype=bool)).sum())
    for fit_half, diff_half in (halves, halves[::-1]):
        w = matched_weights(out_of_support, np.asarray(correct, dtype=float)[diff_half].mean(axis=0))
        if w is None:
            return pd.DataFrame([{"part": part, "note": "an empty part: nothing to match"}])
        shares.append(effective_size(w) / n_in)
        rows = np.sort(np.concatenate([fit_half, rest]))
        pts = part_points(np.asarray(correct)[rows], info.iloc[rows].reset_index(drop=True), {part: w})
        ers.append(part_er(pts, scale=scale, confidence=confidence, min_examples=min_examples))
    share = float(np.mean(shares))
    if share < min_share:
        return pd.DataFrame([{"part": part, "n_examples": n_in, "effective_n": share * n_in, "share": share,
                              "note": f"difficulty overlap too small: the re-weighted in-support part is worth "
                                      f"{share * n_in:.0f} of {n_in} examples ({share:.1%} < {min_share:.0%}); "
                                      "the control would measure the examples scratch models find hardest"}])
    if any("er" not in e or e["er"].isna().all() for e in ers):
        return ers[0]
    out = ers[0].copy()
    for c in ("ref_acc", "shift_acc", "predicted", "er", "er_low", "er_high", "r", "r2", "effective_n"):
        if c in out:
            out[c] = (ers[0][c].to_numpy() + ers[1][c].to_numpy()) / 2
    out["n_baseline"] = min(len(h) for h in halves)
    out["share"] = share
    out["note"] = (f"cross-fitted over two halves of independent baseline runs ({units[0]} and {units[1]} runs): "
                   "weights from one, line from the other")
    return out


def effective_size(weights: np.ndarray) -> float:
    """Kish's effective sample size of non-negative weights: (sum w)^2 / sum w^2."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / (w ** 2).sum())


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
        # a weighted mean of 0/1 values: clip the rounding (an all-correct model gave 1 + 2e-16)
        f["shift_acc"] = np.clip(c @ w / w.sum(), 0.0, 1.0)
        f["n_examples"] = int((w > 0).sum())
        f["effective_n"] = effective_size(w)
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
            er, _, _ = shift_er(p, scale, confidence, 0, 0)
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
