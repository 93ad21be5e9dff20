"""How much work a study's params ask for: images through a model, per stage and model.

:func:`plan` counts, from validated params and the curated datasets' sizes, the images each
stage passes through a training step (forward and backward) and through inference (evaluation,
validation, frozen features), following the same run lists and epoch rules as the stages
(:mod:`askshift.study.layout`, :func:`askshift.study.training.record_every`). Multiplied by a
model's FLOPs per image and divided by a measured rate this is a compute estimate
(``benchmarks/estimate_compute.py``). Torch-free.

Counted: pretrain (the pipeline's corpus), baseline, finetune (lr grid, LP features, LP-FT),
evaluate, interventions (arms, DFR features, evaluation), debiased (arms, sweep) and split
(pre-trained features). Not counted: ask (the user's data), the theory stage and the report
(no network), and the per-run cost of starting a process.
"""
from __future__ import annotations

from dataclasses import dataclass

from askshift.study import layout
from askshift.study.config import scratch_model
from askshift.study.training import MAX_EVALS, record_every

SCRATCH, PRETRAINED = "scratch", "pretrained"


@dataclass(frozen=True)
class Work:
    """Images one stage passes through one model: ``model`` is ``pretrained`` (the fine-tuned
    pre-trained architecture) or ``scratch`` / ``scratch@w<width>`` (the baselines' one)."""

    stage: str
    model: str
    runs: int
    train_images: int
    infer_images: int


def _evals(epochs: int, n: int, batch_size: int) -> int:
    """Validations of one run (every ``record_every`` epochs and the last)."""
    every = record_every(epochs, MAX_EVALS, n, batch_size)
    return len(set(range(every, epochs + 1, every)) | {epochs})


def _eval_images(sizes: dict, index: dict, variant: str) -> int:
    """Images a model of ``variant`` is evaluated on: its reference test split and its shifts."""
    return sum(sum(sizes[name].values()) if name != layout.reference(variant) else sizes[name]["test"]
               for name in layout.eval_sets(index, variant))


def plan(p: dict, sizes: dict[str, dict[str, int]], index: dict) -> list[Work]:
    """The work of every stage. ``p``: validated params; ``sizes``: {dataset: {split: images}}
    (``data/curated/summary.json``'s ``per_split``); ``index``: the shift index
    (:func:`askshift.study.layout.shift_index`)."""
    out: list[Work] = []
    b, f = p["baseline"], p["finetune"]
    add = lambda *a: out.append(Work(*a))  # noqa: E731

    if p["pretrain"]["weights"] == "pipeline" and sizes.get(layout.CORPUS, {}).get("train"):
        t, n, nv = p["pretrain"]["train"], sizes[layout.CORPUS]["train"], sizes[layout.CORPUS].get("val", 0)
        add("pretrain", PRETRAINED, 1, t["epochs"] * n, _evals(t["epochs"], n, t["batch_size"]) * nv)

    bt = b["train"]
    for v in b["variants"]:
        ref = sizes[layout.reference(v)]
        n, nv = ref["train"], ref["val"]
        evals = _evals(bt["epochs"], n, bt["batch_size"]) * nv
        for w in b["widths"]:
            runs = b["seeds"] if w == 1.0 else 1
            add("baseline", SCRATCH if w == 1.0 else f"{SCRATCH}@w{w:g}", runs, runs * bt["epochs"] * n, runs * evals)
        for frac in (x for x in b["subset_fractions"] if x < 1.0):
            m = max(1, round(frac * n))
            add("baseline", SCRATCH, 1, bt["epochs"] * m, _evals(bt["epochs"], m, bt["batch_size"]) * nv)

    floor = p["debiased"]["min_steps"] if f["dataset"] == "debiased" else f["min_steps"]
    for v in b["variants"]:
        train_set = layout.reference(v) if f["dataset"] == "reference" else layout.debiased(v)
        n, nv = sizes[train_set]["train"], sizes[layout.reference(v)]["val"]
        runs = len(f["lr_grid"]) + f["copies"] - 1          # the grid on copy 0, then the other copies
        ft_epochs = layout.epochs_for(n, f["train"]["batch_size"], f["train"]["epochs"], floor)
        for s in f["strategies"]:
            train = 0 if s == "lp" else runs * ft_epochs * n
            infer = runs * (n + nv) if s in ("lp", "lpft") else 0     # the probe's frozen features
            if s != "lp":
                infer += runs * _evals(ft_epochs, n, f["train"]["batch_size"]) * nv
            add("finetune", PRETRAINED, runs, train, infer)

    per_variant = {v: b["seeds"] * len(b["snapshot_epochs"]) + (len(b["widths"]) - 1) * len(b["snapshot_epochs"])
                   + sum(1 for x in b["subset_fractions"] if x < 1.0) for v in b["variants"]}
    add("evaluate", SCRATCH, sum(per_variant.values()), 0,
        sum(k * _eval_images(sizes, index, v) for v, k in per_variant.items()))
    add("evaluate", PRETRAINED, len(b["variants"]) * len(f["strategies"]) * f["copies"], 0,
        sum(len(f["strategies"]) * f["copies"] * _eval_images(sizes, index, v) for v in b["variants"]))

    iv = p["interventions"]
    for v in iv["variants"]:
        ref = sizes[layout.reference(v)]
        n, nv = ref["train"], ref["val"]
        composed = 2 if iv["compose"] != "none" else 1
        shifts = sum(sizes[s["shifted"]]["test"] for s in index.values() if s["reference"] == layout.reference(v))
        evaluation = ref["test"] + composed * shifts
        twins = 2 if iv["reweight"] else 1
        ft_epochs = layout.epochs_for(n, f["train"]["batch_size"], f["train"]["epochs"], f["min_steps"])
        for kind, epochs, bs in ((SCRATCH, bt["epochs"], bt["batch_size"]),
                                 (PRETRAINED, ft_epochs, f["train"]["batch_size"])):
            runs = iv["trials"] * twins
            models = runs + iv["trials"]                      # + the DFR models
            add("interventions", kind, runs, runs * epochs * n,
                runs * _evals(epochs, n, bs) * nv + iv["trials"] * nv + models * evaluation)
        add("interventions", SCRATCH, 0, 0, per_variant.get(v, 0) * evaluation)   # the baselines' ER line

    de = p["debiased"]
    pair = next((s for s in index.values() if s["reference"] == layout.reference(de["variant"])
                 and s["kind"] == "in-support"), None)
    if pair is not None:
        evaluation = sizes[pair["reference"]]["test"] + sizes[pair["shifted"]]["test"]
        small = sizes[pair["debiased"]]["train"]
        for kind, t, arms in ((PRETRAINED, f["train"], 3), (SCRATCH, bt, 1)):
            epochs = layout.epochs_for(small, t["batch_size"], t["epochs"], de["min_steps"])
            runs = de["trials"] * arms
            add("debiased", kind, runs, runs * epochs * small, runs * evaluation)
        runs = sum(de["resamples"] for _ in de["sizes"])
        train = sum(de["resamples"] * n * layout.epochs_for(n, f["train"]["batch_size"], f["train"]["epochs"],
                                                               de["min_steps"]) for n in de["sizes"])
        add("debiased", PRETRAINED, runs, train, runs * evaluation)

    sp = p["split"]
    if sp["features"] in ("pretrained", "both"):   # each reference's training split, each shift
        refs = {index[s]["reference"] for s in sp["shifts"]}
        images = sum(sizes[r]["train"] for r in refs) + sum(sizes[index[s]["shifted"]]["test"] for s in sp["shifts"])
        add("split", PRETRAINED, 0, 0, images)
    return out


def totals(work: list[Work]) -> dict[str, dict[str, int]]:
    """Per model: runs, training images and inference images over all stages."""
    out: dict[str, dict[str, int]] = {}
    for w in work:
        t = out.setdefault(w.model, {"runs": 0, "train_images": 0, "infer_images": 0})
        t["runs"] += w.runs
        t["train_images"] += w.train_images
        t["infer_images"] += w.infer_images
    return out


def width(model: str) -> float:
    """The channel-width multiplier of a scratch model key (``scratch@w0.5`` -> 0.5)."""
    return float(model.split("@w")[1]) if "@w" in model else 1.0


def widths(work: list[Work]) -> dict[str, float]:
    """{model key: channel-width multiplier} of the scratch models in ``work``."""
    return {w.model: width(w.model) for w in work if w.model.startswith(SCRATCH)}


def describe(p: dict) -> dict[str, str]:
    """What each model key stands for, in words."""
    arch, kwargs = scratch_model(p)
    return {SCRATCH: f"{arch} {kwargs} from scratch" if kwargs else f"{arch} from scratch",
            PRETRAINED: f"{p['model']['arch']} ({p['pretrain']['weights']})"}
