"""dvc stage `download`: fetch every pinned source of data/sources.yaml into data/raw/.

    python stages/download.py                      # all sources
    python stages/download.py --only mnist         # one source (repeatable)
    python stages/download.py --force              # re-fetch even when up to date

Each source ends up in data/raw/<name>/ with exactly its listed payload files, verified against
their sha256; data/raw/MANIFEST.json lists name, kind, version, licence, files, hashes and sizes.
Re-running is cheap: a source whose folder already holds the pinned payload is not re-fetched.
Exit status 1 if any source failed; the messages say which, why, and what to do.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from askshift.data.fetch import MANIFEST_NAME, check_raw, clean_stale, fetch_source, write_manifest  # noqa: E402
from askshift.data.sources import SourceError, load_sources, select_sources  # noqa: E402


def _mb(n: int) -> str:
    return f"{n / 1e6:7.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", default="data/sources.yaml", help="the source table")
    parser.add_argument("--raw", default="data/raw", help="output folder")
    parser.add_argument("--only", action="append", metavar="NAME", help="fetch only this source (repeatable)")
    parser.add_argument("--force", action="store_true", help="re-fetch sources that are already up to date")
    parser.add_argument("--tries", type=int, default=4, help="attempts per URL download")
    args = parser.parse_args(argv)

    t_start = time.monotonic()
    try:
        sources = load_sources(args.sources)
        selected = select_sources(sources, args.only)
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    raw = Path(args.raw)
    for p in clean_stale(raw):
        print(f"removed leftover {p} of an interrupted run")

    results, errors = {}, []
    width = max(len(s.name) for s in selected)
    for i, source in enumerate(selected, 1):
        prefix = f"[{i:>2}/{len(selected)}] {source.name:<{width}}"
        try:
            r = fetch_source(source, raw, force=args.force, tries=args.tries)
        except SourceError as e:
            errors.append(e)
            print(f"{prefix}  FAILED  ({source.spec})", flush=True)
            continue
        results[source.name] = r
        print(f"{prefix}  {r.status:<10} {len(r.files):>3} files {_mb(r.bytes)}  {r.seconds:6.1f} s  "
              f"({source.spec})", flush=True)

    if errors:
        print(f"\n{len(errors)} of {len(selected)} sources failed:", file=sys.stderr)
        for e in errors:
            print(f"\n{e}", file=sys.stderr)
        print("\nMANIFEST.json not written; fix the sources above and run again "
              "(sources already fetched are kept and not downloaded again).", file=sys.stderr)
        return 1

    # The manifest describes every source of the table present in data/raw, so that
    # `--only` updates one entry and keeps the others.
    manifest, missing = [], []
    for source in sources:
        r = results.get(source.name) or check_raw(source, raw)
        if r is None:
            missing.append(source.name)
        else:
            manifest.append(r)
    doc = write_manifest(manifest, raw / MANIFEST_NAME)
    print(f"wrote {raw / MANIFEST_NAME}: {len(manifest)} sources, "
          f"{sum(len(r.files) for r in manifest)} files, {_mb(doc['bytes']).strip()} "
          f"in {time.monotonic() - t_start:.1f} s")
    if missing:
        print(f"not in {raw} yet (run without --only to fetch them): {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
