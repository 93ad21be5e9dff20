"""The models of the paper's analyses (interventions, debiased): one arm's model trained from
scratch or from the pre-trained model, and its per-example predictions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from askshift.data.store import Dataset
from askshift.methods.metrics import prediction_frame
from askshift.nn import models, train
from askshift.nn.config import TrainConfig

ARM_KINDS = ("scratch", "pretrained")


def train_arm(kind: str, train_set: Dataset, val_set: Dataset | None, cfg: TrainConfig, *,
              arch: str, arch_kwargs: dict, num_classes: int, pretrained: str | Path | None = None,
              pretrained_arch: str | None = None, sample_weight=None, live=None):
    """Train one model of an arm and return it with its history.

    ``kind="scratch"``: ``arch`` with ``arch_kwargs`` (the baselines' recipe,
    :func:`askshift.study.config.scratch_model`), random init seeded by ``cfg.seed``.
    ``kind="pretrained"``: the pipeline checkpoint ``pretrained`` (architecture
    ``pretrained_arch``, default ``arch``) with a fresh head, all parameters fine-tuned (FT). ``sample_weight`` is passed to :func:`askshift.nn.train.fit`
    (e.g. group-balanced weights for the re-weighting intervention).
    """
    if kind == "scratch":
        model = models.create_model(arch, num_classes, seed=cfg.seed, **arch_kwargs)
    elif kind == "pretrained":
        if pretrained is None:
            raise ValueError("kind='pretrained' needs the path of the pre-trained checkpoint")
        model = models.create_model(pretrained_arch or arch, num_classes, weights=f"pipeline:{pretrained}",
                                    seed=cfg.seed)
    else:
        raise ValueError(f"kind={kind!r} is not valid; choose one of {ARM_KINDS}")
    val = (val_set.images, np.array(val_set.labels)) if val_set is not None else None
    history = train.fit(model, (train_set.images, np.array(train_set.labels)), val, cfg, live=live,
                        sample_weight=sample_weight)
    return model, history


def predict_frame(model, model_name: str, datasets: dict[str, Dataset], batch_size: int = 1024,
                  device: str = "auto") -> pd.DataFrame:
    """One row per (dataset, example): model, dataset, index, label, group, pred."""
    frames = []
    for name, ds in datasets.items():
        logits = train.predict(model, ds.images, batch_size=batch_size, device=device)
        frames.append(prediction_frame(model_name, name, ds.meta, logits))
    return pd.concat(frames, ignore_index=True)
