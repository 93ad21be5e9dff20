"""The pre-training corpus: many classes, class-disjoint from digits, diversified like web data.

Base images are grey strokes/silhouettes on black (Fashion-MNIST, animal silhouettes, letters
rendered from many font families). Each one then gets, independently and seeded, a scale
change and random position, flips, a photo/texture background and a random colour tint, so the
pre-trained model has seen colour, backgrounds, orientation and scale vary: the kinds of
diversity that web-scale pre-training data has and a digit training set has not.
"""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from askshift.methods import shifts
from askshift.data.readers import font_files, render_glyph
from askshift.data.store import Dataset

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# Order stated by the animal-mnist package description; labels 0..9 follow it.
ANIMAL_CLASSES = ("Bear", "Bird", "Cat", "Cow", "Dog",
                  "Elephant", "Giraffe", "Horse", "Sheep", "Zebra")
# Letters that look like digits (O/o ~ 0, I/l ~ 1) are left out so the corpus shares no
# class, and no near-identical shape, with the digit task.
LETTERS = tuple(c for c in string.ascii_uppercase + string.ascii_lowercase if c not in "OoIl")


@dataclass
class CorpusInputs:
    fashion: tuple[np.ndarray, np.ndarray]      # (N, 28, 28) uint8, labels
    animals: tuple[np.ndarray, np.ndarray]
    font_dirs: list[Path]                        # pre-training font families
    photos: list[np.ndarray] = field(default_factory=list)  # RGB backgrounds


def render_letters(font_dirs: list[Path], per_class: int, rng: np.random.Generator):
    """per_class images of each letter, each from a randomly drawn font file (28x28 grey)."""
    fonts = [f for d in font_dirs for f in font_files(d)]
    if not fonts:
        raise ValueError(f"no .ttf/.otf files in the pre-training font folders {font_dirs}")
    images, labels, sources = [], [], []
    for label, char in enumerate(LETTERS):
        cache: dict[int, np.ndarray | None] = {}
        picks = rng.integers(0, len(fonts), size=per_class)
        boxes = rng.integers(16, 23, size=per_class)  # stroke size varies like handwriting does
        for f, box in zip(picks, boxes):
            key = (int(f), int(box))
            if key not in cache:
                cache[key] = render_glyph(fonts[f], char, box=int(box))
            if cache[key] is None:  # font lacks this glyph: skip, the class stays large enough
                continue
            images.append(cache[key])
            labels.append(label)
            sources.append(f"font:{fonts[f].stem}")
    return np.stack(images), np.asarray(labels, np.int64), sources


def _cap(images, labels, max_n, rng):
    if max_n and len(images) > max_n:
        keep = np.sort(rng.choice(len(images), size=max_n, replace=False))
        return images[keep], labels[keep]
    return images, labels


def diversify(gray28: np.ndarray, cfg: dict, photos: list[np.ndarray], rng: np.random.Generator,
              size: int = 32, chunk: int = 8192) -> tuple[np.ndarray, pd.DataFrame]:
    """Turn grey 28x28 base images into diversified RGB size x size images + what was applied."""
    n = len(gray28)
    scale = rng.uniform(cfg["scale_min"], cfg["scale_max"], size=n)
    hflip = rng.random(n) < cfg["p_hflip"]
    vflip = rng.random(n) < cfg["p_vflip"]
    background = (rng.random(n) < cfg["p_background"]) & bool(photos)
    tinted = rng.random(n) < cfg["p_tint"]
    colours = rng.random((n, 3))
    out = np.empty((n, size, size, 3), np.uint8)
    margin = (size - gray28.shape[1]) // 2
    levels = shifts.zoom_levels(photos, size) if photos else []
    for s in range(0, n, chunk):
        sl = slice(s, min(s + chunk, n))
        x = np.pad(gray28[sl], ((0, 0), (margin, margin), (margin, margin)))
        x = shifts.place_scaled(shifts.gray_to_rgb(x), scale[sl], rng)
        x[hflip[sl]] = shifts.hflip(x[hflip[sl]])
        x[vflip[sl]] = shifts.vflip(x[vflip[sl]])
        bg = np.flatnonzero(background[sl])
        if len(bg):
            x[bg] = shifts.composite(x[bg], shifts.random_crops(levels, len(bg), size, rng))
        tn = np.flatnonzero(tinted[sl])
        x[tn] = shifts.tint(x[tn], colours[sl][tn], cfg["tint_strength"])
        out[sl] = x
    applied = pd.DataFrame({"scale": scale, "hflip": hflip, "vflip": vflip,
                            "background": background, "tinted": tinted})
    return out, applied


def build_corpus(inputs: CorpusInputs, cfg: dict, tint_strength: float, seed: int) -> Dataset:
    """The whole corpus as one Dataset with splits train/val (val_fraction, stratified)."""
    rng = np.random.default_rng([seed, 1])
    fx, fy = _cap(*inputs.fashion, cfg["max_per_source"], rng)
    ax, ay = _cap(*inputs.animals, cfg["max_per_source"], rng)
    lx, ly, lsrc = render_letters(inputs.font_dirs, cfg["letters_per_class"], rng)
    names = ([f"fashion:{c}" for c in FASHION_CLASSES] + [f"animal:{c}" for c in ANIMAL_CLASSES]
             + [f"letter:{c}" for c in LETTERS])
    gray = np.concatenate([fx, ax, lx])
    labels = np.concatenate([fy, ay + 10, ly + 20])
    source = ["fashion-mnist"] * len(fx) + ["animal-mnist"] * len(ax) + lsrc
    images, applied = diversify(gray, {**cfg, "tint_strength": tint_strength}, inputs.photos, rng)

    split = np.full(len(labels), "train", dtype=object)
    for c in np.unique(labels):  # stratified validation split
        idx = np.flatnonzero(labels == c)
        n_val = int(round(cfg["val_fraction"] * len(idx)))
        split[rng.choice(idx, size=n_val, replace=False)] = "val"
    meta = pd.DataFrame({
        "index": np.arange(len(labels)), "label": labels,
        "class_name": [names[i] for i in labels], "group": labels,
        "split": split.astype(str), "source": source,
    })
    return Dataset(images, pd.concat([meta, applied], axis=1))
