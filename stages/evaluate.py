"""Stage `evaluate`: predictions of every model on every dataset it should be judged on (its
reference test split and every shifted set of its variant), and the accuracy table."""
from __future__ import annotations

import json

import pandas as pd

from askshift import evaluation, models, study, train
from askshift.data import store
from askshift.params import load_params, main_guard
from askshift.stagekit import Timer, atomic_path, write_json

OUT = study.RESULTS / "evaluate"


def main() -> None:
    params = load_params()
    timer = Timer()
    shift_index = json.loads((study.DATASETS / "shifts.json").read_text())
    runs = pd.DataFrame([*json.loads((study.MODELS / "baseline" / "index.json").read_text()),
                         *json.loads((study.MODELS / "finetune" / "index.json").read_text())])
    datasets: dict[str, store.Dataset] = {}
    frames = []
    for run in runs.itertuples():
        model = models.load_model(run.path)
        for name in study.eval_sets(shift_index, run.variant):
            if name not in datasets:
                ds = store.load(study.DATASETS / name)
                datasets[name] = ds.split("test") if name.startswith("ref_") else ds
            ds = datasets[name]
            logits = train.predict(model, ds.images, batch_size=params["evaluate"]["batch_size"],
                                   device=params["compute"]["device"])
            frames.append(evaluation.prediction_frame(run.name, name, ds.meta, logits))
        print(f"evaluate {run.name} ({timer()} s)", flush=True)
    predictions = pd.concat(frames, ignore_index=True)
    OUT.mkdir(parents=True, exist_ok=True)
    with atomic_path(OUT / "predictions.parquet") as tmp:
        predictions.to_parquet(tmp, index=False)
    table = evaluation.accuracy_table(predictions, runs)
    with atomic_path(OUT / "accuracies.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    ref = table[table["dataset"].str.startswith("ref_")]
    summary = {f"{v}/{role}_ref_acc": float(g["accuracy"].mean())
               for (v, role), g in ref.groupby(["variant", "role"])}
    summary.update(n_models=int(len(runs)), n_predictions=int(len(predictions)), wall_seconds=timer())
    write_json(OUT / "metrics.json", summary)


if __name__ == "__main__":
    main_guard(main)
