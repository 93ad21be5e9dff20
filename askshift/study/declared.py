"""Which params keys each stage reads: the one table that dvc.yaml's ``params:`` lists follow.

The `params` stage writes each stage's validated values of these keys to
``results/params/<stage>.json``, and the stage reads its config from that file only
(:mod:`askshift.study.config`). Declare a key here, then run ``python -m askshift deps --write``
to copy the table into dvc.yaml (a test fails while the two differ). A key or section listed
here re-runs the stage when it changes; ``ALL`` is the whole file (the report's index lists
every param in its provenance).

Each part of the report is its own stage (``report_<part>``) that declares only what its
notebook reads, so an experiment that changes the fine-tunes re-renders the parts that show
them and leaves the others (the data grids, the theory) as they are.
"""
from __future__ import annotations

from askshift.study.config import ALL

RUN = ("seed", "compute")           # every training stage: the seed and where it runs
ER = ("robustness.scale", "robustness.confidence")

STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "params": (ALL,),
    "machine": ("compute", "model", "baseline.model", "pretrain.weights"),
    "download": ("world", "download"),
    "curate": ("seed", "world", "curate"),
    "pretrain": (*RUN, "world", "model", "pretrain"),
    "baseline": (*RUN, "model", "baseline"),
    "finetune": (*RUN, "model.arch", "baseline.variants", "finetune", "debiased.min_steps"),
    "evaluate": ("compute", "evaluate"),
    "robustness": ("seed", "robustness", "finetune.dataset", "split.min_part", "split.matched_min_share"),
    "interventions": (*RUN, "model", "baseline.model", "curate.pad", "baseline.train", "finetune.train", "finetune.min_steps",
                      "evaluate", *ER, "interventions"),
    "debiased": (*RUN, "model", "baseline.model", "curate.tint_strength", "curate.debiased.retints", "baseline.train",
                 "finetune.train", "evaluate", *ER, "debiased"),
    "split": (*RUN, "evaluate.batch_size", *ER, "split"),
    "theory": ("seed", "theory"),
    "ask_example": ("ask.example",),
    # every ask key but `example` (the default input's content is a dep of its own)
    "ask": (*RUN, "ask.reference", "ask.shifted", "ask.model", "ask.features", "ask.pixel_size", "ask.k",
            "ask.epsilon", "ask.on_bad_image", "ask.effect", "baseline.train", "baseline.snapshot_epochs",
            "baseline.subset_fractions", "finetune.train", "finetune.lp", "finetune.min_steps"),
    "report": (ALL,),
}

RENDER = ("report.show_code", "report.cell_timeout")   # how every part's notebook is rendered
#: the params each part's notebook reads (besides :data:`RENDER`), by part name
PART_PARAMS: dict[str, tuple[str, ...]] = {
    "data": ("world",),
    "robustness": ("robustness.scale", "robustness.metric", "robustness.confidence",
                   "report.in_support_tolerance", "report.min_effect", "report.min_fit_r2"),
    "interventions": ("robustness.scale",),
    "debiased": (),
    "split": ("split.matched_min_share",),
    "theory": (),
    "sweeps": (),
}


def part_stage(part: str) -> str:
    """The stage that renders a report part."""
    return f"report_{part}"


STAGE_PARAMS.update({part_stage(p): (*RENDER, *keys) for p, keys in PART_PARAMS.items()})
