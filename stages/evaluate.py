"""Stage `evaluate`: predictions of every model on every dataset it should be judged on (its
reference test split and every shifted set of its variant), and the accuracy table."""
from askshift.study import evaluate, layout
from askshift.study.stage import run_stage, write_outputs

OUT = layout.results("evaluate")


def main(cfg) -> None:
    runs = evaluate.model_runs()
    predictions = evaluate.predictions(runs, cfg.evaluate.batch_size, cfg.compute.device)
    table = evaluate.accuracy_table(predictions, runs)
    write_outputs({OUT / "predictions.parquet": predictions, OUT / "accuracies.csv": table,
                   layout.metrics_file("evaluate"): evaluate.summary(table, len(runs), len(predictions))})


if __name__ == "__main__":
    run_stage("evaluate", main)
