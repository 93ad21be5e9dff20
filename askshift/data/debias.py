"""De-biased fine-tuning sets (paper Sec. 7): small, non-diverse, de-biased by construction.

:func:`sample_curated` draws ``n`` images, the same number per class, and gives each one a tint
so that **every class receives exactly the same multiset of tints**: the tint's distribution
does not depend on the label at all (mutual information exactly 0 on the set; the best
tint-only rule is at chance). Each chosen original is used ``retints`` times, in ``retints``
different colours: counterfactual re-tints of the same image, the digits analogue of the
paper's curated CelebA set (originals plus counterfactual hair-colour edits). The curate stage
builds the pipeline's de-biased set with it; the debiased stage (Sec. 7) draws its size sweep
with it.

:func:`balanced_subset` is the control without edits: the same number of images per class drawn
from the (biased) reference itself, so the spurious tint keeps its correlation.
:func:`curated_stats` is what proves a set is curated.
"""
from __future__ import annotations

import math

import numpy as np

from askshift.data.store import Dataset
from askshift.data.summary import attribute_predictivity
from askshift.methods import shifts


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
    """The chosen plain images tinted with ``colours[tint]``; groups (class, tint colour) as
    everywhere in the digits world; split "train"."""
    index, tint = np.asarray(index), np.asarray(tint)
    base = plain.select(index)
    images = shifts.tint(base.images, np.asarray(colours)[tint], strength)
    meta = base.meta.copy()
    meta["tint"] = tint
    meta["tint_matches_label"] = tint == base.labels
    meta["group"] = shifts.tint_groups(base.labels, tint, len(colours))
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
    de-biased set exactly (matched on ``source_index``): the sampled sets then differ from it only
    in which images and tints are drawn, never in how an image is tinted."""
    pos = {int(m): i for i, m in enumerate(plain.meta["source_index"].to_numpy())}
    try:
        idx = np.array([pos[int(m)] for m in debiased.meta["source_index"].to_numpy()])
    except KeyError as e:
        raise ValueError(f"de-biased image with source_index {e} is not in the plain training split") from None
    again = build_tinted(plain, idx, debiased.meta["tint"].to_numpy(), colours, strength)
    if not np.array_equal(again.images, debiased.images):
        raise ValueError("re-tinting the plain images does not reproduce the de-biased set: the class "
                         "colours or tint strength differ from the curate stage's")
