"""The synthetic shifts of the paper's Sec. 5.1, for any world with a plain reference.

Every world builds its plain reference (train / val / test) from its own source; from it this
module builds, in a fixed order that one generator drives, the in-support shifts (a biased
reference variant + a shifted test set that breaks the bias: spurious tint, label shift), the
out-of-support shifts (plain reference, only the test images change), the mixture with known
membership and the de-biased fine-tuning sets. Datasets are keyed by role,
``(role, name)``, with role ``reference`` (name = variant), ``shifted`` (name = shift) or
``debiased`` (name = variant); :mod:`askshift.study.layout` turns roles into dataset names.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from askshift.data import debias
from askshift.data.store import Dataset, concat
from askshift.methods import shifts

Role = tuple[str, str]  # ("reference" | "shifted" | "debiased", variant or shift name)


def table(labels, split, source, class_names: Sequence[str], group=None, **attrs) -> pd.DataFrame:
    """The metadata every curated dataset has (see :mod:`askshift.data.store`), plus ``attrs``."""
    labels = np.asarray(labels, np.int64)
    meta = pd.DataFrame({
        "index": np.arange(len(labels)), "label": labels,
        "class_name": [class_names[i] for i in labels],
        "group": labels if group is None else np.asarray(group, np.int64),
        "split": np.broadcast_to(np.asarray(split, dtype=object), len(labels)).astype(str),
        "source": np.broadcast_to(np.asarray(source, dtype=object), len(labels)).astype(str),
    })
    for k, v in attrs.items():
        meta[k] = v
    return meta


def tinted(ds: Dataset, colour_idx: np.ndarray, colours: np.ndarray, strength: float) -> Dataset:
    images = shifts.tint(ds.images, colours[colour_idx], strength)
    meta = ds.meta.copy()
    meta["tint"] = colour_idx
    meta["tint_matches_label"] = colour_idx == ds.labels
    meta["group"] = shifts.tint_groups(ds.labels, colour_idx, len(colours))
    return Dataset(images, meta)


def relabel_split(ds: Dataset, split: str) -> Dataset:
    meta = ds.meta.copy()
    meta["split"] = split
    return Dataset(ds.images, meta)


def label_shifted(ds: Dataset, minority: list[int], p_minority: float, rng) -> Dataset:
    keep = shifts.label_shift_indices(ds.labels, minority, p_minority, rng)
    out = ds.select(keep)
    out.meta["minority"] = np.isin(out.labels, minority)
    out.meta["index"] = np.arange(len(out))
    return out


def per_split(ds: Dataset, fn) -> Dataset:
    return concat([fn(ds.split(s)) for s in ("train", "val", "test")])


def out_of_support(name: str, ds: Dataset, cfg: dict, colours, photos, rng) -> Dataset:
    """Apply one out-of-support transform to a (plain) test set."""
    meta = ds.meta.copy()
    if name == "unseen_tint":
        return tinted(ds, shifts.random_tint_assignment(len(ds), len(colours), rng), colours, cfg["tint_strength"])
    if name == "flip":
        images = shifts.vflip(ds.images)
    elif name == "pad":
        images = shifts.pad(ds.images, cfg["pad"]["pixels"], cfg["pad"]["value"])
    elif name == "photo_background":
        if not photos:
            raise ValueError("the photo_background shift needs photos, and this world has none")
        images = shifts.photo_background(ds.images, photos, rng)
    else:
        raise ValueError(f"unknown out-of-support shift {name!r}")
    return Dataset(images, meta)


def build_shifts(plain: Dataset, cfg: dict, seed: int, num_classes: int, oos_names: Sequence[str],
                 photos: Sequence[np.ndarray] = ()) -> dict[Role, Dataset]:
    """The plain reference, every synthetic shift pair, the mixture and the de-biased sets.

    ``cfg`` is the `curate` params section; ``oos_names`` are the world's out-of-support
    transforms (``photos`` only for photo_background). Natural shifts are the world's own.
    """
    rng = np.random.default_rng([seed, 2])
    colours = shifts.class_colours(num_classes, seed)
    strength = cfg["tint_strength"]
    test = plain.split("test")
    out: dict[Role, Dataset] = {("reference", "plain"): plain}

    # in-support: the reference itself is biased, the shifted test set breaks the bias
    p = cfg["spurious_tint"]["p"]
    out["reference", "spurious_tint"] = per_split(plain, lambda d: tinted(
        d, shifts.spurious_tint_assignment(d.labels, num_classes, p, rng), colours, strength))
    out["shifted", "spurious_tint"] = tinted(
        test, shifts.random_tint_assignment(len(test), num_classes, rng), colours, strength)

    minority = sorted(rng.permutation(num_classes)[: num_classes // 2].tolist())
    majority = sorted(set(range(num_classes)) - set(minority))
    pm = cfg["label_shift"]["p_minority"]
    out["reference", "label_shift"] = per_split(plain, lambda d: label_shifted(d, minority, pm, rng))
    out["shifted", "label_shift"] = label_shifted(test, majority, pm, rng)
    # in the shifted set the roles are reversed: mark the reference's minority classes
    out["shifted", "label_shift"].meta["minority"] = np.isin(out["shifted", "label_shift"].labels, minority)

    # out-of-support: plain reference, only the test images change
    for name in oos_names:
        out["shifted", name] = out_of_support(name, test, cfg, colours, photos, rng)

    # mixture with known membership: disjoint test images, some made out-of-support
    m = cfg["mixture"]
    n = min(m["n"], len(test))
    picks = rng.choice(len(test), size=n, replace=False)
    n_out = int(round(m["out_fraction"] * n))
    oos = out_of_support(m["out_of_support_shift"], test.select(picks[:n_out]), cfg, colours, photos, rng)
    ins = test.select(picks[n_out:])
    mix = concat([Dataset(ins.images, ins.meta.assign(in_support=True)),
                  Dataset(oos.images, oos.meta.assign(in_support=False))])
    mix.meta = mix.meta.drop(columns=[c for c in ("tint", "tint_matches_label") if c in mix.meta])
    mix.meta["group"] = mix.labels
    out["shifted", "mixture"] = mix

    # de-biased fine-tuning sets (small, non-diverse, de-biased by construction)
    # spurious tint: originals re-tinted so that every class gets the same multiset of tints;
    # label shift and plain: class-balanced draws (the label is the only bias there)
    d = cfg["debiased"]
    train = plain.split("train")
    idx, tint = debias.sample_curated(train.labels, d["n_images"], num_classes, d["retints"], rng, num_classes)
    out["debiased", "spurious_tint"] = debias.build_tinted(train, idx, tint, colours, strength)
    for name, pool in (("label_shift", out["reference", "label_shift"].split("train")), ("plain", train)):
        n = min(d["n_images"], num_classes * int(np.bincount(pool.labels, minlength=num_classes).min()))
        sub = pool.select(debias.balanced_subset(pool.labels, n, rng, num_classes))  # rarest class caps it
        sub.meta["index"] = np.arange(len(sub))
        out["debiased", name] = relabel_split(sub, "train")
    return out

