"""Stage `robustness`: effective robustness per shift, with intervals and fit quality."""
import pandas as pd

from askshift.study import layout, robustness
from askshift.study.stage import run_stage, write_outputs

OUT = layout.results("robustness")


def main(cfg) -> None:
    acc = pd.read_csv(layout.results("evaluate") / "accuracies.csv")
    tables, metrics = robustness.run(cfg, acc)
    write_outputs({**{OUT / f"{name}.csv": t for name, t in tables.items()}, layout.metrics_file("robustness"): metrics})


if __name__ == "__main__":
    run_stage("robustness", main)
