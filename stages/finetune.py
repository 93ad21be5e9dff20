"""Stage `finetune`: the pre-trained model fine-tuned on each reference variant (FT, LP,
LP-FT; several copies), on the variant's reference training split or its de-biased set."""
from askshift.io import atomic_dir
from askshift.study import layout
from askshift.study.stage import run_stage, write_outputs


def main(cfg) -> None:
    from askshift.study import finetune

    with atomic_dir(layout.models_dir("finetune")) as out:   # all models or none
        index, selection = finetune.run(cfg, out)
        write_outputs({out / "index.json": index, out / "lr_selection.json": selection})


if __name__ == "__main__":
    run_stage("finetune", main)
