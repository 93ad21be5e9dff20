"""Stage `robustness`: effective robustness per shift, with intervals and fit quality."""
from __future__ import annotations

import json

import pandas as pd

from askshift import er_study, study
from askshift.params import load_params, main_guard
from askshift.stagekit import Timer, atomic_path, write_json

OUT = study.RESULTS / "robustness"


def main() -> None:
    params = load_params()
    timer = Timer()
    cfg = params["robustness"]
    shift_index = json.loads((study.DATASETS / "shifts.json").read_text())
    acc = pd.read_csv(study.RESULTS / "evaluate" / "accuracies.csv")
    all_er, all_points, all_lines, metrics = [], [], [], {}
    for name, pair in shift_index.items():
        points = er_study.pair_table(acc, f"{pair['reference']}", pair["shifted"], cfg["metric"])
        er, line, fit = er_study.shift_er(points, cfg["scale"], cfg["confidence"], cfg["n_boot"],
                                          study.run_seed(params["seed"], "bootstrap", name))
        for frame in (er, points, line):
            frame.insert(0, "shift", name)
            frame.insert(1, "kind", pair["kind"])
        all_er.append(er)
        all_points.append(points)
        all_lines.append(line)
        metrics[name] = {"kind": pair["kind"], **er_study.headline(er)}
        print(f"{name:18s} {pair['kind']:15s} ER mean {metrics[name]['er_mean']:+.4f}  "
              f"(fit r2 {fit.r2:.3f}, n {fit.n})", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    for fname, frames in (("er.csv", all_er), ("points.csv", all_points), ("lines.csv", all_lines)):
        with atomic_path(OUT / fname) as tmp:
            pd.concat(frames, ignore_index=True).to_csv(tmp, index=False, float_format="%.6f")
    write_json(OUT / "metrics.json", {"scale": cfg["scale"], "metric": cfg["metric"],
                                      "finetune_dataset": params["finetune"]["dataset"],
                                      "shifts": metrics})
    print(f"robustness done ({timer()} s)")


if __name__ == "__main__":
    main_guard(main)
