"""Sec. 7: small, non-diverse, de-biased fine-tuning sets, and the sampler that draws them.

:func:`sample_curated` draws ``n`` images, the same number per class, and gives each one a tint
so that **every class receives exactly the same multiset of tints**: the tint's distribution
does not depend on the label at all (mutual information exactly 0 on the set; the best
tint-only rule is at chance). Each chosen original is used ``retints`` times, in ``retints``
different colours: counterfactual re-tints of the same image, the digits analogue of the
paper's curated CelebA set (originals plus counterfactual hair-colour edits).

:func:`balanced_subset` is the control without edits: the same number of images per class drawn
from the (biased) reference itself, so the spurious tint keeps its correlation.
"""
from __future__ import annotations

import math

import numpy as np

from askshift import shifts
from askshift.data.store import Dataset
from askshift.data.summary import attribute_predictivity


def _classes(labels: np.ndarray, num_classes: int | None) -> np.ndarray:
    return np.arange(num_classes) if num_classes is not None else np.unique(labels)


def sample_curated(labels, n: int, num_colours: int, retints: int, rng: np.random.Generator,
                   num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the pool and tint indices of a curated set of ``n`` images.

    ``labels`` are the pool's labels; every class gets ``n / C`` images (``n`` must be a
    multiple of the number of classes C) made of ``ceil(n / (C * retints))`` distinct originals,
    each re-tinted in up to ``retints`` consecutive colours of one cyclic colour sequence whose
    random start is shared by all classes. So every class sees the same tints the same number of
    times. Returns ``(pool_index (n,), tint (n,))``, grouped by class.
    """
    labels = np.asarray(labels)
    classes = _classes(labels, num_classes)
    c = len(classes)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < c or n % c:
        raise ValueError(f"n={n!r}: the curated set needs the same number of images per class, "
                         f"so n must be a positive multiple of the {c} classes")
    if not 1 <= retints <= num_colours:
        raise ValueError(f"retints={retints!r} must be in [1, num_colours={num_colours}] "
                         "(each original gets that many different colours)")
    k = n // c
    n_bases = math.ceil(k / retints)
    offset = int(rng.integers(num_colours))
    tint_seq = (offset + np.arange(k)) % num_colours          # identical for every class
    idx, tint = [], []
    for cls in classes:
        pool = np.flatnonzero(labels == cls)
        if len(pool) < n_bases:
            raise ValueError(f"class {cls} has {len(pool)} images in the pool but the curated set "
                             f"needs {n_bases} originals per class (n={n}, retints={retints})")
        bases = rng.choice(pool, size=n_bases, replace=False)
        idx.append(bases[np.arange(k) // retints])
        tint.append(tint_seq)
    return np.concatenate(idx), np.concatenate(tint)


def build_tinted(plain: Dataset, index, tint, colours, strength: float) -> Dataset:
    """The chosen plain images tinted with ``colours[tint]``; groups ``2 * label + (tint ==
    label)`` as everywhere in the digits world; split "train"."""
    index, tint = np.asarray(index), np.asarray(tint)
    base = plain.select(index)
    images = shifts.tint(base.images, np.asarray(colours)[tint], strength)
    meta = base.meta.copy()
    meta["tint"] = tint
    meta["tint_matches_label"] = tint == base.labels
    meta["group"] = shifts.tint_groups(base.labels, tint)
    meta["split"] = "train"
    meta["pool_index"] = index
    meta["index"] = np.arange(len(meta))
    return Dataset(images, meta)


def balanced_subset(labels, n: int, rng: np.random.Generator, num_classes: int | None = None) -> np.ndarray:
    """``n / C`` indices per class, drawn without replacement (sorted)."""
    labels = np.asarray(labels)
    classes = _classes(labels, num_classes)
    if n < len(classes) or n % len(classes):
        raise ValueError(f"n={n!r} must be a positive multiple of the {len(classes)} classes")
    k = n // len(classes)
    picks = []
    for cls in classes:
        pool = np.flatnonzero(labels == cls)
        if len(pool) < k:
            raise ValueError(f"class {cls} has only {len(pool)} images, {k} needed")
        picks.append(rng.choice(pool, size=k, replace=False))
    return np.sort(np.concatenate(picks))


def curated_stats(labels, tint, index=None) -> dict:
    """What proves a set is curated: size, per-class counts, and how well the tint alone
    predicts the label (accuracy of the best tint-only rule vs chance, NMI)."""
    labels, tint = np.asarray(labels), np.asarray(tint)
    counts = np.bincount(labels)
    out = {"n": int(len(labels)), "per_class_min": int(counts[counts > 0].min()),
           "per_class_max": int(counts.max()), "n_tints": int(len(np.unique(tint))),
           "tint_predicts_label": attribute_predictivity(labels, tint)}
    if index is not None:
        out["n_originals"] = int(len(np.unique(np.asarray(index))))
    return out


def check_colours(debiased: Dataset, plain: Dataset, colours, strength: float) -> None:
    """Fail unless re-tinting ``plain`` images with ``colours`` reproduces the curate stage's
    de-biased set exactly (matched on ``mnist_index``): the sampled sets then differ from it only
    in which images and tints are drawn, never in how an image is tinted."""
    pos = {int(m): i for i, m in enumerate(plain.meta["mnist_index"].to_numpy())}
    try:
        idx = np.array([pos[int(m)] for m in debiased.meta["mnist_index"].to_numpy()])
    except KeyError as e:
        raise ValueError(f"de-biased image with mnist_index {e} is not in the plain training split") from None
    again = build_tinted(plain, idx, debiased.meta["tint"].to_numpy(), colours, strength)
    if not np.array_equal(again.images, debiased.images):
        raise ValueError("re-tinting the plain images does not reproduce the de-biased set: the class "
                         "colours or tint strength differ from the curate stage's")


def summarise(table, *, n_debiased: int, n_reference: int):
    """Split an ER table (:func:`askshift.analyses.common.er_table`) of the curated stage into
    the arms and the size sweep (arms ``sweep_<n>``), each with its set size; returns
    ``(arms, sweep, metrics, claims)`` where ``claims`` are rows for the report's claims table:
    pre-trained on the de-biased set has ER > 0, on the full biased reference ER ~ 0."""
    t = table.copy()
    sweep_mask = t["arm"].str.startswith("sweep_")
    fixed = {"pretrained_debiased": n_debiased, "scratch_debiased": n_debiased, "pretrained_balanced": n_debiased,
             "pretrained_reference": n_reference}
    t["size"] = [int(a.removeprefix("sweep_")) if a.startswith("sweep_") else fixed.get(a, 0) for a in t["arm"]]
    arms, sweep = t[~sweep_mask], t[sweep_mask].sort_values("size")
    metrics = {
        "fit_r2": float(t["r2"].iloc[0]), "n_baseline": int(t["n_baseline"].iloc[0]),
        "curated_arms": {r.arm: {"size": int(r.size), "ref_acc": r.ref_acc, "shift_acc": r.shift_acc,
                                 "shift_wga": r.shift_wga, "er": r.er, "er_low": r.er_low, "er_high": r.er_high,
                                 "wga_er": r.wga_er} for r in arms.itertuples()},
        "size_sweep": {str(int(r.size)): {"ref_acc": r.ref_acc, "shift_acc": r.shift_acc, "shift_wga": r.shift_wga,
                                          "er": r.er, "er_low": r.er_low, "er_high": r.er_high}
                       for r in sweep.itertuples()},
    }
    claims = []
    for arm, rule, text in (
            ("pretrained_debiased", "positive",
             "A pre-trained model fine-tuned on a small curated de-biased set is robust (ER > 0)"),
            ("pretrained_reference", "near_zero",
             "Fine-tuned on the full biased reference, the pre-trained model has ~0 ER")):
        rows = arms[arms["arm"] == arm]
        if len(rows):
            r = rows.iloc[0]
            claims.append({"claim": text, "paper": "CelebA, 64 curated images", "er": r.er, "low": r.er_low,
                           "high": r.er_high, "r2": r.r2, "n_baseline": int(r.n_baseline), "rule": rule,
                           "what": f"{arm} ({int(r['size'])} images), {int(r.n_trials)} trials averaged"})
    return arms, sweep, metrics, claims
