"""The study's layout: which models are trained, where they live, what each is evaluated on.

Stage scripts ask this module for their list of runs, so the pretrain, baseline, finetune,
evaluate and robustness stages agree on names and paths without repeating them.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from askshift.train import TrainConfig

MODELS = Path("models")
RESULTS = Path("results")
DATASETS = Path("data/curated/datasets")


@dataclass(frozen=True)
class Run:
    """One trained model of the study."""

    name: str           # unique, e.g. "plain/baseline/full-e3" or "plain/pretrained/lpft-c1"
    variant: str        # reference variant it was trained on: plain | spurious_tint | label_shift
    role: str           # baseline (from scratch) | pretrained (fine-tuned pre-trained model)
    strategy: str       # scratch | ft | lp | lpft
    copy: int           # seed index among identical recipes
    epoch: int          # training epoch of this snapshot (0 for LP-only)
    fraction: float     # fraction of the training set used
    train_set: str      # dataset it was trained on

    @property
    def path(self) -> Path:
        stage = "baseline" if self.role == "baseline" else "finetune"
        return MODELS / stage / f"{self.name.replace('/', '__')}.pt"

    def as_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def train_config(section: dict, compute: dict, seed: int, **overrides) -> TrainConfig:
    """A TrainConfig from a params `train` section plus the compute settings."""
    return TrainConfig(**section, seed=seed, device=compute["device"], amp=compute["amp"],
                       num_threads=compute["threads"], **overrides)


def run_seed(seed: int, *parts) -> int:
    """A stable per-run seed derived from the global seed and the run's identity."""
    digest = hashlib.sha256(json.dumps([seed, *parts]).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def epochs_for(n_examples: int, batch_size: int, epochs: int, min_steps: int) -> int:
    """Enough epochs for at least `min_steps` optimizer steps (small sets need more epochs)."""
    steps = math.ceil(n_examples / batch_size)
    return max(epochs, math.ceil(min_steps / max(steps, 1)))


def baseline_runs(params: dict) -> list[Run]:
    b = params["baseline"]
    runs = []
    for v in b["variants"]:
        for e in sorted(b["snapshot_epochs"]):
            runs.append(Run(f"{v}/baseline/full-e{e}", v, "baseline", "scratch", 0, e, 1.0, f"ref_{v}"))
        for f in sorted(b["subset_fractions"]):
            if f < 1.0:
                runs.append(Run(f"{v}/baseline/subset-{f:g}", v, "baseline", "scratch", 0,
                                b["train"]["epochs"], f, f"ref_{v}"))
    return runs


def finetune_runs(params: dict) -> list[Run]:
    f = params["finetune"]
    train_set = "ref" if f["dataset"] == "reference" else "debiased"
    runs = []
    for v in params["baseline"]["variants"]:
        for s in f["strategies"]:
            for c in range(f["copies"]):
                epoch = 0 if s == "lp" else f["train"]["epochs"]
                runs.append(Run(f"{v}/pretrained/{s}-c{c}", v, "pretrained", s, c, epoch, 1.0,
                                f"{train_set}_{v}"))
    return runs


def eval_sets(shift_index: dict, variant: str) -> list[str]:
    """Datasets a model trained on `variant` is evaluated on: its reference test split and
    every shifted set whose reference is that variant."""
    ref = f"ref_{variant}"
    shifted = [s["shifted"] for s in shift_index.values() if s["reference"] == ref]
    return [ref] + sorted(shifted)
