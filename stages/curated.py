"""Stage `curated` (paper Sec. 7): fine-tuning on a small, non-diverse, de-biased set.

Arms (`curated.trials` seeds each), all judged on the variant's reference test split and its
shifted set (accuracy, worst-group accuracy, ER against the variant's baselines):
- pretrained_debiased: the pre-trained model fine-tuned on the curate stage's de-biased set;
- scratch_debiased: a model trained from scratch on that set;
- pretrained_balanced: the pre-trained model fine-tuned on a class-balanced sample of the
  biased reference of the same size, without counterfactual re-tints (the control);
- pretrained_reference: fine-tuned on the full biased reference -- the `pretrained` arm of the
  interventions stage, reused (same recipe), not trained again.
Then the size sweep: curated sets of each size of `curated.sizes` (classes balanced, tint
independent of the label, `curate.debiased.retints` colours per original), `curated.resamples` each.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from askshift import shifts, study
from askshift.analyses import common
from askshift.analyses import curated as CU
from askshift.data import debias, store
from askshift.params import load_params, main_guard
from askshift.stagekit import Timer, atomic_path, write_json

OUT = study.RESULTS / "curated"
PRETRAINED = study.MODELS / "pretrain" / "model.pt"
NUM_CLASSES = 10


def main() -> None:
    params = load_params()
    timer = Timer()
    cfg, rob = params["curated"], params["robustness"]
    device, bs, seed = params["compute"]["device"], params["evaluate"]["batch_size"], params["seed"]
    variant = cfg["variant"]
    pair = next(p for p in json.loads((study.DATASETS / "shifts.json").read_text()).values()
                if p["reference"] == f"ref_{variant}" and p["kind"] == "in-support")
    ref = store.load(study.DATASETS / pair["reference"])
    eval_sets = {pair["reference"]: ref.split("test"), pair["shifted"]: store.load(study.DATASETS / pair["shifted"])}
    debiased = store.load(study.DATASETS / pair["debiased"])
    plain = store.load(study.DATASETS / "ref_plain").split("train")
    colours = shifts.class_colours(NUM_CLASSES, seed)
    strength, retints = params["curate"]["tint_strength"], params["curate"]["debiased"]["retints"]
    debias.check_colours(debiased, plain, colours, strength)  # the sampler tints exactly like curation

    # the variant's baselines and the full-reference fine-tunes, from the interventions stage
    iv = pd.read_csv(study.RESULTS / "interventions" / "points.csv")
    iv = iv[(iv["variant"] == variant) & iv["arm"].isin(["baseline", "pretrained"])].copy()
    iv["arm"] = iv["arm"].replace({"pretrained": "pretrained_reference"})
    info = [iv.drop_duplicates("model")[["model", "arm", "trial"]]]
    points = [iv[["model", "dataset", "n", "accuracy", "balanced_accuracy", "worst_group_accuracy"]]]

    def run(name, kind, data, arm, trial, run_seed, extra=None):
        s = params["finetune"] if kind == "pretrained" else params["baseline"]
        epochs = study.epochs_for(len(data), s["train"]["batch_size"], s["train"]["epochs"], cfg["min_steps"])
        tcfg = study.train_config({**s["train"], "epochs": epochs}, params["compute"], run_seed)
        # no per-epoch validation: tiny sets train for many epochs; every model is evaluated after
        model, _ = common.train_arm(kind, data, None, tcfg, arch=params["model"]["arch"],
                                    arch_kwargs=params["model"]["kwargs"], num_classes=NUM_CLASSES,
                                    pretrained=str(PRETRAINED))
        pred = common.predict_frame(model, name, eval_sets, bs, device)
        points.append(common.accuracy_points(pred))
        info.append(pd.DataFrame([{"model": name, "arm": arm, "trial": trial, **(extra or {})}]))
        print(f"{name}: {len(data)} images, {epochs} epochs ({timer()} s)", flush=True)

    balanced = ref.split("train")
    for t in range(cfg["trials"]):
        rs = study.run_seed(seed, "curated", variant, t)
        run(f"pretrained_debiased-t{t}", "pretrained", debiased, "pretrained_debiased", t, rs)
        run(f"scratch_debiased-t{t}", "scratch", debiased, "scratch_debiased", t, rs)
        pick = debias.balanced_subset(balanced.labels, len(debiased), np.random.default_rng(rs), NUM_CLASSES)
        run(f"pretrained_balanced-t{t}", "pretrained", balanced.select(pick), "pretrained_balanced", t, rs)

    sweep_sets = []
    for n in cfg["sizes"]:
        for r in range(cfg["resamples"]):
            rs = study.run_seed(seed, "curated-sweep", variant, n, r)
            idx, tint = debias.sample_curated(plain.labels, n, NUM_CLASSES, retints, np.random.default_rng(rs),
                                          NUM_CLASSES)
            data = debias.build_tinted(plain, idx, tint, colours, strength)
            stats = debias.curated_stats(data.labels, tint, idx)
            sweep_sets.append({"size": n, "resample": r, "n_originals": stats["n_originals"],
                               "tint_only_accuracy": stats["tint_predicts_label"]["accuracy"],
                               "tint_label_nmi": stats["tint_predicts_label"]["nmi"]})
            run(f"sweep-n{n}-r{r}", "pretrained", data, f"sweep_{n}", r, rs, {"size": n})

    info_all = pd.concat(info, ignore_index=True)
    pts = pd.concat(points, ignore_index=True)
    pairs = common.pair_frame(pts, info_all, pair["reference"], pair["shifted"])
    table = common.er_table(pairs, scale=rob["scale"], confidence=rob["confidence"])
    arms, sweep, metrics, claims = CU.summarise(table, n_debiased=len(debiased), n_reference=len(ref.split("train")))
    metrics = {"shift": pair["shifted"],
               "debiased_set": debias.curated_stats(debiased.labels, debiased.meta["tint"].to_numpy(),
                                                debiased.meta["mnist_index"].to_numpy()), **metrics}
    metrics.update(claims=claims, wall_seconds=timer())
    OUT.mkdir(parents=True, exist_ok=True)
    for fname, frame in (("arms.csv", arms), ("sweep.csv", sweep),
                         ("sweep_runs.csv", pairs[pairs["arm"].str.startswith("sweep_")].merge(
                             pd.DataFrame(sweep_sets).rename(columns={"resample": "trial"}), on=["size", "trial"])),
                         ("points.csv", info_all.merge(pts, on="model"))):
        with atomic_path(OUT / fname) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6f")
    write_json(OUT / "metrics.json", common.json_clean(metrics))
    for r in pd.concat([arms, sweep]).itertuples():
        print(f"{r.arm:22s} n={int(r.size):5d}  acc {r.ref_acc:.4f}  shift acc {r.shift_acc:.4f}  "
              f"shift wga {r.shift_wga:.4f}  ER {r.er:+.4f} [{r.er_low:+.4f}, {r.er_high:+.4f}]")
    print(f"curated done ({timer()} s)")


if __name__ == "__main__":
    main_guard(main)
