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

from askshift.data import synthetic
from askshift.data.readers import centre_by_mass, render_glyph
from askshift.data.store import Dataset
from askshift.data.synthetic import Role
from askshift.data.worlds import DIGITS
from askshift.methods import shifts

NUM_CLASSES = DIGITS.num_classes
CLASS_NAMES = DIGITS.class_names
FONT_BOXES = (18, 20, 22)  # glyph heights like MNIST's 20 px box, +-10 %
OUT_OF_SUPPORT = DIGITS.out_of_support_transforms


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
    return synthetic.table(labels, split, source, CLASS_NAMES, group, **attrs)


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
    meta = _table(y[order], split, "mnist", source_index=order)
    return Dataset(to_rgb32(x[order]), meta)


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


def build_world(inputs: DigitsInputs, cfg: dict, seed: int) -> dict[Role, Dataset]:
    """Every dataset of the digits world except the pre-training corpus, keyed by role: the
    synthetic shifts of :mod:`askshift.data.synthetic` plus the natural-style ones."""
    plain = build_reference(inputs.mnist, cfg, seed)
    built = synthetic.build_shifts(plain, cfg, seed, NUM_CLASSES, OUT_OF_SUPPORT, inputs.shift_photos)
    natural = {
        ("shifted", "fonts"): render_font_digits(inputs.heldout_fonts),
        # the paper's mechanism: pre-training data that covers the shifted domain (the corpus saw
        # these families' letters, never their digits); one size: 102 files give as many images as
        # the held-out 33 at three
        ("shifted", "corpus_fonts"): render_font_digits(inputs.corpus_fonts, boxes=(20,)),
        ("shifted", "uci_digits"): Dataset(to_rgb32(uci_to_mnist(inputs.uci[0])),
                                           _table(inputs.uci[1], "test", "uci-digits")),
    }
    out: dict[Role, Dataset] = {}
    for key, ds in built.items():   # the natural shifts go before the mixture (the world's order)
        if key == ("shifted", "mixture"):
            out.update(natural)
        out[key] = ds
    return out
