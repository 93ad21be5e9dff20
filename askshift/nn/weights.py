"""Weight specs, read without torch (the params stage checks them):
``scratch | pipeline:<path> | timm:<name.tag>[@<local file>] | file:<path>``, and the local file
a spec reads, pinned by its sha256 the way data/sources.yaml pins each download."""
from __future__ import annotations

import hashlib
from pathlib import Path

from askshift.io import file_sha256

WEIGHT_KINDS = ("scratch", "pipeline", "timm", "file")


def parse_weights(spec: str) -> tuple[str, str, str | None]:
    """Split a weight spec into ``(kind, name_or_path, local_file)``.

    >>> parse_weights("scratch")
    ('scratch', '', None)
    >>> parse_weights("timm:resnet18.a1_in1k@/ckpt/r18.safetensors")
    ('timm', 'resnet18.a1_in1k', '/ckpt/r18.safetensors')
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"weights must be a non-empty string, got {spec!r}; valid forms: "
                         "scratch | pipeline:<path> | timm:<name.tag>[@<local file>] | file:<path>")
    if spec == "scratch":
        return "scratch", "", None
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in WEIGHT_KINDS or kind == "scratch" or not rest:
        raise ValueError(f"weights={spec!r} is not valid; valid forms: scratch | pipeline:<path> | "
                         "timm:<name.tag>[@<local file>] | file:<path>")
    if kind == "timm":
        name, at, local = rest.partition("@")
        if at and not local:
            raise ValueError(f"weights={spec!r}: nothing after '@' (expected a local file path)")
        return kind, name, (local or None)
    return kind, rest, None


def local_file(spec: str) -> str | None:
    """The file or folder on disk that ``spec`` loads (``timm:<name>@<path>``, ``file:<path>``),
    None when it loads from timm's hub or is ``scratch``. (``pipeline:<path>`` is a model this
    pipeline made, an output of a stage: DVC tracks it.)"""
    kind, name, local = parse_weights(spec)
    return local if kind == "timm" else name if kind == "file" else None


def content_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (what `sha256sum` prints); of a folder (a timm hub-style
    checkpoint folder): sha256 of the lines ``<sha256>  <relative path>`` of its files, sorted
    by path (what `find . -type f | LC_ALL=C sort | xargs sha256sum` prints there, hashed again)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    rel = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())  # byte order, as LC_ALL=C sort
    lines = "".join(f"{file_sha256(path / r)}  ./{r}\n" for r in rel)
    return hashlib.sha256(lines.encode()).hexdigest()
