"""Stage `baseline`: from-scratch models per reference variant whose accuracies span a range:
snapshots of one full run, and runs on random subsets of the training data."""
from askshift.io import atomic_dir
from askshift.study import layout
from askshift.study.stage import run_stage, write_outputs


def main(cfg) -> None:
    from askshift.study import baseline

    with atomic_dir(layout.models_dir("baseline")) as out:   # all models or none
        index = baseline.run(cfg, out)
        write_outputs({out / "index.json": index})


if __name__ == "__main__":
    run_stage("baseline", main)
