"""One curated dataset = uint8 images (N, H, W, 3) + a metadata table with one row per image.

On disk: `<dir>/images.npy` and `<dir>/meta.parquet`. The metadata always has the columns
index, label, class_name, group, split, source; more attribute columns may follow.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from askshift.io import atomic_dir

REQUIRED_COLUMNS = ("index", "label", "class_name", "group", "split", "source")


@dataclass
class Dataset:
    images: np.ndarray
    meta: pd.DataFrame

    def __post_init__(self):
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images: expected uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}")
        if len(self.images) != len(self.meta):
            raise ValueError(f"{len(self.images)} images but {len(self.meta)} metadata rows")
        missing = [c for c in REQUIRED_COLUMNS if c not in self.meta.columns]
        if missing:
            raise ValueError(f"metadata lacks the column(s) {missing}")

    def __len__(self) -> int:
        return len(self.images)

    def select(self, mask_or_index) -> "Dataset":
        idx = np.asarray(mask_or_index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return Dataset(self.images[idx], self.meta.iloc[idx].reset_index(drop=True))

    def split(self, name: str) -> "Dataset":
        return self.select(self.meta["split"].to_numpy() == name)

    @property
    def labels(self) -> np.ndarray:
        return self.meta["label"].to_numpy(np.int64)

    @property
    def groups(self) -> np.ndarray:
        return self.meta["group"].to_numpy(np.int64)


def empty(like: Dataset) -> Dataset:
    """A dataset with no images, of the shape and columns of ``like``."""
    return like.select(np.zeros(0, np.int64))


def concat(parts: list[Dataset]) -> Dataset:
    meta = pd.concat([p.meta for p in parts], ignore_index=True)
    meta["index"] = np.arange(len(meta))
    return Dataset(np.concatenate([p.images for p in parts]), meta)


def save(ds: Dataset, folder: Path) -> None:
    """Write atomically: a temp folder beside the target, renamed into place."""
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        np.save(tmp / "images.npy", ds.images)
        ds.meta.to_parquet(tmp / "meta.parquet", index=False)


def load(folder: Path, mmap: bool = False) -> Dataset:
    folder = Path(folder)
    if not (folder / "images.npy").exists():
        raise FileNotFoundError(f"{folder}: no curated dataset here (run `dvc repro curate`)")
    images = np.load(folder / "images.npy", mmap_mode="r" if mmap else None)
    return Dataset(images, pd.read_parquet(folder / "meta.parquet"))
