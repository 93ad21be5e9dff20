"""Stage `machine`: the params that depend on this machine checked with timm and torch (the
architectures and their kwargs build, the timm weights tag exists, the device is here), before any
stage that uses torch runs: each depends on this stage's output. Its content does not depend
on the values checked, so passing the check re-runs nothing downstream."""
from askshift.study import layout
from askshift.study.stage import run_stage, write_outputs


def main(cfg) -> None:
    from askshift.study.params import check_machine

    check_machine(cfg.to_dict())
    write_outputs({layout.MACHINE_CHECKED: {"passed": ["model.arch", "model.kwargs", "baseline.model", "pretrain.weights",
                                                       "compute.device"]}})
    print("model, baseline.model, pretrain.weights and compute.device are valid on this machine")


if __name__ == "__main__":
    run_stage("machine", main)
