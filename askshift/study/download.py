"""Step `download`: fetch every pinned source of data/sources.yaml into data/raw/.

Each source ends up in data/raw/<name>/ with exactly its listed payload files, verified against
their sha256; data/raw/MANIFEST.json lists name, kind, version, licence, files, hashes and sizes.
Re-running is cheap: a source whose folder already holds the pinned payload is not re-fetched.
"""
from __future__ import annotations

import time
from pathlib import Path

from askshift.data.fetch import MANIFEST_NAME, check_raw, clean_stale, fetch_source, write_manifest
from askshift.data.sources import SourceError, load_sources, select_sources
from askshift.study.stage import InputError, StageFailed


def _mb(n: int) -> str:
    return f"{n / 1e6:7.1f} MB"


def run(sources_file: Path, raw: Path, only: list[str] | None = None, force: bool = False, tries: int = 4) -> str:
    """Fetch the sources (all, or those named in ``only``), then write the manifest of every
    source present in ``raw``. Returns a one-line summary; raises :class:`StageFailed` naming
    every source that failed, why and what to do (sources already fetched are kept)."""
    t_start = time.monotonic()
    try:
        sources = load_sources(sources_file)
        selected = select_sources(sources, only)
    except SourceError as e:
        raise InputError(str(e)) from None
    raw = Path(raw)
    for p in clean_stale(raw):
        print(f"removed leftover {p} of an interrupted run")
    results, errors = {}, []
    width = max(len(s.name) for s in selected)
    for i, source in enumerate(selected, 1):
        prefix = f"[{i:>2}/{len(selected)}] {source.name:<{width}}"
        try:
            r = fetch_source(source, raw, force=force, tries=tries)
        except SourceError as e:
            errors.append(e)
            print(f"{prefix}  FAILED  ({source.spec})", flush=True)
            continue
        results[source.name] = r
        print(f"{prefix}  {r.status:<10} {len(r.files):>3} files {_mb(r.bytes)}  {r.seconds:6.1f} s  "
              f"({source.spec})", flush=True)
    if errors:
        raise StageFailed(f"{len(errors)} of {len(selected)} sources failed:\n\n" + "\n\n".join(map(str, errors))
                          + "\n\nMANIFEST.json not written; fix the sources above and run again (sources "
                            "already fetched are kept and not downloaded again).")
    # the manifest describes every source of the table present in data/raw, so that `only`
    # updates one entry and keeps the others
    manifest, missing = [], []
    for source in sources:
        r = results.get(source.name) or check_raw(source, raw)
        if r is None:
            missing.append(source.name)
        else:
            manifest.append(r)
    doc = write_manifest(manifest, raw / MANIFEST_NAME)
    line = (f"wrote {raw / MANIFEST_NAME}: {len(manifest)} sources, {sum(len(r.files) for r in manifest)} files, "
            f"{_mb(doc['bytes']).strip()} in {time.monotonic() - t_start:.1f} s")
    if missing:
        line += f"\nnot in {raw} yet (run without --only to fetch them): {', '.join(missing)}"
    return line
