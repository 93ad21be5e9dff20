"""Stage `split` (paper Sec. 5.2): density-ratio split of shifts into in- and out-of-support
parts, checked on the mixture shift, and ER on each part."""
import pandas as pd

from askshift.study import layout, split
from askshift.study.stage import run_stage, table, write_outputs

OUT = layout.results("split")


def main(cfg) -> None:
    acc = pd.read_csv(layout.results("evaluate") / "accuracies.csv")
    tables, metrics = split.run(cfg, acc)
    write_outputs({OUT / "ratios.csv": table(tables["ratios"], "%.6g"), OUT / "er.csv": tables["er"],
                   layout.metrics_file("split"): metrics})


if __name__ == "__main__":
    run_stage("split", main)
