"""Stage `params`: validate the whole params.yaml (every section, every rule between keys)
before any other stage runs, and write each stage's declared values to results/params/.
The checks against this machine's timm and devices are the `machine` stage's (torch-free here)."""
from askshift.study.config import write_stage_params
from askshift.study.declared import STAGE_PARAMS
from askshift.study.stage import run_stage


def main() -> None:
    from askshift.study.params import load_params

    write_stage_params(load_params("params.yaml", machine=False), STAGE_PARAMS)
    print(f"params.yaml is valid; the params of {len(STAGE_PARAMS)} stages are in results/params/")


if __name__ == "__main__":
    run_stage("params", main, config=False)
