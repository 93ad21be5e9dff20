"""``python -m askshift report``: render the report like the `report_<part>` and `report` stages,
or only some of its parts while working on a template (the other parts are kept), outside DVC."""
from __future__ import annotations

import argparse
import sys

from askshift.cli import CLIError, register
from askshift.report import build, parts
from askshift.study.params import ParamsError, load_params


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--only", action="append", choices=parts.NAMES,
                   help="render only this part (repeatable)")


@register("report", help="render reports/ (all parts, or --only PART)", configure=_configure)
def run_report(args) -> int:
    try:
        params = load_params(args.params)
    except ParamsError as e:
        raise CLIError(str(e)) from None
    try:
        print(build.build(params, only=args.only))
    except build.ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
