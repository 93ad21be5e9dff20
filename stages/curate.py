"""Stage `curate`: every dataset of the world (reference splits, shift pairs, de-biased sets,
pre-training corpus) from data/raw into data/curated, with image grids and statistics."""
from askshift.study import layout
from askshift.study.stage import run_stage, write_outputs


def main(cfg) -> None:
    from askshift.study import curate

    datasets = curate.build(cfg)
    curate.save(datasets, cfg)
    write_outputs({layout.CURATION_SUMMARY: curate.statistics(datasets)})


if __name__ == "__main__":
    run_stage("curate", main)
