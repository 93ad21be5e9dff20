"""The study's layout: every path and dataset name, which models are trained and what each
is evaluated on. The one place that knows them; imports no torch.

Stages and study steps ask this module, so the pretrain, baseline, finetune, evaluate,
robustness and analysis stages agree on names and paths without rebuilding them.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from askshift.data.worlds import World

if TYPE_CHECKING:
    import pandas as pd

# ---------------------------------------------------------------- folders and files
SOURCES = Path("data/sources.yaml")
RAW = Path("data/raw")
CURATED = Path("data/curated")
DATASETS = CURATED / "datasets"
GRIDS = CURATED / "grids"
CURATION_SUMMARY = CURATED / "summary.json"
SHIFT_INDEX = DATASETS / "shifts.json"
MODELS = Path("models")
CHECKPOINTS = MODELS / "ckpt"              # resumable training state: scratch, git-ignored
PRETRAINED_MODEL = MODELS / "pretrain" / "model.pt"
RESULTS = Path("results")
DVCLIVE = Path("dvclive")
REPORTS = Path("reports")
ASK_EXAMPLE = Path("data/ask")               # the `ask` stage's default input pair (stage ask_example)
MACHINE_CHECKED = RESULTS / "machine.json"  # written by the `machine` stage; every torch stage depends on it


def results(stage: str) -> Path:
    """``results/<stage>``: the tables and metrics of one stage."""
    return RESULTS / stage


def metrics_file(stage: str) -> Path:
    """``results/<stage>/metrics.json``: the stage's headline numbers (`dvc metrics`, `dvc exp show`)."""
    return results(stage) / "metrics.json"


def details_file(stage: str) -> Path:
    """``results/<stage>/details.json``: every number the stage measured (the report reads it),
    its claims for the report's claims table included."""
    return results(stage) / "details.json"


def timings_file(stage: str) -> Path:
    """``results/timings/<stage>.json``: how long the stage's last run took. Not a DVC output
    and git-ignored: timings differ between identical runs, so they stay out of the metrics."""
    return RESULTS / "timings" / f"{stage}.json"


EVALUATED = ("baseline", "finetune")  # the evaluate stage runs once per models folder (dvc.yaml foreach)


def evaluation(kind: str) -> Path:
    """``results/evaluate/<kind>``: predictions and accuracies of the models of stage ``kind``."""
    return results("evaluate") / kind


def read_accuracies() -> pd.DataFrame:
    """The accuracy table of every evaluated model (baselines and fine-tunes)."""
    import pandas as pd

    return pd.concat([pd.read_csv(evaluation(k) / "accuracies.csv") for k in EVALUATED], ignore_index=True)


def read_predictions(datasets: list[str] | None = None) -> pd.DataFrame:
    """Per-example predictions of every evaluated model (optionally on some datasets only)."""
    import pandas as pd

    filters = [("dataset", "in", datasets)] if datasets is not None else None
    return pd.concat([pd.read_parquet(evaluation(k) / "predictions.parquet", filters=filters) for k in EVALUATED],
                     ignore_index=True)


def models_dir(stage: str) -> Path:
    return MODELS / stage


def model_index(stage: str) -> Path:
    """``models/<stage>/index.json``: one row per model the stage saved."""
    return models_dir(stage) / "index.json"


def live_dir(stage: str, run: str = "") -> Path:
    """DVCLive folder of one run of a stage (``dvclive/<stage>[/<run>]``)."""
    return DVCLIVE / stage / run.replace("/", "-") if run else DVCLIVE / stage


# ---------------------------------------------------------------- dataset names
CORPUS = "pretrain"
ROLE_PREFIX = {"reference": "ref", "shifted": "shift", "debiased": "debiased"}


def dataset_name(role: str, name: str) -> str:
    """``("reference", "plain")`` -> ``ref_plain``; roles as in :mod:`askshift.data.digits`."""
    return f"{ROLE_PREFIX[role]}_{name}"


def reference(variant: str) -> str:
    return dataset_name("reference", variant)


def shifted(shift: str) -> str:
    return dataset_name("shifted", shift)


def debiased(variant: str) -> str:
    return dataset_name("debiased", variant)


def dataset_dir(name: str) -> Path:
    return DATASETS / name


def shift_index(world: World) -> dict:
    """The (reference, shifted) pairs as later stages read them (``shifts.json``)."""
    return {name: {"reference": reference(s.variant), "shifted": shifted(name), "kind": s.kind,
                   "debiased": debiased(s.variant)}
            for name, s in world.shifts.items()}


def read_shift_index() -> dict:
    """``shifts.json`` as the curate stage wrote it: {shift: {reference, shifted, kind, debiased}}."""
    return json.loads(SHIFT_INDEX.read_text())


# ---------------------------------------------------------------- seeds and budgets
def run_seed(seed: int, *parts) -> int:
    """A stable per-run seed derived from the global seed and the run's identity."""
    digest = hashlib.sha256(json.dumps([seed, *parts]).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def epochs_for(n_examples: int, batch_size: int, epochs: int, min_steps: int) -> int:
    """Enough epochs for at least `min_steps` optimizer steps (small sets need more epochs)."""
    steps = math.ceil(n_examples / batch_size)
    return max(epochs, math.ceil(min_steps / max(steps, 1)))


# ---------------------------------------------------------------- the main study's models
@dataclass(frozen=True)
class Run:
    """One trained model of the main study."""

    name: str           # unique, e.g. "plain/baseline/full-e3" or "plain/pretrained/lpft-c1"
    variant: str        # reference variant it was trained on: plain | spurious_tint | label_shift
    role: str           # baseline (from scratch) | pretrained (fine-tuned pre-trained model)
    strategy: str       # scratch | ft | lp | lpft
    copy: int           # seed index among identical recipes
    epoch: int          # training epoch of this snapshot (0 for LP-only)
    fraction: float     # fraction of the training set used
    train_set: str      # dataset it was trained on
    run: str = ""       # the training run it comes from (snapshots of one run share it)
    width: float = 1.0  # channel-width multiplier of the architecture (baselines)

    @property
    def path(self) -> Path:
        stage = "baseline" if self.role == "baseline" else "finetune"
        return models_dir(stage) / f"{self.name.replace('/', '__')}.pt"

    def as_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def full_run_tag(width: float, seed: int) -> str:
    """``full`` for the first run of the configured model, ``full-w0.5-s1`` for the others."""
    return "full" if width == 1.0 and seed == 0 else f"full-w{width:g}-s{seed}"


def baseline_runs(variants, snapshot_epochs, subset_fractions, epochs: int, seeds: int = 1,
                  widths=(1.0,)) -> list[Run]:
    """Per variant, from-scratch models whose reference accuracies span a range: snapshots (at
    ``snapshot_epochs``) of ``seeds`` independent full runs of the configured model and of one
    full run per other width, and one run per subset fraction below 1."""
    runs = []
    for v in variants:
        for w in widths:
            for s in range(seeds if w == 1.0 else 1):
                tag = full_run_tag(w, s)
                for e in sorted(snapshot_epochs):
                    runs.append(Run(f"{v}/baseline/{tag}-e{e}", v, "baseline", "scratch", s, e, 1.0, reference(v),
                                    tag, w))
        for f in sorted(subset_fractions):
            if f < 1.0:
                runs.append(Run(f"{v}/baseline/subset-{f:g}", v, "baseline", "scratch", 0, epochs, f, reference(v),
                                f"subset-{f:g}"))
    return runs


def finetune_runs(variants, strategies, copies: int, dataset: str, epochs: int) -> list[Run]:
    """Per variant, strategy and copy: the pre-trained model fine-tuned on the variant's
    reference training split (``dataset="reference"``) or its de-biased set."""
    train_set = reference if dataset == "reference" else debiased
    return [Run(f"{v}/pretrained/{s}-c{c}", v, "pretrained", s, c, 0 if s == "lp" else epochs, 1.0, train_set(v),
                f"{s}-c{c}") for v in variants for s in strategies for c in range(copies)]


def eval_sets(index: dict, variant: str) -> list[str]:
    """Datasets a model trained on `variant` is evaluated on: its reference test split and
    every shifted set whose reference is that variant."""
    ref = reference(variant)
    return [ref] + sorted(s["shifted"] for s in index.values() if s["reference"] == ref)
