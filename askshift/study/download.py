"""Step `download`: fetch every pinned source of data/sources.yaml into data/raw/.

Each source ends up in data/raw/<name>/ with exactly its listed payload files, verified against
their sha256; data/raw/MANIFEST.json lists name, kind, version, licence, files, hashes and sizes.
Re-running is cheap: a source whose folder already holds the pinned payload is not re-fetched.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from askshift.data.fetch import MANIFEST_NAME, check_raw, clean_stale, fetch_source, write_manifest
from askshift.data.sources import Source, SourceError, load_sources, select_sources
from askshift.data.worlds import WORLDS
from askshift.study.stage import InputError, StageFailed


def _mb(n: int) -> str:
    return f"{n / 1e6:7.1f} MB"


def world_sources(sources: list[Source], world: str, local: dict[str, str] | None = None,
                  origin: str = "the source table") -> list[Source]:
    """The sources of one world, each named in ``local`` read from that path on disk instead
    (same payload files and hashes: a local copy of the official file passes, another does not)."""
    for s in sources:
        if s.world not in WORLDS:
            raise InputError(f"{origin}: source {s.name!r}: key 'world': unknown world {s.world!r}; "
                             f"valid: {', '.join(WORLDS)}")
    mine = [s for s in sources if s.world == world]
    if not mine:
        raise InputError(f"{origin}: no source has world: {world} (world = {world!r} in params.yaml)")
    local = dict(local or {})
    names = [s.name for s in mine]
    for name, path in local.items():
        if name not in names:
            raise InputError(f"download.local.{name}: no source of the {world} world is called {name!r}; "
                             f"valid: {', '.join(names)}")
        if not Path(path).exists():
            raise InputError(f"download.local.{name} = {path!r}: no such file or folder (relative paths start "
                             "at the repository root)")
    return [dataclasses.replace(s, kind="local", path=str(local[s.name]), url=None, package=None, version=None,
                                archive=s.container) if s.name in local else s for s in mine]


def run(sources_file: Path, raw: Path, only: list[str] | None = None, force: bool = False, tries: int = 4,
        world: str = "digits", local: dict[str, str] | None = None) -> str:
    """Fetch the sources of ``world`` (all, or those named in ``only``; those named in ``local``
    from a path on disk), then write the manifest of every such source present in ``raw``.
    Returns a one-line summary; raises :class:`StageFailed` naming every source that failed, why
    and what to do (sources already fetched are kept)."""
    t_start = time.monotonic()
    try:
        sources = world_sources(load_sources(sources_file), world, local, str(sources_file))
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
