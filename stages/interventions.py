"""Stage `interventions` (paper Sec. 6): scratch and pre-trained arms, each + DFR and +
group-balanced re-weighting, on a biased reference; ER, worst-group accuracy, corrected examples."""
from askshift.io import atomic_dir
from askshift.study import layout
from askshift.study.stage import run_stage, write_outputs

OUT = layout.results("interventions")


def main(cfg) -> None:
    from askshift.study import interventions

    with atomic_dir(layout.models_dir("interventions")) as models:   # all models or none
        tables, details = interventions.run(cfg, models)
    write_outputs({OUT / "predictions.parquet": tables.pop("predictions"),
                   **{OUT / f"{name}.csv": t for name, t in tables.items()},
                   layout.metrics_file("interventions"): interventions.headline(details),
                   layout.details_file("interventions"): details})


if __name__ == "__main__":
    run_stage("interventions", main)
