"""Stage `theory` (paper Sec. 4): the logistic-regression simulation of Theorem 4.1, with two
negative controls that must break it."""
from askshift.study import layout
from askshift.study.stage import run_stage, table, write_outputs

OUT = layout.results("theory")


def main(cfg) -> None:
    from askshift.study import theory

    tables, details = theory.run(cfg)
    write_outputs({**{OUT / f"{name}.csv": table(t, "%.6g") for name, t in tables.items()},
                   layout.metrics_file("theory"): theory.headline(details),
                   layout.details_file("theory"): details})


if __name__ == "__main__":
    run_stage("theory", main)
