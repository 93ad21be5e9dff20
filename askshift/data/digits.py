"""The `digits` world: reference splits, shift pairs and de-biased sets built from MNIST.

Everything is a pure function of the raw arrays, the params and the seed. Datasets are keyed
by their role, ``(role, name)`` with role ``reference`` (name = variant), ``shifted`` (name =
shift) or ``debiased`` (name = variant); :mod:`askshift.study.layout` turns roles into dataset
names and paths. The shift pairs (:data:`askshift.data.worlds.DIGITS`):
- in-support (the reference training data itself is biased, the shifted test set breaks the
  bias): spurious_tint, label_shift;
- out-of-support (plain reference, only the test images change): unseen_tint, flip, pad,
  photo_background;
- natural-style (plain reference, other image sources): fonts (families pre-training never
  saw), corpus_fonts (the families the pre-training corpus's letters are typeset in: a shifted
  domain that pre-training covers), uci_digits;
- mixture: plain test images plus out-of-support ones, membership known by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from askshift.data import debias
from askshift.data.readers import centre_by_mass, render_glyph
from askshift.data.store import Dataset, concat
from askshift.data.worlds import DIGITS
from askshift.methods import shifts

NUM_CLASSES = DIGITS.num_classes
CLASS_NAMES = DIGITS.class_names
FONT_BOXES = (18, 20, 22)  # glyph heights like MNIST's 20 px box, +-10 %
Role = tuple[str, str]  # ("reference" | "shifted" | "debiased", variant or shift name)


@dataclass
class DigitsInputs:
    mnist: tuple[np.ndarray, np.ndarray]        # (10000, 28, 28) uint8, labels
    uci: tuple[np.ndarray, np.ndarray]          # (1797, 8, 8) uint8, labels
    heldout_fonts: list                          # font files never used for pre-training
    corpus_fonts: list                           # the font files of the corpus's letters
    shift_photos: list[np.ndarray]               # photos never used for pre-training


def to_rgb32(gray28: np.ndarray) -> np.ndarray:
    """MNIST-style 28x28 grey -> 32x32 RGB by a 2-pixel black border (no resampling)."""
    return shifts.gray_to_rgb(np.pad(gray28, ((0, 0), (2, 2), (2, 2))))


def _table(labels, split, source, group=None, **attrs) -> pd.DataFrame:
    labels = np.asarray(labels, np.int64)
    meta = pd.DataFrame({
        "index": np.arange(len(labels)), "label": labels,
        "class_name": [CLASS_NAMES[i] for i in labels],
        "group": labels if group is None else np.asarray(group, np.int64),
        "split": np.broadcast_to(np.asarray(split, dtype=object), len(labels)).astype(str),
        "source": np.broadcast_to(np.asarray(source, dtype=object), len(labels)).astype(str),
    })
    for k, v in attrs.items():
        meta[k] = v
    return meta


def build_reference(mnist, cfg: dict, seed: int) -> Dataset:
    """Stratified, seeded train / val / test split of the MNIST images, as 32x32 RGB."""
    x, y = mnist
    r = cfg["reference"]
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=r["n_test"], stratify=y, random_state=seed)
    train, val = train_test_split(rest, train_size=r["n_train"], test_size=r["n_val"],
                                  stratify=y[rest], random_state=seed)
    order = np.concatenate([train, val, test])
    split = ["train"] * len(train) + ["val"] * len(val) + ["test"] * len(test)
    meta = _table(y[order], split, "mnist", mnist_index=order)
    return Dataset(to_rgb32(x[order]), meta)


def _tinted(ds: Dataset, colour_idx: np.ndarray, colours: np.ndarray, strength: float) -> Dataset:
    images = shifts.tint(ds.images, colours[colour_idx], strength)
    meta = ds.meta.copy()
    meta["tint"] = colour_idx
    meta["tint_matches_label"] = colour_idx == ds.labels
    meta["group"] = shifts.tint_groups(ds.labels, colour_idx, len(colours))
    return Dataset(images, meta)


def _relabel_split(ds: Dataset, split: str) -> Dataset:
    meta = ds.meta.copy()
    meta["split"] = split
    return Dataset(ds.images, meta)


def _label_shifted(ds: Dataset, minority: list[int], p_minority: float, rng) -> Dataset:
    keep = shifts.label_shift_indices(ds.labels, minority, p_minority, rng)
    out = ds.select(keep)
    out.meta["minority"] = np.isin(out.labels, minority)
    out.meta["index"] = np.arange(len(out))
    return out


def _per_split(ds: Dataset, fn) -> Dataset:
    return concat([fn(ds.split(s)) for s in ("train", "val", "test")])


def render_font_digits(font_paths: list, boxes: tuple[int, ...] = FONT_BOXES) -> Dataset:
    """Every digit in every given font at each glyph size, MNIST-style, 32x32 RGB."""
    images, labels, sources = [], [], []
    for path in font_paths:
        for d in range(NUM_CLASSES):
            for box in boxes:
                g = render_glyph(path, str(d), box=box)
                if g is not None:
                    images.append(g)
                    labels.append(d)
                    sources.append(f"font:{path.stem}")
    if not images:
        raise ValueError(f"no digit could be rendered from the {len(font_paths)} font files given")
    return Dataset(to_rgb32(np.stack(images)), _table(labels, "test", sources))


def uci_to_mnist(uci: np.ndarray) -> np.ndarray:
    """8x8 UCI digits -> 20x20 box centred by mass on 28x28, like MNIST's own preprocessing."""
    big = shifts.resize(shifts.gray_to_rgb(uci), 20)[..., 0]
    return np.stack([centre_by_mass(im.astype(np.float64), 28) for im in big])


def out_of_support(name: str, ds: Dataset, cfg: dict, colours, photos, rng) -> Dataset:
    """Apply one out-of-support transform to a (plain) test set."""
    meta = ds.meta.copy()
    if name == "unseen_tint":
        return _tinted(ds, shifts.random_tint_assignment(len(ds), NUM_CLASSES, rng),
                       colours, cfg["tint_strength"])
    if name == "flip":
        images = shifts.vflip(ds.images)
    elif name == "pad":
        images = shifts.pad(ds.images, cfg["pad"]["pixels"], cfg["pad"]["value"])
    elif name == "photo_background":
        images = shifts.photo_background(ds.images, photos, rng)
    else:
        raise ValueError(f"unknown out-of-support shift {name!r}")
    return Dataset(images, meta)


def build_world(inputs: DigitsInputs, cfg: dict, seed: int) -> dict[Role, Dataset]:
    """Every dataset of the digits world except the pre-training corpus, keyed by role."""
    rng = np.random.default_rng([seed, 2])
    colours = shifts.class_colours(NUM_CLASSES, seed)
    strength = cfg["tint_strength"]
    plain = build_reference(inputs.mnist, cfg, seed)
    test = plain.split("test")
    out: dict[Role, Dataset] = {("reference", "plain"): plain}

    # in-support: the reference itself is biased, the shifted test set breaks the bias
    p = cfg["spurious_tint"]["p"]
    out["reference", "spurious_tint"] = _per_split(plain, lambda d: _tinted(
        d, shifts.spurious_tint_assignment(d.labels, NUM_CLASSES, p, rng), colours, strength))
    out["shifted", "spurious_tint"] = _tinted(
        test, shifts.random_tint_assignment(len(test), NUM_CLASSES, rng), colours, strength)

    minority = sorted(rng.permutation(NUM_CLASSES)[: NUM_CLASSES // 2].tolist())
    majority = sorted(set(range(NUM_CLASSES)) - set(minority))
    pm = cfg["label_shift"]["p_minority"]
    out["reference", "label_shift"] = _per_split(plain, lambda d: _label_shifted(d, minority, pm, rng))
    out["shifted", "label_shift"] = _label_shifted(test, majority, pm, rng)
    # in the shifted set the roles are reversed: mark the reference's minority classes
    out["shifted", "label_shift"].meta["minority"] = np.isin(out["shifted", "label_shift"].labels, minority)

    # out-of-support: plain reference, only the test images change
    for name in ("unseen_tint", "flip", "pad", "photo_background"):
        out["shifted", name] = out_of_support(name, test, cfg, colours, inputs.shift_photos, rng)

    # natural-style shifts of the plain reference
    out["shifted", "fonts"] = render_font_digits(inputs.heldout_fonts)
    # the paper's mechanism: pre-training data that covers the shifted domain (the corpus saw
    # these families' letters, never their digits); one size: 102 files give as many images as
    # the held-out 33 at three
    out["shifted", "corpus_fonts"] = render_font_digits(inputs.corpus_fonts, boxes=(20,))
    ux, uy = inputs.uci
    out["shifted", "uci_digits"] = Dataset(to_rgb32(uci_to_mnist(ux)), _table(uy, "test", "uci-digits"))

    # mixture with known membership: disjoint test images, some made out-of-support
    m = cfg["mixture"]
    n = min(m["n"], len(test))
    picks = rng.choice(len(test), size=n, replace=False)
    n_out = int(round(m["out_fraction"] * n))
    oos = out_of_support(m["out_of_support_shift"], test.select(picks[:n_out]), cfg, colours,
                         inputs.shift_photos, rng)
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
    idx, tint = debias.sample_curated(train.labels, d["n_images"], NUM_CLASSES, d["retints"], rng, NUM_CLASSES)
    out["debiased", "spurious_tint"] = debias.build_tinted(train, idx, tint, colours, strength)
    for name, pool in (("label_shift", out["reference", "label_shift"].split("train")), ("plain", train)):
        n = min(d["n_images"], NUM_CLASSES * int(np.bincount(pool.labels, minlength=NUM_CLASSES).min()))
        sub = pool.select(debias.balanced_subset(pool.labels, n, rng, NUM_CLASSES))  # rarest class caps it
        sub.meta["index"] = np.arange(len(sub))
        out["debiased", name] = _relabel_split(sub, "train")
    return out
