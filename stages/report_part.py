"""Stage `report_<part>`: one part's notebook executed with papermill and rendered to HTML,
from the outputs and params that stage declares. A part that raises fails the stage.
While working on a template: `python -m askshift report --only PART`."""
import sys

from askshift.report import parts
from askshift.study.declared import part_stage
from askshift.study.stage import run_stage


def main(cfg, part: str) -> None:
    from askshift.report.part import render_part

    print(render_part(part, cfg.to_dict()))


if __name__ == "__main__":
    part = sys.argv[1] if len(sys.argv) == 2 else ""
    if part not in parts.NAMES:
        sys.exit(f"error: usage: python -m stages.report_part PART, PART one of {', '.join(parts.NAMES)}")
    run_stage("report_part", main, instance=part, stage=part_stage(part))
