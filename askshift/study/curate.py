"""Step `curate`: every dataset of the world, built from data/raw (a pure function of the raw
data, the `curate` params and the seed), with the shift index, image grids and statistics."""
from __future__ import annotations

import json

import numpy as np

from askshift.data import cifar10, corpus, digits, raw, store, summary
from askshift.data.worlds import CIFAR10, DIGITS, WORLDS
from askshift.io import atomic_dir
from askshift.study import layout
from askshift.study.stage import InputError, Timer


def _check_counts(world, labels, where: str, expected) -> None:
    counts = tuple(int(n) for n in np.bincount(labels, minlength=world.num_classes))
    if counts != expected:  # the params rules on set sizes assume these counts
        raise InputError(f"{where}: images per class {counts} differ from the pinned source's "
                         f"{expected} (askshift/data/worlds.py)")


def _digits(cfg, c: dict) -> dict:
    inputs = raw.digits_inputs(layout.RAW)
    _check_counts(DIGITS, inputs.mnist[1], str(layout.RAW / "mnist"), DIGITS.source_class_counts)
    return digits.build_world(inputs, c, cfg.seed)


def _cifar10(cfg, c: dict) -> dict:
    source = raw.cifar10_inputs(layout.RAW)
    where = str(layout.RAW / raw.CIFAR10_TARBALL)
    r = c["reference"]
    # the params rules assume class-balanced splits of at most 50,000 / 10,000 images; the
    # pinned tarball is, a local copy passes the same hash, a test fixture is smaller
    for split, need in (("train", r["n_train"] + r["n_val"]), ("test", r["n_test"])):
        counts = np.bincount(source[split][1], minlength=CIFAR10.num_classes)
        if counts.min() != counts.max():
            raise InputError(f"{where}: the {split} images are not class-balanced ({counts.tolist()} per class)")
        if need > counts.sum():
            raise InputError(f"{where}: curate.reference asks for {need} {split} images but the file holds "
                             f"{counts.sum()}")
    return cifar10.build_world(source, c, cfg.seed)


BUILDERS = {"digits": _digits, "cifar10": _cifar10}


def build(cfg) -> dict[str, store.Dataset]:
    """Every dataset of the world by name: references, shifted sets, de-biased sets, corpus
    (an empty one in a world without a corpus: its pre-trained weights come from params)."""
    timer = Timer()
    c = cfg.curate.to_dict()
    world = WORLDS[cfg.world]
    roles = BUILDERS[world.name](cfg, c)
    datasets = {layout.dataset_name(role, name): ds for (role, name), ds in roles.items()}
    print(f"reference and shifts built ({timer()} s)", flush=True)
    if world.has_corpus:
        datasets[layout.CORPUS] = corpus.build_corpus(raw.corpus_inputs(layout.RAW), c["corpus"],
                                                      c["tint_strength"], cfg.seed)
        print(f"pre-training corpus built: {len(datasets[layout.CORPUS])} images ({timer()} s)", flush=True)
    else:
        datasets[layout.CORPUS] = store.empty(datasets[layout.reference("plain")])
        print(f"no pre-training corpus in the {world.name} world (pretrain.weights gives the model)", flush=True)
    return datasets


def save(datasets: dict[str, store.Dataset], cfg) -> None:
    """The datasets with the shift index, then one image grid per dataset (each folder atomic)."""
    with atomic_dir(layout.DATASETS) as tmp:
        for name, ds in datasets.items():
            store.save(ds, tmp / name)
        (tmp / layout.SHIFT_INDEX.name).write_text(json.dumps(layout.shift_index(WORLDS[cfg.world]), indent=1))
    with atomic_dir(layout.GRIDS) as tmp:
        for name, ds in datasets.items():
            if len(ds):
                summary.image_grid(ds, cfg.curate.grid.per_dataset, cfg.seed).save(tmp / f"{name}.png")


def statistics(datasets: dict[str, store.Dataset]) -> dict:
    """Counts, class balance, groups and de-biasing statistics of every dataset."""
    return {name: summary.describe(ds) for name, ds in datasets.items()}
