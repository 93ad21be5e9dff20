"""``python -m askshift download``: fetch pinned sources into data/raw/ like the `download`
stage, but one source at a time (``--only``), again (``--force``), or from another table."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from askshift.cli import CLIError, register
from askshift.study import download, layout
from askshift.study.stage import InputError, StageFailed


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sources", default=str(layout.SOURCES), help="the source table")
    p.add_argument("--raw", default=str(layout.RAW), help="output folder")
    p.add_argument("--only", action="append", metavar="NAME", help="fetch only this source (repeatable)")
    p.add_argument("--force", action="store_true", help="re-fetch sources that are already up to date")
    p.add_argument("--tries", type=int, default=4, help="attempts per URL download")
    p.add_argument("--world", default="digits", help="fetch the sources of this world (default digits)")


@register("download", help="fetch pinned sources into data/raw (like the download stage)", configure=_configure)
def run_download(args) -> int:
    try:
        print(download.run(Path(args.sources), Path(args.raw), args.only, args.force, args.tries, world=args.world))
    except InputError as e:
        raise CLIError(str(e)) from None
    except StageFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
