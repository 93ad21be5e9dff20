"""Stage `pretrain`: the upstream model, trained on the curated corpus or loaded from timm."""
from askshift.study import layout
from askshift.study.stage import run_stage, write_outputs


def main(cfg) -> dict:
    from askshift.study import pretrain

    details, timings = pretrain.run(cfg)
    write_outputs({layout.metrics_file("pretrain"): pretrain.headline(details),
                   layout.details_file("pretrain"): details})
    print(f"pretrain: {details}, {timings}")
    return timings


if __name__ == "__main__":
    run_stage("pretrain", main)
