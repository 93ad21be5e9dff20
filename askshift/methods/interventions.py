"""Bias interventions (paper Sec. 6) and the "corrected examples" analysis.

Pure functions over numpy arrays: no file I/O, no deep-learning framework.

* :func:`group_balanced_weights` -- DFR sample weights ``w_i = N / (G * n_{g(i)})``.
* :func:`fit_dfr` -- Deep Feature Re-weighting: an L2 logistic regression on standardised
  penultimate features of a held-out set, with group-balanced sample weights, returned as a
  :class:`DFRHead` whose ``weight``/``bias`` act on the *raw* features (the standardisation is
  folded in), ready to be copied into a network's last linear layer.
* :func:`select_C` / :func:`split_heldout` -- pick ``C`` by group-balanced accuracy on a
  validation split of the held-out set.
* :func:`group_balanced_sampler_weights` -- per-example sampling probabilities that equalise
  the groups, for re-weighting during training (e.g. ``torch.utils.data.WeightedRandomSampler``).
* :func:`corrected_examples` / :func:`overlap` -- which examples an intervention "corrects"
  (usually wrong for the baselines, usually right with the intervention) and whether two such
  sets overlap more or less than chance.

Conventions: ``labels`` are class indices; the head's rows follow ``classes`` (sorted unique
labels, or ``0..num_classes-1`` when ``num_classes`` is given). ``groups`` may be any hashable
values (ints, strings); only equality matters.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import itertools

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from askshift.methods.er_tables import correctness_matrix
from askshift.methods.metrics import group_balanced_accuracy

__all__ = [
    "DEFAULT_C",
    "DEFAULT_CS",
    "DFRHead",
    "CSelection",
    "OverlapResult",
    "group_balanced_weights",
    "group_balanced_sampler_weights",
    "fit_dfr",
    "select_C",
    "split_heldout",
    "corrected_examples",
    "overlap",
    "minority_groups",
    "corrected_analysis",
]

#: Default inverse L2 strength of the DFR logistic regression (sklearn's ``C``).
DEFAULT_C: float = 1.0
#: Grid searched by :func:`select_C` (the grid of the DFR paper, Kirichenko et al. 2023).
DEFAULT_CS: tuple[float, ...] = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _as_1d(name: str, x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    return arr


def _as_features(name: str, x: Any) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_examples, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; all features must be finite")
    return arr


def _check_same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"length mismatch: {desc}; all must have one entry per example")


def _group_index(groups: Any, name: str = "groups") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (unique_groups, inverse index, counts); errors on empty input."""
    g = _as_1d(name, groups)
    if g.size == 0:
        raise ValueError(f"{name} is empty; need at least one example with a group label")
    uniq, inv, counts = np.unique(g, return_inverse=True, return_counts=True)
    return uniq, inv.reshape(-1), counts


def _check_positive(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive float, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite float, got {value!r}")
    return v


def _check_expected_groups(uniq: np.ndarray, counts: np.ndarray, expected_groups: Any, name: str) -> None:
    if expected_groups is None:
        return
    present = {u.item() if hasattr(u, "item") else u for u in uniq}
    missing = [g for g in expected_groups if g not in present]
    if missing:
        raise ValueError(
            f"{name} has no examples for group(s) {missing}; every group in expected_groups "
            f"{list(expected_groups)} needs at least one example (present: {sorted(present, key=str)})"
        )


# --------------------------------------------------------------------------------------------
# group-balanced weights
# --------------------------------------------------------------------------------------------
def group_balanced_weights(groups: Any, expected_groups: Sequence[Any] | None = None) -> np.ndarray:
    """DFR sample weights ``w_i = N / (G * n_{g(i)})`` (paper Sec. 6).

    ``N`` is the number of examples, ``G`` the number of groups present and ``n_g`` the size of
    group ``g``. The weights sum to ``N`` and every group's total weight is ``N / G``.

    Pass ``expected_groups`` to fail loudly when a group that should be present is empty (an
    empty group would otherwise silently drop out of ``G``).
    """
    uniq, inv, counts = _group_index(groups)
    _check_expected_groups(uniq, counts, expected_groups, "groups")
    n, g = inv.size, uniq.size
    return n / (g * counts[inv].astype(np.float64))


def group_balanced_sampler_weights(groups: Any, expected_groups: Sequence[Any] | None = None) -> np.ndarray:
    """Per-example sampling probabilities ``p_i = 1 / (G * n_{g(i)})`` that equalise groups.

    They sum to 1 and each group receives total probability ``1/G``: drawing examples with
    these probabilities (with replacement, e.g. ``WeightedRandomSampler(p, num_samples=N)``)
    gives group-balanced mini-batches -- the re-weighting-during-training intervention.
    """
    w = group_balanced_weights(groups, expected_groups=expected_groups)
    return w / w.sum()


# --------------------------------------------------------------------------------------------
# DFR
# --------------------------------------------------------------------------------------------
def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class DFRHead:
    """A DFR last layer acting on raw (un-standardised) penultimate features.

    ``features @ weight.T + bias`` gives one logit per class (rows follow ``classes``); it
    equals the decision function of the logistic regression fitted on standardised features.
    For two classes sklearn fits a single sigmoid model ``z = w.x + b``; it is stored as the
    equivalent two-row softmax layer ``[-z/2, +z/2]`` (``logits[:, 1] - logits[:, 0] == z``).

    Fields
    ------
    weight : (num_classes, d) float64 -- copy into ``nn.Linear.weight``.
    bias : (num_classes,) float64 -- copy into ``nn.Linear.bias``.
    classes : (num_classes,) -- the label of each row.
    C : float -- inverse L2 strength used.
    mean, scale : (d,) -- the standardisation fitted on the held-out features (scale 1 for
        constant features).
    coef_standardized, intercept_standardized -- sklearn's ``coef_``/``intercept_`` in the
        standardised space (shape (1, d)/(1,) for two classes, else (K, d)/(K,)).
    sample_weight_sum : float -- total DFR sample weight (== number of examples).
    n_iter : int -- lbfgs iterations used; ``converged`` False if it hit ``max_iter``.
    estimator : the fitted sklearn ``LogisticRegression`` (on standardised features).
    """

    weight: np.ndarray
    bias: np.ndarray
    classes: np.ndarray
    C: float
    mean: np.ndarray
    scale: np.ndarray
    coef_standardized: np.ndarray
    intercept_standardized: np.ndarray
    sample_weight_sum: float
    n_iter: int
    converged: bool
    estimator: LogisticRegression | None = field(default=None, repr=False, compare=False)

    def logits(self, features: Any) -> np.ndarray:
        """(n, num_classes) logits ``features @ weight.T + bias``."""
        x = _as_features("features", features)
        if x.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"features has {x.shape[1]} columns but the DFR head was fitted on {self.weight.shape[1]}"
            )
        return x @ self.weight.T + self.bias

    def decision_function(self, features: Any) -> np.ndarray:
        """Same shape and values as sklearn's ``decision_function`` on standardised features:
        1-D (log-odds of ``classes[1]``) for two classes, (n, K) otherwise."""
        z = self.logits(features)
        if z.shape[1] == 2:
            return z[:, 1] - z[:, 0]
        return z

    def predict_proba(self, features: Any) -> np.ndarray:
        """(n, num_classes) softmax of :meth:`logits`."""
        return _softmax(self.logits(features))

    def predict(self, features: Any) -> np.ndarray:
        """Predicted labels (values from ``classes``)."""
        return self.classes[np.argmax(self.logits(features), axis=1)]


def fit_dfr(
    features: Any,
    labels: Any,
    groups: Any,
    C: float = DEFAULT_C,
    seed: int = 0,
    *,
    num_classes: int | None = None,
    balance_groups: bool = True,
    standardize: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-6,
) -> DFRHead:
    """Deep Feature Re-weighting (paper Sec. 6): re-fit only the last layer.

    1. Standardise ``features`` (held-out penultimate features) with their own mean/std.
    2. Fit ``sklearn.linear_model.LogisticRegression`` (L2, ``C``, lbfgs; multinomial/softmax
       for >2 classes, sigmoid for 2) with sample weights from :func:`group_balanced_weights`.
    3. Fold the standardisation into the returned head: with ``s = scale`` and ``m = mean``,
       ``weight = coef / s`` and ``bias = intercept - weight @ m``.

    ``balance_groups=False`` gives the unweighted fit (useful as a control); ``num_classes``
    fixes the rows to classes ``0..num_classes-1`` and requires each to be present.
    ``seed`` is passed as ``random_state`` (lbfgs is deterministic; kept for uniformity).
    """
    x = _as_features("features", features)
    y = _as_1d("labels", labels)
    g = _as_1d("groups", groups)
    _check_same_length(features=x, labels=y, groups=g)
    C = _check_positive("C", C)
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")

    classes = np.unique(y)
    if num_classes is not None:
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        expected = np.arange(num_classes)
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"labels must be integer class indices when num_classes is given, got dtype {y.dtype}")
        bad = np.setdiff1d(classes, expected)
        if bad.size:
            raise ValueError(f"labels contain values {bad.tolist()} outside 0..{num_classes - 1} (num_classes={num_classes})")
        missing = np.setdiff1d(expected, classes)
        if missing.size:
            raise ValueError(
                f"labels have no examples of class(es) {missing.tolist()}; DFR needs every one of the "
                f"{num_classes} classes in the held-out set"
            )
        classes = expected
    if classes.size < 2:
        raise ValueError(f"labels must contain at least 2 classes, got only {classes.tolist()}")

    sample_weight = group_balanced_weights(g) if balance_groups else np.ones(len(y))

    if standardize:
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
    else:
        mean = np.zeros(x.shape[1])
        scale = np.ones(x.shape[1])
    xs = (x - mean) / scale

    clf = LogisticRegression(C=C, solver="lbfgs", max_iter=int(max_iter), tol=tol, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(xs, y, sample_weight=sample_weight)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    coef = np.asarray(clf.coef_, dtype=np.float64)
    intercept = np.asarray(clf.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:  # binary: one sigmoid model -> symmetric two-row softmax layer
        std_w = np.vstack([-coef[0] / 2.0, coef[0] / 2.0])
        std_b = np.array([-intercept[0] / 2.0, intercept[0] / 2.0])
    else:
        std_w, std_b = coef, intercept
    weight = std_w / scale
    bias = std_b - weight @ mean

    return DFRHead(
        weight=weight,
        bias=bias,
        classes=np.asarray(clf.classes_),
        C=C,
        mean=mean,
        scale=scale,
        coef_standardized=coef,
        intercept_standardized=intercept,
        sample_weight_sum=float(sample_weight.sum()),
        n_iter=int(np.max(clf.n_iter_)),
        converged=converged,
        estimator=clf,
    )


def split_heldout(groups: Any, val_fraction: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split held-out indices into (fit, val), stratified by group, seeded.

    Every group with >= 2 examples contributes at least one example to each side; a
    singleton group goes to the fit side.
    """
    if not (0.0 < float(val_fraction) < 1.0):
        raise ValueError(f"val_fraction must be strictly between 0 and 1, got {val_fraction!r}")
    _, inv, counts = _group_index(groups)
    rng = np.random.default_rng(seed)
    fit_idx, val_idx = [], []
    for gi, count in enumerate(counts):
        idx = np.flatnonzero(inv == gi)
        rng.shuffle(idx)
        n_val = int(round(val_fraction * count))
        n_val = min(max(n_val, 1 if count >= 2 else 0), count - 1)
        val_idx.append(idx[:n_val])
        fit_idx.append(idx[n_val:])
    return np.sort(np.concatenate(fit_idx)), np.sort(np.concatenate(val_idx))


@dataclass
class CSelection:
    """Result of :func:`select_C`.

    best_C : float -- the C with the highest validation group-balanced accuracy (ties: the
        larger mean accuracy, then the larger C, i.e. the weaker regularisation).
    Cs : (m,) the grid; group_balanced_accuracy, mean_accuracy : (m,) validation scores.
    """

    best_C: float
    Cs: np.ndarray
    group_balanced_accuracy: np.ndarray
    mean_accuracy: np.ndarray


def select_C(
    fit_features: Any,
    fit_labels: Any,
    fit_groups: Any,
    val_features: Any,
    val_labels: Any,
    val_groups: Any,
    Cs: Sequence[float] = DEFAULT_CS,
    seed: int = 0,
    **fit_kwargs: Any,
) -> CSelection:
    """Choose DFR's ``C`` by group-balanced accuracy (the mean of the per-group accuracies) on a
    validation split. The DFR paper uses the worst group, with 4 groups; with one group per
    (class, attribute value), 100 in the digits world, most groups hold a handful of validation
    examples and their minimum is noise, while their mean is the accuracy under the distribution
    where the attribute carries no label information, which is what DFR targets.

    Fits :func:`fit_dfr` on the fit split for every C in ``Cs`` and scores the head on the
    validation split. Use :func:`split_heldout` to make the two splits from one held-out set,
    then re-fit on the whole held-out set with ``best_C``.
    """
    Cs_arr = np.asarray(list(Cs), dtype=np.float64)
    if Cs_arr.ndim != 1 or Cs_arr.size == 0:
        raise ValueError(f"Cs must be a non-empty sequence of positive floats, got {Cs!r}")
    for c in Cs_arr:
        _check_positive("Cs entry", c)
    vx = _as_features("val_features", val_features)
    vy = _as_1d("val_labels", val_labels)
    vg = _as_1d("val_groups", val_groups)
    _check_same_length(val_features=vx, val_labels=vy, val_groups=vg)
    gba = np.empty(Cs_arr.size)
    acc = np.empty(Cs_arr.size)
    for i, c in enumerate(Cs_arr):
        head = fit_dfr(fit_features, fit_labels, fit_groups, C=float(c), seed=seed, **fit_kwargs)
        pred = head.predict(vx)
        gba[i] = group_balanced_accuracy(vy, pred, vg)
        acc[i] = float(np.mean(pred == vy))
    order = np.lexsort((Cs_arr, acc, gba))  # last key primary
    best = int(order[-1])
    return CSelection(best_C=float(Cs_arr[best]), Cs=Cs_arr, group_balanced_accuracy=gba, mean_accuracy=acc)


# --------------------------------------------------------------------------------------------
# corrected examples
# --------------------------------------------------------------------------------------------
def _correctness_matrix(name: str, m: Any) -> np.ndarray:
    arr = np.asarray(m)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a (models, examples) matrix, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one model and one example, got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.all(np.isin(arr, (0, 1))):
            raise ValueError(f"{name} must hold correctness as bool or 0/1 values")
        arr = arr.astype(bool)
    return arr


def corrected_examples(
    baseline_correct: Any,
    intervention_correct: Any,
    threshold: float = 0.5,
    intervention_threshold: float | None = None,
) -> np.ndarray:
    """Boolean mask of examples that an intervention "corrects" (paper Sec. 6).

    Both inputs are correctness matrices of shape (models, examples) (a 1-D vector is one
    model). An example is corrected when the baselines' correct-rate is ``< threshold`` (usually
    wrong) and the intervention models' correct-rate is ``> intervention_threshold`` (usually
    right; defaults to ``threshold``).
    """
    base = _correctness_matrix("baseline_correct", baseline_correct)
    inter = _correctness_matrix("intervention_correct", intervention_correct)
    if base.shape[1] != inter.shape[1]:
        raise ValueError(
            f"baseline_correct has {base.shape[1]} examples but intervention_correct has "
            f"{inter.shape[1]}; columns must be the same examples"
        )
    t_base = float(threshold)
    t_int = t_base if intervention_threshold is None else float(intervention_threshold)
    for name, t in (("threshold", t_base), ("intervention_threshold", t_int)):
        if not (0.0 <= t <= 1.0):
            raise ValueError(f"{name} must be in [0, 1], got {t}")
    return (base.mean(axis=0) < t_base) & (inter.mean(axis=0) > t_int)


@dataclass
class OverlapResult:
    """Overlap of two example sets drawn from a universe of ``n_total`` examples.

    n_a, n_b : set sizes; n_both : |A & B|; n_either : |A | B|; jaccard : n_both / n_either
    (0 when both are empty). expected_both : |A||B|/n_total, the overlap expected if A and B
    were independent random subsets of the given sizes; expected_jaccard the Jaccard implied by
    that; ratio_to_chance : n_both / expected_both (nan if expected 0).
    p_value_greater / p_value_less : hypergeometric P(X >= n_both) / P(X <= n_both),
    X ~ Hypergeom(n_total, n_a, n_b) -- small p_value_less means *less* overlap than chance.
    """

    n_total: int
    n_a: int
    n_b: int
    n_both: int
    n_either: int
    jaccard: float
    expected_both: float
    expected_jaccard: float
    ratio_to_chance: float
    p_value_greater: float
    p_value_less: float

    def as_dict(self) -> dict[str, float]:
        return {k: (float(v) if isinstance(v, float) else int(v)) for k, v in self.__dict__.items()}


def overlap(set_a: Any, set_b: Any, n_total: int | None = None) -> OverlapResult:
    """Compare two sets of examples (e.g. those corrected by pre-training and by DFR).

    ``set_a`` / ``set_b`` are either boolean masks of equal length (the universe is that
    length; ``n_total`` must then be None or equal to it) or collections of integer example
    indices (then ``n_total``, the universe size, is required).
    """
    a_arr, b_arr = np.asarray(set_a), np.asarray(set_b)
    if a_arr.dtype == bool or b_arr.dtype == bool:
        if a_arr.dtype != bool or b_arr.dtype != bool:
            raise ValueError("set_a and set_b must both be boolean masks or both be index collections")
        if a_arr.ndim != 1 or a_arr.shape != b_arr.shape:
            raise ValueError(f"boolean masks must be 1-D with equal length, got {a_arr.shape} and {b_arr.shape}")
        if n_total is not None and n_total != a_arr.size:
            raise ValueError(f"n_total={n_total} disagrees with the mask length {a_arr.size}")
        n = int(a_arr.size)
        a_mask, b_mask = a_arr, b_arr
    else:
        if n_total is None:
            raise ValueError("n_total (the number of examples in the universe) is required when sets are given as indices")
        n = int(n_total)
        if n <= 0:
            raise ValueError(f"n_total must be a positive integer, got {n_total!r}")
        a_mask = np.zeros(n, dtype=bool)
        b_mask = np.zeros(n, dtype=bool)
        for name, arr, mask in (("set_a", a_arr, a_mask), ("set_b", b_arr, b_mask)):
            idx = arr.reshape(-1)
            if idx.size and not np.issubdtype(idx.dtype, np.integer):
                raise ValueError(f"{name} must hold integer example indices, got dtype {idx.dtype}")
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise ValueError(f"{name} has indices outside [0, {n}) (n_total={n})")
            mask[idx.astype(np.int64)] = True
    if n == 0:
        raise ValueError("the universe is empty: masks of length 0")
    n_a, n_b = int(a_mask.sum()), int(b_mask.sum())
    n_both = int((a_mask & b_mask).sum())
    n_either = int((a_mask | b_mask).sum())
    jaccard = n_both / n_either if n_either else 0.0
    expected = n_a * n_b / n
    exp_either = n_a + n_b - expected
    expected_jaccard = expected / exp_either if exp_either > 0 else 0.0
    hyper = stats.hypergeom(n, n_a, n_b)
    p_greater = float(hyper.sf(n_both - 1))
    p_less = float(hyper.cdf(n_both))
    return OverlapResult(
        n_total=n,
        n_a=n_a,
        n_b=n_b,
        n_both=n_both,
        n_either=n_either,
        jaccard=float(jaccard),
        expected_both=float(expected),
        expected_jaccard=float(expected_jaccard),
        ratio_to_chance=float(n_both / expected) if expected > 0 else float("nan"),
        p_value_greater=min(1.0, p_greater),
        p_value_less=min(1.0, p_less),
    )


# --------------------------------------------------------------------------------------------
# corrected examples of several arms, from per-example predictions
# --------------------------------------------------------------------------------------------
def minority_groups(train_groups) -> set:
    """Groups rarer than the mean group in the reference training set (N / G examples):
    tinted sets: the (class, tint) groups whose tint is not the class's colour; label shift:
    the minority classes."""
    values, counts = np.unique(np.asarray(train_groups), return_counts=True)
    return {v.item() for v, c in zip(values, counts) if c < counts.mean()}


def corrected_analysis(predictions: pd.DataFrame, arms: dict[str, list[str]], dataset: str, *,
                       baseline: str, threshold: float = 0.5, minority: set | None = None
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Corrected examples of every arm against the ``baseline`` arm on ``dataset``.

    ``arms`` maps an arm name to its models (trials). An example is corrected by an arm when
    the baseline arm's correct-rate is ``< threshold`` and the arm's is ``> threshold``
    (:func:`askshift.interventions.corrected_examples`). Returns ``(counts, overlaps)``:
    one row per arm (n_corrected, fraction of the baseline's usual errors it corrects,
    share of minority-group examples among them) and one row per pair of arms (sizes, both,
    Jaccard, the overlap expected by chance and hypergeometric p-values, with the examples the
    baseline arm usually gets wrong as the universe: every corrected example is one of them).
    """
    base, index = correctness_matrix(predictions, arms[baseline], dataset)
    p = predictions[(predictions["dataset"] == dataset) & (predictions["model"] == arms[baseline][0])]
    groups = p.set_index("index").loc[index, "group"].to_numpy()
    is_minority = np.isin(groups, list(minority or ()))
    usually_wrong = base.mean(axis=0) < threshold
    masks, rows = {}, []
    for arm, names in arms.items():
        if arm == baseline:
            continue
        inter, idx = correctness_matrix(predictions, names, dataset)
        if not np.array_equal(idx, index):
            raise ValueError(f"arm {arm!r} was evaluated on other examples of {dataset!r}")
        m = corrected_examples(base, inter, threshold=threshold)
        masks[arm] = m
        rows.append({"dataset": dataset, "arm": arm, "n_examples": int(len(m)),
                     "n_baseline_usually_wrong": int(usually_wrong.sum()),
                     "n_corrected": int(m.sum()),
                     "fraction_of_baseline_errors": float(m.sum() / max(usually_wrong.sum(), 1)),
                     "minority_share_corrected": float(is_minority[m].mean()) if m.any() else float("nan"),
                     "minority_share_all": float(is_minority.mean())})
    pairs = []
    for a, b in itertools.combinations(masks, 2):
        # both corrected sets lie inside the examples the baseline arm usually gets wrong: that
        # set is the universe of the overlap expected by chance, not every test example
        o = overlap(masks[a][usually_wrong], masks[b][usually_wrong])
        pairs.append({"dataset": dataset, "arm_a": a, "arm_b": b, **o.as_dict()})
    return pd.DataFrame(rows), pd.DataFrame(pairs)
