"""Step `curate`: every dataset of the world, built from data/raw (a pure function of the raw
data, the `curate` params and the seed), with the shift index, image grids and statistics."""
from __future__ import annotations

import json

import numpy as np

from askshift.data import corpus, digits, raw, store, summary
from askshift.data.worlds import DIGITS, WORLDS
from askshift.io import atomic_dir
from askshift.study import layout
from askshift.study.stage import InputError, Timer


def build(cfg) -> dict[str, store.Dataset]:
    """Every dataset of the world by name: references, shifted sets, de-biased sets, corpus."""
    timer = Timer()
    c = cfg.curate.to_dict()
    inputs = raw.digits_inputs(layout.RAW)
    counts = tuple(int(n) for n in np.bincount(inputs.mnist[1], minlength=DIGITS.num_classes))
    if counts != DIGITS.source_class_counts:  # the params rules on set sizes assume these counts
        raise InputError(f"{layout.RAW / 'mnist'}: images per class {counts} differ from the pinned source's "
                         f"{DIGITS.source_class_counts} (askshift/data/worlds.py)")
    roles = digits.build_world(inputs, c, cfg.seed)
    datasets = {layout.dataset_name(role, name): ds for (role, name), ds in roles.items()}
    print(f"reference and shifts built ({timer()} s)", flush=True)
    datasets[layout.CORPUS] = corpus.build_corpus(raw.corpus_inputs(layout.RAW), c["corpus"],
                                                  c["tint_strength"], cfg.seed)
    print(f"pre-training corpus built: {len(datasets[layout.CORPUS])} images ({timer()} s)", flush=True)
    return datasets


def save(datasets: dict[str, store.Dataset], cfg) -> None:
    """The datasets with the shift index, then one image grid per dataset (each folder atomic)."""
    with atomic_dir(layout.DATASETS) as tmp:
        for name, ds in datasets.items():
            store.save(ds, tmp / name)
        (tmp / layout.SHIFT_INDEX.name).write_text(json.dumps(layout.shift_index(WORLDS[cfg.world]), indent=1))
    with atomic_dir(layout.GRIDS) as tmp:
        for name, ds in datasets.items():
            summary.image_grid(ds, cfg.curate.grid.per_dataset, cfg.seed).save(tmp / f"{name}.png")


def statistics(datasets: dict[str, store.Dataset]) -> dict:
    """Counts, class balance, groups and de-biasing statistics of every dataset."""
    return {name: summary.describe(ds) for name, ds in datasets.items()}
