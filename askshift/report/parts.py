"""The report's parts: one notebook per part of the paper, and the pipeline outputs it reads.

`outputs` lists the paths a part renders when they are available; a part renders whatever of
them exists and says plainly which analyses were not produced by this pipeline run.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Part:
    name: str                # notebook template reports/templates/<name>.ipynb
    title: str
    section: str             # where it sits in the paper
    summary: str             # one line for the index page
    outputs: tuple[str, ...] = field(default_factory=tuple)


PARTS: tuple[Part, ...] = (
    Part("data", "Data: reference, shifts, pre-training corpus, de-biased sets", "Sec. 5.1, 7",
         "Image grids of every dataset and the curation statistics.",
         ("data/curated/summary.json", "data/curated/grids", "data/curated/datasets/shifts.json")),
    Part("robustness", "Effective robustness per shift", "Sec. 3, 5.1",
         "Accuracy on the line (probit axes), baseline fit and band, ER with intervals; training curves.",
         ("results/robustness/er.csv", "results/robustness/points.csv", "results/robustness/lines.csv",
          "results/robustness/details.json", "results/evaluate/baseline/accuracies.csv",
          "results/evaluate/finetune/accuracies.csv", "results/pretrain/details.json",
          "data/curated/datasets/shifts.json", "data/published/timm-sec3/accuracies.csv",
          "dvclive/pretrain", "dvclive/baseline",
          "dvclive/finetune")),
    Part("interventions", "Pre-training and bias interventions (DFR)", "Sec. 6",
         "The four arms, worst-group accuracy, and the overlap of corrected examples.",
         ("results/interventions",)),
    Part("debiased", "Fine-tuning on a small curated de-biased set", "Sec. 7",
         "Size sweep of the curated set against the full-reference fine-tune.",
         ("results/debiased",)),
    Part("split", "Splitting natural shifts into in- and out-of-support parts", "Sec. 5.2",
         "The splitter against known membership, example images of each part, ER per part.",
         ("results/split", "results/robustness/parts.csv", "results/robustness/control_check.csv",
          "data/curated/datasets")),   # the datasets: example images of each part
    Part("theory", "Logistic-regression theory", "Sec. 4",
         "The simulation figure and the numerical check of the theorem.",
         ("results/theory",)),
    Part("sweeps", "Sweeps: bias strength and fine-tuning hyper-parameters", "Appendix",
         "Tables of the sweeps, when their results exist.",
         ("results/sweeps",)),
)

BY_NAME = {p.name: p for p in PARTS}
NAMES = tuple(p.name for p in PARTS)
