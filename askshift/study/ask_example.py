"""`ask_example`: one (reference, shifted) pair of the digits world as image folders.

The default input of the `ask` stage (:mod:`askshift.study.ask_stage`), so that it runs on a
fresh clone and shows what an answer looks like: the shift is ``ask.example``, its reference is
the reference dataset's test split (no model of the study trained on it), written under
:data:`EXAMPLE` in the ImageFolder layout (PNG, one folder per class).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from askshift.data import store
from askshift.io import atomic_dir
from askshift.study import layout

EXAMPLE = layout.ASK_EXAMPLE                   # data/ask/{reference,shifted}


def export_images(ds: store.Dataset, dest: Path) -> int:
    """A curated dataset as PNG files in one folder per class (``<class_name>/<row>.png``,
    rows in the dataset's order), written all or nothing. Returns the number of images."""
    from PIL import Image

    with atomic_dir(dest) as tmp:
        for i, (image, name) in enumerate(zip(ds.images, ds.meta["class_name"].astype(str))):
            folder = tmp / name.replace("/", "_")
            folder.mkdir(exist_ok=True)
            Image.fromarray(np.asarray(image)).save(folder / f"{i:05d}.png")
    return len(ds)


def example(cfg) -> dict:
    """`ask_example`: the pair of shift ``cfg.ask.example`` as image folders under :data:`EXAMPLE`."""
    pair = layout.read_shift_index()[cfg.ask.example]
    ref = store.load(layout.dataset_dir(pair["reference"]), mmap=True).split("test")
    shifted = store.load(layout.dataset_dir(pair["shifted"]), mmap=True)
    counts = {role: export_images(ds, EXAMPLE / role) for role, ds in (("reference", ref), ("shifted", shifted))}
    return {"shift": cfg.ask.example, "kind": pair["kind"], "reference_dataset": pair["reference"],
            "reference_split": "test", "shifted_dataset": pair["shifted"], **{f"n_{k}": v for k, v in counts.items()}}
