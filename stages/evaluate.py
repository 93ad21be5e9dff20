"""Stage `evaluate` (once per models folder: baseline, finetune): predictions of every model on
every dataset it is judged on (its reference test split and every shifted set of its variant),
and the accuracy table. A change of the fine-tunes re-evaluates only them."""
import sys

from askshift.study import layout
from askshift.study.stage import run_stage, write_outputs


def main(cfg, kind: str) -> None:
    from askshift.study import evaluate

    runs = evaluate.model_runs(kind)
    predictions = evaluate.predictions(runs, cfg.evaluate.batch_size, cfg.compute.device)
    table = evaluate.accuracy_table(predictions, runs, cfg.evaluate.min_group_size)
    summary, out = evaluate.summary(table, len(runs), len(predictions)), layout.evaluation(kind)
    write_outputs({out / "predictions.parquet": predictions, out / "accuracies.csv": table,
                   out / "metrics.json": evaluate.headline(summary), out / "details.json": summary})


if __name__ == "__main__":
    run_stage("evaluate", main, instance=sys.argv[1])
