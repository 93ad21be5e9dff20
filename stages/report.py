"""Stage `report`: every part's notebook executed with papermill and rendered to HTML, the
claims table and provenance on reports/index.html. A part that raises fails the stage.
One part while working on its template: `python -m askshift report --only PART`."""
from askshift.report import build
from askshift.study.stage import run_stage


def main(cfg) -> None:
    print(build.build(cfg.to_dict()))


if __name__ == "__main__":
    run_stage("report", main)
