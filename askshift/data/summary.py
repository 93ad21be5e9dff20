"""What the curate stage reports for people: counts, de-biasing statistics, image grids."""
from __future__ import annotations

import numpy as np
from PIL import Image
from sklearn.metrics import normalized_mutual_info_score

from askshift.data.store import Dataset


def attribute_predictivity(labels: np.ndarray, attribute: np.ndarray) -> dict:
    """How well an attribute alone predicts the label on this set.

    accuracy: of the best attribute-only rule (majority label per attribute value), measured
    on the set itself; chance: the majority-class rate; nmi: normalised mutual information.
    A de-biased set has accuracy == chance and nmi ~ 0.
    """
    labels, attribute = np.asarray(labels), np.asarray(attribute)
    correct = sum(np.bincount(labels[attribute == a]).max() for a in np.unique(attribute))
    return {
        "accuracy": float(correct / len(labels)),
        "chance": float(np.bincount(labels).max() / len(labels)),
        "nmi": float(normalized_mutual_info_score(labels, attribute)),
    }


def describe(ds: Dataset) -> dict:
    meta = ds.meta
    if not len(ds):
        return {"n": 0}
    out = {
        "n": int(len(ds)),
        "per_split": {k: int(v) for k, v in meta["split"].value_counts().sort_index().items()},
        "per_class": {str(k): int(v) for k, v in meta["class_name"].value_counts().sort_index().items()},
        "n_groups": int(meta["group"].nunique()),
        "min_group": int(meta["group"].value_counts().min()),
    }
    if meta["class_name"].nunique() <= 20:
        out["per_group"] = {str(k): int(v) for k, v in meta["group"].value_counts().sort_index().items()}
    if "tint" in meta:
        out["tint_predicts_label"] = {
            split: attribute_predictivity(part["label"].to_numpy(), part["tint"].to_numpy())
            for split, part in meta.groupby("split")}
    if "in_support" in meta:
        out["in_support_fraction"] = float(meta["in_support"].mean())
    return out


def image_grid(ds: Dataset, n: int, seed: int, scale: int = 2) -> Image.Image:
    """A grid of n random images sorted by label: one look tells whether a shift looks right."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(ds), size=min(n, len(ds)), replace=False)
    picks = picks[np.argsort(ds.labels[picks], kind="stable")]
    cols = int(np.ceil(np.sqrt(len(picks))))
    rows = int(np.ceil(len(picks) / cols))
    h, w = ds.images.shape[1:3]
    gap = 2
    canvas = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, 3), 128, np.uint8)
    for k, i in enumerate(picks):
        r, c = divmod(k, cols)
        canvas[gap + r * (h + gap): gap + r * (h + gap) + h, gap + c * (w + gap): gap + c * (w + gap) + w] = ds.images[i]
    img = Image.fromarray(canvas)
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)
