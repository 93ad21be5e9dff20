"""Step `debiased` (paper Sec. 7): fine-tuning on a small, non-diverse, de-biased set.

Arms (``debiased.trials`` seeds each), all judged on the variant's reference test split and
its shifted set (accuracy, worst-group accuracy, ER against the variant's baselines):

- pretrained_debiased: the pre-trained model fine-tuned on the curate step's de-biased set;
- scratch_debiased: a model trained from scratch on that set;
- pretrained_one_tint: the paper's control (a class-balanced set in which the spurious
  attribute does not vary: "only women"): a class-balanced sample of the plain training split of
  the same size, every image tinted with one and the same colour;
- pretrained_balanced: a class-balanced sample of the *biased* reference of the same size,
  without counterfactual re-tints (the tint still predicts the label: a weaker control);
- pretrained_reference: fine-tuned on the full biased reference -- the `pretrained` arm of the
  interventions step, reused (same recipe), not trained again.

Then the size sweep: curated sets of each size of ``debiased.sizes`` (classes balanced, tint
independent of the label, ``curate.debiased.retints`` colours per original),
``debiased.resamples`` each. The sets are drawn by :mod:`askshift.data.debias` (shared with
the curate step). Every model is an independent job, spread as ``ASKSHIFT_FANOUT`` says
(:mod:`askshift.study.fanout`) with the serial run's results.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from askshift.data import debias, store
from askshift.methods import shifts
from askshift.methods.er_tables import er_table, pair_frame
from askshift.methods.metrics import accuracy_points
from askshift.study import fanout, layout
from askshift.study.config import scratch_model
from askshift.study.stage import Timer, set_threads
from askshift.study.arms import predict_frame, train_arm
from askshift.study.training import train_config

@dataclass(frozen=True)
class Job:
    """One model of the step: its name, arm, trial and training set."""

    name: str
    kind: str            # scratch | pretrained
    arm: str
    trial: int
    seed: int
    data: store.Dataset
    size: int | None = None   # sweep jobs: the curated set's size


def jobs(cfg, pair: dict, debiased: store.Dataset, reference_train: store.Dataset,
         plain_train: store.Dataset, colours) -> tuple[list[Job], list[dict]]:
    """The three arms per trial, then the size sweep; with each sweep set's statistics."""
    de, variant = cfg.debiased, cfg.debiased.variant
    k = len(colours)  # one colour per class
    out, sweep_sets = [], []
    for t in range(de.trials):
        rs = layout.run_seed(cfg.seed, "curated", variant, t)   # seed names kept: same numbers as before
        pick = debias.balanced_subset(reference_train.labels, len(debiased), np.random.default_rng(rs), k)
        one = debias.balanced_subset(plain_train.labels, len(debiased), np.random.default_rng([rs, 1]), k)
        out += [Job(f"pretrained_debiased-t{t}", "pretrained", "pretrained_debiased", t, rs, debiased),
                Job(f"scratch_debiased-t{t}", "scratch", "scratch_debiased", t, rs, debiased),
                Job(f"pretrained_one_tint-t{t}", "pretrained", "pretrained_one_tint", t, rs,
                    debias.build_tinted(plain_train, one, np.zeros(len(one), int), colours, cfg.curate.tint_strength)),
                Job(f"pretrained_balanced-t{t}", "pretrained", "pretrained_balanced", t, rs,
                    reference_train.select(pick))]
    strength, retints = cfg.curate.tint_strength, cfg.curate.debiased.retints
    for n in de.sizes:
        for r in range(de.resamples):
            rs = layout.run_seed(cfg.seed, "curated-sweep", variant, n, r)
            idx, tint = debias.sample_curated(plain_train.labels, n, k, retints, np.random.default_rng(rs), k)
            stats = debias.curated_stats(plain_train.labels[idx], tint, idx)
            sweep_sets.append({"size": n, "resample": r, "n_originals": stats["n_originals"],
                               "tint_only_accuracy": stats["tint_predicts_label"]["accuracy"],
                               "tint_label_nmi": stats["tint_predicts_label"]["nmi"]})
            out.append(Job(f"sweep-n{n}-r{r}", "pretrained", f"sweep_{n}", r, rs,
                           debias.build_tinted(plain_train, idx, tint, colours, strength), n))
    return out, sweep_sets


def evaluation_sets(pair: dict) -> dict[str, store.Dataset]:
    """The variant's reference test split and its in-support shifted set."""
    ref = store.load(layout.dataset_dir(pair["reference"]))
    return {pair["reference"]: ref.split("test"), pair["shifted"]: store.load(layout.dataset_dir(pair["shifted"]))}


@dataclass(frozen=True)
class Task:
    """One job with what its worker needs (:mod:`askshift.study.fanout`); the evaluation sets are
    read from the store by the worker itself."""

    cfg: Any
    job: Job
    pair: dict
    num_classes: int


def train_job(task: Task) -> pd.DataFrame:
    """Train one job's model (no per-epoch validation: tiny sets train for many epochs) and
    predict the evaluation sets."""
    cfg, job = task.cfg, task.job
    set_threads(cfg)   # the stage's settings, also in a worker process
    s = cfg.finetune if job.kind == "pretrained" else cfg.baseline
    epochs = layout.epochs_for(len(job.data), s.train.batch_size, s.train.epochs, cfg.debiased.min_steps)
    tcfg = train_config({**s.train, "epochs": epochs}, cfg.compute, job.seed, len(job.data))
    arch, arch_kwargs = scratch_model(cfg)
    model, _ = train_arm(job.kind, job.data, None, tcfg, arch=arch, arch_kwargs=arch_kwargs,
                         num_classes=task.num_classes, pretrained=layout.PRETRAINED_MODEL,
                         pretrained_arch=cfg.model.arch)
    print(f"{job.name}: {len(job.data)} images, {epochs} epochs", flush=True)
    return predict_frame(model, job.name, evaluation_sets(task.pair), cfg.evaluate.batch_size, cfg.compute.device)


def reused_arms(variant: str) -> pd.DataFrame:
    """The variant's baselines and full-reference fine-tunes, from the interventions step."""
    iv = pd.read_csv(layout.results("interventions") / "points.csv")
    iv = iv[(iv["variant"] == variant) & iv["arm"].isin(["baseline", "pretrained"])].copy()
    iv["arm"] = iv["arm"].replace({"pretrained": "pretrained_reference"})
    return iv


def run(cfg) -> tuple[dict[str, pd.DataFrame], dict]:
    """Tables ``arms``, ``sweep``, ``sweep_runs`` and ``points``, and the metrics."""
    timer = Timer()
    rob, variant = cfg.robustness, cfg.debiased.variant
    pair = next(p for p in layout.read_shift_index().values()
                if p["reference"] == layout.reference(variant) and p["kind"] == "in-support")
    ref = store.load(layout.dataset_dir(pair["reference"]))
    debiased = store.load(layout.dataset_dir(pair["debiased"]))
    plain = store.load(layout.dataset_dir(layout.reference("plain"))).split("train")
    num_classes = int(plain.labels.max()) + 1
    colours = shifts.class_colours(num_classes, cfg.seed)
    debias.check_colours(debiased, plain, colours, cfg.curate.tint_strength)  # the sampler tints like curation

    iv = reused_arms(variant)
    info = [iv.drop_duplicates("model")[["model", "arm", "trial"]]]
    points = [iv[["model", "dataset", "n", "accuracy", "balanced_accuracy", "worst_group_accuracy"]]]
    todo, sweep_sets = jobs(cfg, pair, debiased, ref.split("train"), plain, colours)
    done = fanout.run_all(train_job, [Task(cfg, job, pair, num_classes) for job in todo],
                          layout.CHECKPOINTS / "fanout" / "debiased")
    for job, predictions in zip(todo, done):
        points.append(accuracy_points(predictions, cfg.evaluate.min_group_size))
        info.append(pd.DataFrame([{"model": job.name, "arm": job.arm, "trial": job.trial,
                                   **({"size": job.size} if job.size is not None else {})}]))
    print(f"{len(todo)} models trained ({timer()} s)", flush=True)

    info_all = pd.concat(info, ignore_index=True)
    pts = pd.concat(points, ignore_index=True)
    pairs = pair_frame(pts, info_all, pair["reference"], pair["shifted"])
    table = er_table(pairs, scale=rob.scale, confidence=rob.confidence)
    arms, sweep, metrics, claims = summarise(table, n_debiased=len(debiased), n_reference=len(ref.split("train")))
    metrics = {"shift": pair["shifted"],
               "debiased_set": debias.curated_stats(debiased.labels, debiased.meta["tint"].to_numpy(),
                                                    debiased.meta["source_index"].to_numpy()),
               **metrics, "claims": claims}
    for r in pd.concat([arms, sweep]).itertuples():
        print(f"{r.arm:22s} n={int(r.size):5d}  acc {r.ref_acc:.4f}  shift acc {r.shift_acc:.4f}  "
              f"shift wga {r.shift_wga:.4f}  ER {r.er:+.4f} [{r.er_low:+.4f}, {r.er_high:+.4f}]")
    sweep_runs = pairs[pairs["arm"].str.startswith("sweep_")].merge(
        pd.DataFrame(sweep_sets).rename(columns={"resample": "trial"}), on=["size", "trial"])
    return {"arms": arms, "sweep": sweep, "sweep_runs": sweep_runs, "points": info_all.merge(pts, on="model")}, metrics


def summarise(table, *, n_debiased: int, n_reference: int):
    """Split an ER table (:func:`askshift.methods.er_tables.er_table`) of the debiased step into
    the arms and the size sweep (arms ``sweep_<n>``), each with its set size; returns
    ``(arms, sweep, metrics, claims)`` where ``claims`` are rows for the report's claims table:
    pre-trained on the de-biased set has ER > 0, on the full biased reference ER ~ 0."""
    t = table.copy()
    sweep_mask = t["arm"].str.startswith("sweep_")
    fixed = {"pretrained_debiased": n_debiased, "scratch_debiased": n_debiased, "pretrained_balanced": n_debiased,
             "pretrained_one_tint": n_debiased, "pretrained_reference": n_reference}
    t["size"] = [int(a.removeprefix("sweep_")) if a.startswith("sweep_") else fixed.get(a, 0) for a in t["arm"]]
    arms, sweep = t[~sweep_mask], t[sweep_mask].sort_values("size")
    metrics = {
        "fit_r2": float(t["r2"].iloc[0]), "n_baseline": int(t["n_baseline"].iloc[0]),
        "curated_arms": {r.arm: {"size": int(r.size), "ref_acc": r.ref_acc, "shift_acc": r.shift_acc,
                                 "shift_wga": r.shift_wga, "er": r.er, "er_low": r.er_low, "er_high": r.er_high,
                                 "wga_er": r.wga_er} for r in arms.itertuples()},
        "size_sweep": {str(int(r.size)): {"ref_acc": r.ref_acc, "shift_acc": r.shift_acc, "shift_wga": r.shift_wga,
                                          "er": r.er, "er_low": r.er_low, "er_high": r.er_high}
                       for r in sweep.itertuples()},
    }
    claims = []
    for arm, rule, text in (
            ("pretrained_debiased", "positive",
             "A pre-trained model fine-tuned on a small curated de-biased set is robust (ER > 0)"),
            ("pretrained_reference", "near_zero",
             "Fine-tuned on the full biased reference, the pre-trained model has ~0 ER")):
        rows = arms[arms["arm"] == arm]
        if len(rows):
            r = rows.iloc[0]
            claims.append({"claim": text, "paper": "CelebA, 64 curated images", "er": r.er, "low": r.er_low,
                           "high": r.er_high, "r2": r.r2, "n_baseline": int(r.n_baseline), "rule": rule,
                           "what": f"{arm} ({int(r['size'])} images), {int(r.n_trials)} trials averaged"})
    return arms, sweep, metrics, claims


def headline(metrics: dict) -> dict:
    """Each arm's ER with its interval, reference accuracy and shifted worst-group accuracy; the
    size sweep's ER and worst-group accuracy; the fit's r^2."""
    arm_keys, sweep_keys = ("ref_acc", "shift_wga", "er", "er_low", "er_high"), ("shift_wga", "er")
    return {"fit_r2": metrics["fit_r2"],
            "curated_arms": {a: {k: v[k] for k in arm_keys} for a, v in metrics["curated_arms"].items()},
            "size_sweep": {n: {k: v[k] for k in sweep_keys} for n, v in metrics["size_sweep"].items()}}
