"""Which params keys each stage reads: the one table that dvc.yaml's ``params:`` lists follow.

The `params` stage writes each stage's validated values of these keys to
``results/params/<stage>.json``, and the stage reads its config from that file only
(:mod:`askshift.study.config`). Declare a key here, then run ``python -m askshift deps --write``
to copy the table into dvc.yaml (a test fails while the two differ). A key or section listed
here re-runs the stage when it changes; ``ALL`` is the whole file (the report lists every
param in its provenance).
"""
from __future__ import annotations

from askshift.study.config import ALL

RUN = ("seed", "compute")           # every training stage: the seed and where it runs
ER = ("robustness.scale", "robustness.confidence")

STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "params": (ALL,),
    "download": (),
    "curate": ("seed", "world", "curate"),
    "pretrain": (*RUN, "model", "pretrain"),
    "baseline": (*RUN, "model", "baseline"),
    "finetune": (*RUN, "model.arch", "baseline.variants", "finetune", "debiased.min_steps"),
    "evaluate": ("compute", "evaluate"),
    "robustness": ("seed", "robustness", "finetune.dataset", "split.min_part", "split.matched_min_share"),
    "interventions": (*RUN, "model", "curate.pad", "baseline.train", "finetune.train", "finetune.min_steps",
                      "evaluate", *ER, "interventions"),
    "debiased": (*RUN, "model", "curate.tint_strength", "curate.debiased.retints", "baseline.train",
                 "finetune.train", "evaluate", *ER, "debiased"),
    "split": (*RUN, "evaluate.batch_size", *ER, "split"),
    "theory": ("seed", "theory"),
    "report": (ALL,),
}
