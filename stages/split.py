"""Stage `split` (paper Sec. 5.2): density-ratio split of shifts into in- and out-of-support
parts, checked on the mixture shift (the ER of each part is the robustness stage's)."""
from askshift.study import layout
from askshift.study.stage import run_stage, table, write_outputs


def main(cfg) -> None:
    from askshift.study import split

    ratios, details = split.run(cfg)
    write_outputs({layout.results("split") / "ratios.csv": table(ratios, "%.6g"),
                   layout.metrics_file("split"): split.headline(details), layout.details_file("split"): details})


if __name__ == "__main__":
    run_stage("split", main)
