"""Stage `robustness`: effective robustness per shift and on each part of the split shifts,
with intervals and fit quality."""
from askshift.study import layout
from askshift.study.stage import run_stage, write_outputs

OUT = layout.results("robustness")


def main(cfg) -> None:
    import pandas as pd

    from askshift.study import robustness

    ratios = pd.read_csv(layout.results("split") / "ratios.csv")
    preds = layout.read_predictions(robustness.prediction_sets(ratios))
    tables, details = robustness.run(cfg, layout.read_accuracies(), preds, ratios)
    write_outputs({**{OUT / f"{name}.csv": t for name, t in tables.items()},
                   layout.metrics_file("robustness"): robustness.headline(details),
                   layout.details_file("robustness"): details})


if __name__ == "__main__":
    run_stage("robustness", main)
