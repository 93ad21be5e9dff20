"""Stage `interventions` (paper Sec. 6): pre-training and bias interventions are complementary.

Per reference variant with a spurious attribute (default: spurious_tint), `trials` seeds of four
arms -- scratch, scratch+DFR, pre-trained (FT), pre-trained+DFR -- and, with
`interventions.reweight`, group-balanced re-weighting during training (scratch_rw,
pretrained_rw). DFR is fitted on the reference validation split (held out from training, with
group labels). Every model and the variant's baselines are evaluated on the reference test
split, on each shifted set of the variant, and on that set made out-of-support on top
(`interventions.compose`: flip by default; the paper's CIFAR-10 appendix uses tint + pad). Then: ER and
worst-group accuracy per arm with intervals, and the corrected-examples overlaps.
"""
from __future__ import annotations

import json

import pandas as pd

from askshift import models, study
from askshift.analyses import bias, common
from askshift.data import store
from askshift.params import load_params, main_guard
from askshift.stagekit import Timer, atomic_path, write_json

OUT = study.RESULTS / "interventions"
MODELS = study.MODELS / "interventions"
PRETRAINED = study.MODELS / "pretrain" / "model.pt"


def main() -> None:
    params = load_params()
    timer = Timer()
    cfg, rob = params["interventions"], params["robustness"]
    device, bs = params["compute"]["device"], params["evaluate"]["batch_size"]
    shift_index = json.loads((study.DATASETS / "shifts.json").read_text())
    baseline_index = json.loads((study.MODELS / "baseline" / "index.json").read_text())
    all_info, all_preds, dfr_info, er_rows, counts, overlaps = [], [], {}, [], [], []
    metrics: dict = {"arms": {}, "corrected": {}}
    claims: list[dict] = []
    all_models: dict = {}

    for variant in cfg["variants"]:
        ref_name = f"ref_{variant}"
        ref = store.load(study.DATASETS / ref_name)
        tr, heldout = ref.split("train"), ref.split("val")
        eval_sets = {ref_name: ref.split("test")}
        shifts = {}
        for name, pair in shift_index.items():
            if pair["reference"] == ref_name:
                ds = store.load(study.DATASETS / pair["shifted"])
                eval_sets[pair["shifted"]] = ds
                shifts[name] = pair["shifted"]
                if cfg["compose"] != "none":
                    eval_sets[f"{pair['shifted']}+{cfg['compose']}"] = bias.compose_shift(
                        ds, cfg["compose"], pad_pixels=params["curate"]["pad"]["pixels"],
                        pad_value=params["curate"]["pad"]["value"])
                    shifts[f"{name}+{cfg['compose']}"] = f"{pair['shifted']}+{cfg['compose']}"
        num_classes = int(ref.meta["label"].max()) + 1

        # the variant's baselines (from-scratch models spanning accuracies): the ER line
        base_rows = [r for r in baseline_index if r["variant"] == variant]
        base_info = pd.DataFrame([{"model": r["name"], "variant": variant, "arm": "baseline", "kind": "scratch",
                                   "trial": i, "seed": -1} for i, r in enumerate(base_rows)])
        base_preds = pd.concat([common.predict_frame(models.load_model(r["path"]), r["name"], eval_sets, bs, device)
                                for r in base_rows], ignore_index=True)

        def make_cfg(kind, trial, variant=variant):
            seed = study.run_seed(params["seed"], "interventions", variant, kind, trial)
            if kind == "scratch":
                return study.train_config(params["baseline"]["train"], params["compute"], seed)
            f = params["finetune"]
            epochs = study.epochs_for(len(tr), f["train"]["batch_size"], f["train"]["epochs"], f["min_steps"])
            return study.train_config({**f["train"], "epochs": epochs}, params["compute"], seed)

        trained, info, preds, dinfo = bias.run_arms(
            tr, heldout, eval_sets, trials=cfg["trials"], reweight=cfg["reweight"], make_cfg=make_cfg,
            arch=params["model"]["arch"], arch_kwargs=params["model"]["kwargs"], num_classes=num_classes,
            pretrained=str(PRETRAINED), dfr_kwargs={"Cs": cfg["dfr"]["Cs"], "val_fraction": cfg["dfr"]["val_fraction"]},
            batch_size=bs, device=device, prefix=f"{variant}/", log=lambda s: print(f"{s} ({timer()} s)", flush=True))
        all_models.update(trained)
        dfr_info.update(dinfo)
        info.insert(1, "variant", variant)
        info_v = pd.concat([base_info, info], ignore_index=True)
        preds_v = pd.concat([base_preds, preds], ignore_index=True)
        all_info.append(info_v)
        all_preds.append(preds_v)

        er, c, o, m = bias.analyse(preds_v, info_v, ref_name, shifts, minority=bias.minority_groups(tr.groups),
                                   scale=rob["scale"], confidence=rob["confidence"], threshold=cfg["threshold"])
        for frame in (er, c, o):
            frame.insert(0, "variant", variant)
        er_rows.append(er)
        counts.append(c)
        overlaps.append(o)
        metrics["arms"][variant] = m["arms"]
        metrics["corrected"][variant] = m["corrected"]
        in_shift = next(s for s, d in shifts.items() if "+" not in s)
        composed = f"{in_shift}+{cfg['compose']}" if cfg["compose"] != "none" else None
        claims += bias.claims(m["arms"], in_shift, composed, what=f" ({variant}, {cfg['trials']} trials)")
        for shift in shifts:
            e = er[er["shift"] == shift]
            k = m["corrected"].get(shift, {})
            print(f"{variant} / {shift}: ER " + ", ".join(f"{r.arm} {r.er:+.4f}" for r in e.itertuples())
                  + f" | corrected by pretrained {k.get('pretrained')}, by scratch_dfr {k.get('scratch_dfr')}, "
                    f"both {k.get('both')} (chance {k.get('expected_both', float('nan')):.1f})", flush=True)

    info_all = pd.concat(all_info, ignore_index=True)
    preds_all = pd.concat(all_preds, ignore_index=True)
    points = info_all.merge(common.accuracy_points(preds_all), on="model")
    OUT.mkdir(parents=True, exist_ok=True)
    with atomic_path(OUT / "predictions.parquet") as tmp:
        preds_all.to_parquet(tmp, index=False)
    for fname, frame in (("points.csv", points), ("er.csv", pd.concat(er_rows, ignore_index=True)),
                         ("corrected.csv", pd.concat(counts, ignore_index=True)),
                         ("overlap.csv", pd.concat(overlaps, ignore_index=True))):
        with atomic_path(OUT / fname) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6f")
    with store.atomic_dir(MODELS) as tmp:  # all models or none
        index = []
        for r in info_all[info_all["arm"] != "baseline"].to_dict("records"):
            fname = f"{r['model'].replace('/', '__')}.pt"
            models.save_model(all_models[r["model"]], tmp / fname)
            index.append({**r, "path": str(MODELS / fname), "dfr": dfr_info.get(r["model"])})
        write_json(tmp / "index.json", common.json_clean(index))
    metrics["dfr"] = {"max_fold_error": max(d["fold_error"] for d in dfr_info.values()),
                      "all_converged": all(d["converged"] for d in dfr_info.values())}
    metrics["claims"] = claims
    metrics["wall_seconds"] = timer()
    write_json(OUT / "metrics.json", common.json_clean(metrics))
    print(f"interventions done ({timer()} s)")


if __name__ == "__main__":
    main_guard(main)
