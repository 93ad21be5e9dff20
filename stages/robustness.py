"""Stage `robustness`: effective robustness per shift and on each part of the split shifts,
with intervals and fit quality."""
import pandas as pd

from askshift.study import layout, robustness
from askshift.study.stage import run_stage, write_outputs

OUT = layout.results("robustness")
PLAIN = layout.reference("plain")


def main(cfg) -> None:
    ratios = pd.read_csv(layout.results("split") / "ratios.csv")
    index = layout.read_shift_index()   # the split shifts, and the plain variant's sets for the control check
    preds = layout.read_predictions(sorted({layout.shifted(s) for s in ratios["shift"].unique()}
                                           | {p["shifted"] for p in index.values() if p["reference"] == PLAIN}
                                           | {PLAIN}))
    tables, details = robustness.run(cfg, layout.read_accuracies(), preds, ratios)
    write_outputs({**{OUT / f"{name}.csv": t for name, t in tables.items()},
                   layout.metrics_file("robustness"): robustness.headline(details),
                   layout.details_file("robustness"): details})


if __name__ == "__main__":
    run_stage("robustness", main)
