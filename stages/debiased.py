"""Stage `debiased` (paper Sec. 7): the pre-trained model fine-tuned on a small curated,
de-biased set against the full biased reference, a class-balanced control and training from
scratch; then a sweep of the curated set's size."""
from askshift.study import layout
from askshift.study.stage import run_stage, write_outputs

OUT = layout.results("debiased")


def main(cfg) -> None:
    from askshift.study import debiased

    tables, details = debiased.run(cfg)
    write_outputs({**{OUT / f"{name}.csv": t for name, t in tables.items()},
                   layout.metrics_file("debiased"): debiased.headline(details),
                   layout.details_file("debiased"): details})


if __name__ == "__main__":
    run_stage("debiased", main)
