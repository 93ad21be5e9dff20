"""Stage `report`: reports/index.html (claims table, links to the parts, provenance) from the
parts that the `report_<part>` stages rendered. All params: the provenance lists them."""
from askshift.study.stage import run_stage


def main(cfg) -> None:
    from askshift.report import build

    print(build.build_index(cfg.to_dict()))


if __name__ == "__main__":
    run_stage("report", main)
