"""The `cifar10` world: CIFAR-10 with the synthetic shifts of the paper's Sec. 5.1.

The reference's train and val splits are a stratified, seeded draw from the 50,000 official
training images and its test split one from the 10,000 official test images (so no test image
was ever a training image, as in the paper). Every synthetic shift, the mixture and the de-biased
sets are built from it by :mod:`askshift.data.synthetic`, the same code as the digits world's;
the natural shift is CIFAR-10.1 v6 as published. This world
has no pre-training corpus: the pre-trained model comes from ``pretrain.weights`` (the paper's
timm checkpoints, or a file).
"""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from askshift.data import synthetic
from askshift.data.store import Dataset
from askshift.data.synthetic import Role
from askshift.data.worlds import CIFAR10


def _draw(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A stratified, seeded subset of ``n`` indices (all of them, in order, when ``n`` is all)."""
    idx = np.arange(len(labels))
    if n >= len(labels):
        return idx
    return train_test_split(idx, train_size=n, stratify=labels, random_state=seed)[0]


def build_reference(source: dict, cfg: dict, seed: int) -> Dataset:
    """Stratified, seeded train / val split of the training images and test subset of the test
    images, 32x32 RGB as stored."""
    (xtr, ytr), (xte, yte) = source["train"], source["test"]
    if tuple(source["class_names"]) != CIFAR10.class_names:
        raise ValueError(f"class names {source['class_names']} differ from CIFAR-10's {CIFAR10.class_names}")
    r = cfg["reference"]
    train, val = train_test_split(np.arange(len(ytr)), train_size=r["n_train"], test_size=r["n_val"],
                                  stratify=ytr, random_state=seed)
    test = _draw(yte, r["n_test"], seed)
    images = np.concatenate([xtr[train], xtr[val], xte[test]])
    labels = np.concatenate([ytr[train], ytr[val], yte[test]])
    split = ["train"] * len(train) + ["val"] * len(val) + ["test"] * len(test)
    origin = ["cifar10-train"] * (len(train) + len(val)) + ["cifar10-test"] * len(test)
    meta = synthetic.table(labels, split, origin, CIFAR10.class_names,
                           source_index=np.concatenate([train, val, test]))
    return Dataset(np.ascontiguousarray(images), meta)


def build_world(source: dict, cfg: dict, seed: int) -> dict[Role, Dataset]:
    """Every dataset of the cifar10 world, keyed by role (see :mod:`askshift.data.synthetic`):
    the synthetic shifts and, before the mixture, the natural shift CIFAR-10.1 (all its images)."""
    plain = build_reference(source, cfg, seed)
    built = synthetic.build_shifts(plain, cfg, seed, CIFAR10.num_classes, CIFAR10.out_of_support_transforms)
    images, labels = source["cifar10_1"]
    natural = Dataset(images, synthetic.table(labels, "test", "cifar10.1-v6", CIFAR10.class_names,
                                              source_index=np.arange(len(labels))))
    out: dict[Role, Dataset] = {}
    for key, ds in built.items():   # the world's order: the natural shift before the mixture
        if key == ("shifted", "mixture"):
            out[("shifted", "cifar10_1")] = natural
        out[key] = ds
    return out
