"""Validation of the source table: every error names the source and the key and lists valid values."""
from __future__ import annotations

from pathlib import Path

import pytest

from askshift.data.sources import KINDS, SourceError, load_sources, parse_sources, select_sources

ROOT = Path(__file__).resolve().parents[1]
SHA = "a" * 64


def entry(**over):
    e = {"name": "demo", "kind": "npm", "package": "demo", "version": "1.0.0", "licence": "MIT",
         "files": [{"path": "package/data/x.bin", "sha256": SHA}]}
    e.update(over)
    return {k: v for k, v in e.items() if v is not None}


def error_of(*entries, **kw) -> str:
    with pytest.raises(SourceError) as e:
        parse_sources({"sources": list(entries)}, origin="t.yaml", **kw)
    return str(e.value)


def test_valid_entries_of_every_kind():
    sources = parse_sources({"sources": [
        entry(),
        entry(name="w", kind="pypi", package="w", version="0.4", files=[{"path": "w/d.gz", "sha256": SHA}]),
        entry(name="d", kind="deb", package="fonts-x", version="1:1.0-1", files=[{"path": "./usr/x.ttf", "sha256": SHA}]),
        entry(name="u", kind="url", package=None, version=None, url="https://example.invalid/a.zip",
              archive="zip", files=[{"path": "a/b.txt", "sha256": SHA}]),
        entry(name="l", kind="local", package=None, version=None, path="/tmp/copy",
              files=[{"path": "b.txt", "sha256": SHA}]),
    ]})
    assert [s.kind for s in sources] == ["npm", "pypi", "deb", "url", "local"]
    assert sources[0].container == "tar" and sources[1].container == "zip" and sources[2].container == "deb"
    assert sources[3].container == "zip" and sources[4].container == "none"
    assert sources[2].files[0].path == "usr/x.ttf"  # leading ./ of tar members is dropped
    assert sources[1].files[0].basename == "d.gz"
    assert sources[0].spec == "npm demo@1.0.0" and sources[2].spec == "deb fonts-x=1:1.0-1"


def test_unknown_key_names_source_key_and_valid_keys():
    msg = error_of(entry(pakage="x"))
    assert "source 'demo' (entry 1): unknown key 'pakage' (did you mean 'package'?)" in msg
    assert "valid keys for kind 'npm': files, homepage, kind, licence, name, note, package, version" in msg


def test_missing_required_key():
    msg = error_of(entry(version=None))
    assert "source 'demo' (entry 1): missing key 'version' (required for kind 'npm')" in msg


def test_bad_kind_lists_kinds():
    msg = error_of(entry(kind="pip"))
    assert "key 'kind': unknown kind 'pip'" in msg and f"valid kinds: {', '.join(KINDS)}" in msg


def test_archive_only_for_url_and_local_and_must_be_known():
    assert "unknown key 'archive'" in error_of(entry(archive="zip"))
    msg = error_of(entry(kind="local", package=None, version=None, path="/x", archive="rar"))
    assert "key 'archive': unknown archive 'rar'" in msg and "valid values: zip, tar, deb, none" in msg


def test_duplicate_names():
    msg = error_of(entry(), entry())
    assert "source 'demo' (entry 2): key 'name': duplicate of entry 1" in msg


def test_bad_sha_and_missing_sha():
    msg = error_of(entry(files=[{"path": "a/x", "sha256": "ABC"}]))
    assert "source 'demo' (entry 1): files[0]: key 'sha256' for 'a/x' must be 64 lowercase hex digits" in msg
    msg = error_of(entry(files=[{"path": "a/x"}]))
    assert "missing key 'sha256'" in msg and "askshift.data.fetch pin" in msg
    # ... but `pin` may read a table whose hashes are not filled in yet
    (s,) = parse_sources({"sources": [entry(files=[{"path": "a/x"}])]}, require_hashes=False)
    assert s.files[0].sha256 is None


def test_file_names_unique_per_source():
    msg = error_of(entry(files=[{"path": "a/x.bin", "sha256": SHA}, {"path": "b/x.bin", "sha256": SHA}]))
    assert "same file name 'x.bin'" in msg


def test_unknown_file_key():
    assert "files[0]: unknown key 'sha'" in error_of(entry(files=[{"path": "a/x", "sha": SHA}]))


def test_versions_must_be_strings():
    msg = error_of(entry(version=1.1))
    assert "key 'version' must be a string" in msg and 'version: "1.1"' in msg


def test_url_needs_scheme_and_single_file_without_archive():
    base = dict(kind="url", package=None, version=None)
    assert "must start with https://" in error_of(entry(**base, url="example.invalid/x"))
    two = [{"path": "a", "sha256": SHA}, {"path": "b", "sha256": SHA}]
    assert "yields exactly one file" in error_of(entry(**base, url="https://example.invalid/x", files=two))


def test_bad_names_and_top_level():
    assert "not a valid folder name" in error_of(entry(name="../up"))
    with pytest.raises(SourceError, match="unknown top-level key 'source'"):
        parse_sources({"source": [], "sources": []})
    with pytest.raises(SourceError, match="key 'sources' must be a list"):
        parse_sources({"sources": {"name": "x"}})


def test_all_errors_reported_at_once():
    msg = error_of(entry(kind="pip"), entry(name="b", pakage="x"))
    assert "entry 1" in msg and "entry 2" in msg


def test_load_sources_yaml_errors(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("sources:\n  - name: a\n    name: b\n")
    with pytest.raises(SourceError, match="not valid YAML"):
        load_sources(p)
    with pytest.raises(SourceError, match="not found"):
        load_sources(tmp_path / "missing.yaml")


def test_select_sources():
    sources = parse_sources({"sources": [entry(), entry(name="other")]})
    assert [s.name for s in select_sources(sources, ["other"])] == ["other"]
    with pytest.raises(SourceError, match="no source named 'othr' \\(did you mean 'other'\\?\\); valid names: demo, other"):
        select_sources(sources, ["othr"])


def test_project_table_is_valid_and_pinned():
    sources = load_sources(ROOT / "data" / "sources.yaml")
    names = [s.name for s in sources]
    assert names[:5] == ["mnist", "fashion-mnist", "animal-mnist", "scikit-learn", "scikit-image"]
    assert "fonts-texgyre" in names
    for s in sources:
        assert s.files and all(f.sha256 or f.git_sha1 for f in s.files), s.name
        assert s.licence, s.name
    by_name = {s.name: s for s in sources}
    # only CIFAR-10.1's data file has no sha256: its authors publish none, its git blob id pins it
    assert [s.name for s in sources if any(f.sha256 is None for f in s.files)] == ["cifar10_1"]
    assert [f.basename for f in by_name["mnist"].files] == [f"{d}.json" for d in range(10)]
