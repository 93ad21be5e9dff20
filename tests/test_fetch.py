"""Fetchers against local fixtures built here: a wheel behind a PEP 503 index, an npm registry,
a .deb in a local apt repository and plain files, all served from 127.0.0.1.

Every failure test checks that nothing half-written is left: no staging folder, no partial
``raw/<name>``, and a previous good copy untouched.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from base64 import b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from askshift.data import fetch
from askshift.data.fetch import check_raw, clean_stale, fetch_source, pin, write_manifest
from askshift.data.sources import SourceError, parse_sources

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = {"a.bin": bytes(range(256)) * 40, "b.txt": b"hello payload\n"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_source(**entry):
    entry.setdefault("name", "demo")
    entry.setdefault("licence", "test")
    return parse_sources({"sources": [entry]})[0]


def files_for(prefix: str, payload=PAYLOAD, **override) -> list[dict]:
    return [{"path": f"{prefix}{n}", "sha256": override.get(n, sha(d))} for n, d in payload.items()]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_nothing_left(raw: Path, name: str = "demo", previous: dict | None = None) -> None:
    leftovers = [p.name for p in raw.iterdir() if p.name.startswith(".tmp-")] if raw.exists() else []
    assert leftovers == [], f"staging leftovers: {leftovers}"
    if previous is None:
        assert not (raw / name).exists(), "a partial copy was left behind"
    else:
        assert snapshot(raw / name) == previous, "the previous good copy was changed"


# --------------------------------------------------------------------------------------------
# A small HTTP server on 127.0.0.1 with a bounded lifetime.
# --------------------------------------------------------------------------------------------

class Server:
    def __init__(self):
        self.routes: dict[str, dict] = {}
        self.hits: dict[str, int] = {}
        routes, hits = self.routes, self.hits

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: a short body ends at close

            def do_GET(self):
                path = self.path.split("?")[0]
                hits[path] = hits.get(path, 0) + 1
                route = routes.get(path)
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                body = route["body"]
                self.send_response(route.get("status", 200))
                self.send_header("Content-Type", route.get("type", "application/octet-stream"))
                self.send_header("Content-Length", str(len(body) + route.get("missing", 0)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.watchdog = threading.Timer(300, self.httpd.shutdown)  # never outlive a hung test run
        self.watchdog.daemon = True

    def add(self, path: str, body: bytes, **opts) -> str:
        self.routes[path] = dict(body=body, **opts)
        return self.base + path

    def __enter__(self):
        self.thread.start()
        self.watchdog.start()
        return self

    def __exit__(self, *exc):
        self.watchdog.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def server():
    with Server() as s:
        yield s


@pytest.fixture
def raw(tmp_path):
    return tmp_path / "raw"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# Fixture containers.
# --------------------------------------------------------------------------------------------

def make_wheel(name="askshift_fixture", version="1.0", payload=PAYLOAD) -> bytes:
    buf = io.BytesIO()
    dist = f"{name}-{version}.dist-info"
    entries = {f"{name}/__init__.py": b"", **{f"{name}/data/{n}": d for n, d in payload.items()},
               f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n".encode(),
               f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{n},sha256={b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode().replace('+', '-').replace('/', '_')},{len(d)}\n"
                     for n, d in entries.items()) + f"{dist}/RECORD,,\n"
    entries[f"{dist}/RECORD"] = record.encode()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in entries.items():
            zf.writestr(n, d)
    return buf.getvalue()


def make_tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for n, d in members.items():
            info = tarfile.TarInfo(n)
            info.size = len(d)
            info.mtime = 1_600_000_000
            tf.addfile(info, io.BytesIO(d))
    return buf.getvalue()


def make_npm_tgz(name="askshift-fixture", version="1.0.0") -> bytes:
    pkg = json.dumps({"name": name, "version": version, "license": "MIT"}).encode()
    return make_tgz({"package/package.json": pkg, **{f"package/data/{n}": d for n, d in PAYLOAD.items()}})


def make_deb(path: Path, tmp: Path, *, package="askshift-fixture", version="1.0-1",
             compression="xz") -> Path:
    """A real .deb: built with dpkg-deb when present, else assembled here (ar + tar)."""
    root = tmp / f"debroot-{compression}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
        f"Maintainer: Test <test@example.invalid>\nDescription: askshift test fixture\n")
    data_dir = root / "usr/share/askshift-fixture"
    data_dir.mkdir(parents=True)
    for n, d in PAYLOAD.items():
        (data_dir / n).write_bytes(d)
    os.symlink("a.bin", data_dir / "link.bin")
    if shutil.which("dpkg-deb"):
        subprocess.run(["dpkg-deb", f"-Z{compression}", "--root-owner-group", "--build", str(root), str(path)],
                       check=True, capture_output=True)
        return path
    if compression != "xz":
        pytest.skip("dpkg-deb is needed for this compression")

    def tar_xz(base: Path, exclude: str | None) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:xz") as tf:
            for p in sorted(base.rglob("*")):
                rel = p.relative_to(base).as_posix()
                if exclude and rel.startswith(exclude):
                    continue
                tf.add(p, arcname="./" + rel, recursive=False)
        return buf.getvalue()

    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", tar_xz(root / "DEBIAN", None)),
               ("data.tar.xz", tar_xz(root, "DEBIAN"))]
    with open(path, "wb") as f:
        f.write(b"!<arch>\n")
        for n, d in members:
            f.write(f"{n:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(d):<10}`\n".encode())
            f.write(d + (b"\n" if len(d) % 2 else b""))
    return path


# --------------------------------------------------------------------------------------------
# url
# --------------------------------------------------------------------------------------------

def test_url_single_file_then_up_to_date(server, raw):
    url = server.add("/files/b.txt", PAYLOAD["b.txt"])
    src = make_source(kind="url", url=url, files=[{"path": "b.txt", "sha256": sha(PAYLOAD["b.txt"])}])
    r = fetch_source(src, raw)
    assert r.status == "fetched" and snapshot(raw / "demo") == {"b.txt": PAYLOAD["b.txt"]}
    hits = server.hits["/files/b.txt"]
    assert fetch_source(src, raw).status == "up-to-date"
    assert server.hits["/files/b.txt"] == hits
    assert fetch_source(src, raw, force=True).status == "fetched"
    assert_nothing_left(raw, previous={"b.txt": PAYLOAD["b.txt"]})


def test_url_zip_archive_keeps_only_listed_files(server, raw):
    url = server.add("/files/fixture.whl", make_wheel())
    src = make_source(kind="url", url=url, archive="zip", files=files_for("askshift_fixture/data/"))
    r = fetch_source(src, raw)
    assert snapshot(raw / "demo") == PAYLOAD
    assert {n: f.sha256 for n, f in r.files.items()} == {n: sha(d) for n, d in PAYLOAD.items()}


def test_url_hash_mismatch_names_both_hashes_and_keeps_good_copy(server, raw):
    url = server.add("/files/fixture2.whl", make_wheel())
    good = make_source(kind="url", url=url, archive="zip", files=files_for("askshift_fixture/data/"))
    fetch_source(good, raw)
    before = snapshot(raw / "demo")
    wrong = "0" * 64
    bad = make_source(kind="url", url=url, archive="zip",
                      files=files_for("askshift_fixture/data/", **{"b.txt": wrong}))
    with pytest.raises(SourceError) as e:
        fetch_source(bad, raw, force=True)
    msg = str(e.value)
    assert "source 'demo'" in msg and "hash mismatch for askshift_fixture/data/b.txt" in msg
    assert f"expected sha256 {wrong}" in msg and f"got {sha(PAYLOAD['b.txt'])}" in msg
    assert "kind: local" in msg and "pin" in msg
    assert e.value.source == "demo"
    assert_nothing_left(raw, previous=before)


def git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_a_file_pinned_by_its_git_blob_id(server, raw):
    # the id `git ls-tree` prints for a file of an official repository that publishes no sha256
    data = PAYLOAD["a.bin"]
    url = server.add("/repo/raw/0123abc/datasets/a.npy", data)
    src = make_source(kind="url", url=url, files=[{"path": "a.npy", "git_sha1": git_blob(data)}])
    r = fetch_source(src, raw)
    assert (raw / "demo" / "a.npy").read_bytes() == data
    assert r.files["a.npy"].git_sha1 == git_blob(data) and r.files["a.npy"].sha256 == sha(data)
    assert fetch_source(src, raw).status == "up-to-date"           # checked again by its blob id
    (raw / "demo" / "a.npy").write_bytes(data[:-1] + b"x")
    assert check_raw(src, raw) is None                              # a changed copy is not up to date
    wrong = make_source(kind="url", url=url, files=[{"path": "a.npy", "git_sha1": "0" * 40}])
    with pytest.raises(SourceError, match=f"expected git blob {'0' * 40}, got {git_blob(data)}"):
        fetch_source(wrong, raw, force=True)
    with pytest.raises(SourceError, match="key 'git_sha1' for 'a.npy' must be 40 lowercase hex digits"):
        make_source(kind="url", url=url, files=[{"path": "a.npy", "git_sha1": "abc"}])


def test_url_truncated_body_is_an_error_not_a_short_file(server, raw):
    data = PAYLOAD["a.bin"]
    url = server.add("/files/short.bin", data[:1000], missing=len(data) - 1000)
    src = make_source(kind="url", url=url, files=[{"path": "short.bin", "sha256": sha(data)}])
    with pytest.raises(SourceError) as e:
        fetch_source(src, raw, tries=3, backoff=0.01)
    msg = str(e.value)
    assert "network error after 3 tries" in msg and "received 1000 of 10240 bytes" in msg
    assert server.hits["/files/short.bin"] == 3
    assert_nothing_left(raw)


def test_url_http_404_is_not_retried(server, raw):
    src = make_source(kind="url", url=server.base + "/files/nowhere.bin",
                      files=[{"path": "nowhere.bin", "sha256": "1" * 64}])
    with pytest.raises(SourceError, match="HTTP 404") as e:
        fetch_source(src, raw, tries=3, backoff=0.01)
    assert server.hits["/files/nowhere.bin"] == 1
    assert "another copy (a mirror)" in str(e.value)
    assert_nothing_left(raw)


def test_url_connection_refused_retries_then_says_network(raw):
    src = make_source(kind="url", url=f"http://127.0.0.1:{closed_port()}/x.bin",
                      files=[{"path": "x.bin", "sha256": "1" * 64}])
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"network error after 2 tries: URLError"):
        fetch_source(src, raw, tries=2, backoff=0.05, timeout=5)
    assert time.monotonic() - t0 >= 0.05  # it backed off once
    assert_nothing_left(raw)


# --------------------------------------------------------------------------------------------
# local (file, folder, archives) and container problems
# --------------------------------------------------------------------------------------------

def test_local_folder_and_file(tmp_path, raw):
    folder = tmp_path / "copy"
    (folder / "sub").mkdir(parents=True)
    for n, d in PAYLOAD.items():
        (folder / "sub" / n).write_bytes(d)
    fetch_source(make_source(kind="local", path=str(folder), files=files_for("sub/")), raw)
    assert snapshot(raw / "demo") == PAYLOAD
    one = make_source(name="one", kind="local", path=str(folder / "sub" / "b.txt"),
                      files=[{"path": "renamed.txt", "sha256": sha(PAYLOAD["b.txt"])}])
    fetch_source(one, raw)
    assert snapshot(raw / "one") == {"renamed.txt": PAYLOAD["b.txt"]}


def test_local_missing_path(tmp_path, raw):
    src = make_source(kind="local", path=str(tmp_path / "nope.whl"), archive="zip",
                      files=files_for("askshift_fixture/data/"))
    with pytest.raises(SourceError, match="local path not found"):
        fetch_source(src, raw)
    assert_nothing_left(raw)


def test_truncated_wheel_is_reported_and_leaves_nothing(tmp_path, raw):
    wheel = make_wheel()
    good = tmp_path / "good.whl"
    good.write_bytes(wheel)
    fetch_source(make_source(kind="local", path=str(good), archive="zip",
                             files=files_for("askshift_fixture/data/")), raw)
    before = snapshot(raw / "demo")
    cut = tmp_path / "cut.whl"
    cut.write_bytes(wheel[: len(wheel) // 2])
    src = make_source(kind="local", path=str(cut), archive="zip", files=files_for("askshift_fixture/data/"))
    with pytest.raises(SourceError, match=r"corrupt or truncated.*BadZipFile"):
        fetch_source(src, raw, force=True)
    assert_nothing_left(raw, previous=before)


def test_truncated_tarball_is_reported(tmp_path, raw):
    tgz = make_npm_tgz()
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(tgz[: len(tgz) // 2])
    src = make_source(kind="local", path=str(cut), archive="tar", files=files_for("package/data/"))
    with pytest.raises(SourceError, match="corrupt or truncated"):
        fetch_source(src, raw)
    assert_nothing_left(raw)


def test_missing_member_lists_it_and_suggests_all_files(tmp_path, raw):
    p = tmp_path / "pkg.tgz"
    p.write_bytes(make_npm_tgz())
    files = files_for("package/data/") + [{"path": "package/data/gone.bin", "sha256": "2" * 64}]
    src = make_source(kind="local", path=str(p), archive="tar", files=files)
    with pytest.raises(SourceError) as e:
        fetch_source(src, raw)
    assert "missing member package/data/gone.bin" in str(e.value) and "--all-files" in str(e.value)
    assert_nothing_left(raw)


def test_deb_extraction_needs_no_dpkg(tmp_path, raw):
    deb = make_deb(tmp_path / "fixture.deb", tmp_path)
    src = make_source(kind="local", path=str(deb), archive="deb", files=files_for("usr/share/askshift-fixture/"))
    empty = tmp_path / "emptybin"
    empty.mkdir()
    fetch_source(src, raw, env={"PATH": str(empty)})
    assert snapshot(raw / "demo") == PAYLOAD
    link = make_source(name="link", kind="local", path=str(deb), archive="deb",
                       files=[{"path": "usr/share/askshift-fixture/link.bin", "sha256": "3" * 64}])
    with pytest.raises(SourceError, match="is a link to a.bin"):
        fetch_source(link, raw)
    assert_nothing_left(raw, "link")


@pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="dpkg-deb not installed")
def test_deb_with_zstd_data_uses_dpkg_deb(tmp_path, raw):
    try:
        deb = make_deb(tmp_path / "fixture-zst.deb", tmp_path, compression="zstd")
    except subprocess.CalledProcessError:
        pytest.skip("this dpkg-deb cannot build zstd packages")
    src = make_source(kind="local", path=str(deb), archive="deb", files=files_for("usr/share/askshift-fixture/"))
    fetch_source(src, raw)
    assert snapshot(raw / "demo") == PAYLOAD
    empty = tmp_path / "emptybin"
    empty.mkdir()
    with pytest.raises(SourceError, match="`dpkg-deb` is not on PATH"):
        fetch_source(src, raw / "other", env={"PATH": str(empty)})
    assert_nothing_left(raw / "other")


# --------------------------------------------------------------------------------------------
# pypi: `pip download` against a PEP 503 index on 127.0.0.1
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pip_env(server):
    good = make_wheel(version="1.0")
    cut = make_wheel(version="1.1")
    cut = cut[: len(cut) // 2]
    links = []
    for version, data in (("1.0", good), ("1.1", cut)):
        fname = f"askshift_fixture-{version}-py3-none-any.whl"
        server.add(f"/packages/{fname}", data)
        links.append(f'<a href="/packages/{fname}#sha256={sha(data)}">{fname}</a><br>')
    server.add("/simple/askshift-fixture/", ("<html><body>" + "".join(links) + "</body></html>").encode(),
               type="text/html")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=server.base + "/simple/", PIP_NO_CACHE_DIR="1",
               PIP_RETRIES="0", PIP_TIMEOUT="10", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    return env


def pypi_source(version="1.0", **override):
    return make_source(kind="pypi", package="askshift-fixture", version=version,
                       files=files_for("askshift_fixture/data/", **override))


def test_pypi_success(pip_env, raw):
    r = fetch_source(pypi_source(), raw, env=pip_env)
    assert r.status == "fetched" and snapshot(raw / "demo") == PAYLOAD
    assert_nothing_left(raw, previous=PAYLOAD)


def test_pypi_unknown_version(pip_env, raw):
    with pytest.raises(SourceError) as e:
        fetch_source(pypi_source("9.9"), raw, env=pip_env)
    msg = str(e.value)
    assert "source 'demo' (pypi askshift-fixture==9.9): version not found" in msg
    assert "No matching distribution" in msg  # the client's own words
    assert "pip index versions askshift-fixture" in msg and "kind: local" in msg
    assert_nothing_left(raw)


def test_pypi_truncated_wheel(pip_env, raw):
    fetch_source(pypi_source(), raw, env=pip_env)
    with pytest.raises(SourceError, match="corrupt or truncated") as e:
        fetch_source(pypi_source("1.1"), raw, env=pip_env, force=True)
    assert "source 'demo'" in str(e.value)
    assert_nothing_left(raw, previous=PAYLOAD)


def test_pypi_without_pip(tmp_path, raw, monkeypatch):
    fake = tmp_path / "python-without-pip"
    fake.write_text("#!/bin/sh\necho \"$0: No module named pip\" >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    with pytest.raises(SourceError) as e:
        fetch_source(pypi_source(), raw)
    assert "client `pip` is not installed" in str(e.value) and "ensurepip" in str(e.value)
    assert_nothing_left(raw)


# --------------------------------------------------------------------------------------------
# npm: `npm pack` against a registry on 127.0.0.1
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def npm_env(server, tmp_path_factory):
    if not shutil.which("npm"):
        pytest.skip("npm not installed")
    tgz = make_npm_tgz()
    tarball = server.add("/askshift-fixture/-/askshift-fixture-1.0.0.tgz", tgz)
    integrity = "sha512-" + b64encode(hashlib.sha512(tgz).digest()).decode()
    packument = {"name": "askshift-fixture", "dist-tags": {"latest": "1.0.0"},
                 "versions": {"1.0.0": {"name": "askshift-fixture", "version": "1.0.0",
                                        "dist": {"tarball": tarball, "integrity": integrity,
                                                 "shasum": hashlib.sha1(tgz).hexdigest()}}}}
    server.add("/askshift-fixture", json.dumps(packument).encode(), type="application/json")
    home = tmp_path_factory.mktemp("npm")
    (home / "npmrc").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env.update(npm_config_registry=server.base + "/", npm_config_cache=str(home / "cache"),
               npm_config_userconfig=str(home / "npmrc"), npm_config_update_notifier="false",
               npm_config_audit="false", npm_config_fund="false", npm_config_fetch_retries="0",
               NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    return env


def npm_source(version="1.0.0", **override):
    return make_source(kind="npm", package="askshift-fixture", version=version,
                       files=files_for("package/data/", **override))


def test_npm_success(npm_env, raw):
    fetch_source(npm_source(), raw, env=npm_env)
    assert snapshot(raw / "demo") == PAYLOAD
    assert_nothing_left(raw, previous=PAYLOAD)


def test_npm_unknown_version_keeps_good_copy(npm_env, raw):
    fetch_source(npm_source(), raw, env=npm_env)
    src = npm_source("9.9.9")
    with pytest.raises(SourceError) as e:
        fetch_source(src, raw, env=npm_env, force=True)
    msg = str(e.value)
    assert "source 'demo' (npm askshift-fixture@9.9.9): version not found" in msg
    assert "ETARGET" in msg and "npm view askshift-fixture versions" in msg
    assert_nothing_left(raw, previous=PAYLOAD)


def test_npm_missing_client(tmp_path, raw):
    empty = tmp_path / "emptybin"
    empty.mkdir()
    with pytest.raises(SourceError) as e:
        fetch_source(npm_source(), raw, env={"PATH": str(empty)})
    msg = str(e.value)
    assert "client `npm` not found on PATH" in msg
    assert "kind: local" in msg and "archive: tar" in msg
    assert_nothing_left(raw)


# --------------------------------------------------------------------------------------------
# deb: `apt-get download` from a local apt repository with its own APT_CONFIG
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def apt_env(tmp_path_factory):
    if not shutil.which("apt-get"):
        pytest.skip("apt-get not installed")
    t = tmp_path_factory.mktemp("apt")
    repo = t / "repo"
    repo.mkdir()
    deb = make_deb(repo / "askshift-fixture_1.0-1_all.deb", t)
    data = deb.read_bytes()
    (repo / "Packages").write_text(
        "Package: askshift-fixture\nVersion: 1.0-1\nArchitecture: all\n"
        "Maintainer: Test <test@example.invalid>\nDescription: askshift test fixture\n"
        f"Filename: ./{deb.name}\nSize: {len(data)}\nSHA256: {sha(data)}\n\n")
    for d in ("etc/sources.list.d", "etc/apt.conf.d", "etc/preferences.d", "lists/partial",
              "cache/archives/partial"):
        (t / d).mkdir(parents=True)
    (t / "etc/sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    (t / "status").write_text("")
    conf = t / "apt.conf"
    conf.write_text("\n".join([
        f'Dir::Etc::sourcelist "{t}/etc/sources.list";',
        f'Dir::Etc::sourceparts "{t}/etc/sources.list.d";',
        f'Dir::Etc::parts "{t}/etc/apt.conf.d";',
        f'Dir::Etc::main "{t}/etc/apt.conf";',
        f'Dir::Etc::preferences "{t}/etc/preferences";',
        f'Dir::Etc::preferencesparts "{t}/etc/preferences.d";',
        f'Dir::State::Lists "{t}/lists";',
        f'Dir::State::status "{t}/status";',
        f'Dir::Cache "{t}/cache";',
        'Debug::NoLocking "true";',
        'APT::Sandbox::User "root";',
        'Acquire::Languages "none";',
    ]) + "\n")
    env = dict(os.environ, APT_CONFIG=str(conf))
    proc = subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.skip(f"cannot set up a local apt repository here: {proc.stderr[-500:]}")
    return env


def deb_source(version="1.0-1", **override):
    return make_source(kind="deb", package="askshift-fixture", version=version,
                       files=files_for("usr/share/askshift-fixture/", **override))


def test_deb_success(apt_env, raw):
    r = fetch_source(deb_source(), raw, env=apt_env)
    assert r.status == "fetched" and snapshot(raw / "demo") == PAYLOAD
    assert_nothing_left(raw, previous=PAYLOAD)


def test_deb_unknown_version(apt_env, raw):
    with pytest.raises(SourceError) as e:
        fetch_source(deb_source("9.9-1"), raw, env=apt_env)
    msg = str(e.value)
    assert "source 'demo' (deb askshift-fixture=9.9-1): version not found" in msg
    assert "Version '9.9-1' for 'askshift-fixture' was not found" in msg
    assert "apt-cache policy askshift-fixture" in msg
    assert_nothing_left(raw)


def test_deb_hash_mismatch_keeps_good_copy(apt_env, raw):
    fetch_source(deb_source(), raw, env=apt_env)
    with pytest.raises(SourceError) as e:
        fetch_source(deb_source(**{"a.bin": "f" * 64}), raw, env=apt_env, force=True)
    assert f"expected sha256 {'f' * 64}, got {sha(PAYLOAD['a.bin'])}" in str(e.value)
    assert_nothing_left(raw, previous=PAYLOAD)


def test_deb_missing_client(tmp_path, raw):
    empty = tmp_path / "emptybin"
    empty.mkdir()
    with pytest.raises(SourceError, match=r"client `apt-get` not found on PATH(.|\n)*archive: deb"):
        fetch_source(deb_source(), raw, env={"PATH": str(empty)})
    assert_nothing_left(raw)


# --------------------------------------------------------------------------------------------
# pin, manifest, housekeeping, the stage script
# --------------------------------------------------------------------------------------------

def test_pin_lists_hashes_without_touching_raw(tmp_path):
    p = tmp_path / "pkg.tgz"
    p.write_bytes(make_npm_tgz())
    src = make_source(kind="local", path=str(p), archive="tar", files=files_for("package/data/"))
    records = pin(src)
    assert [(r.member, r.sha256) for r in records] == [(f"package/data/{n}", sha(d)) for n, d in PAYLOAD.items()]
    everything = pin(src, all_files=True)
    assert [r.member for r in everything] == ["package/data/a.bin", "package/data/b.txt", "package/package.json"]


def test_pin_command_line(tmp_path, capsys):
    p = tmp_path / "pkg.tgz"
    p.write_bytes(make_npm_tgz())
    table = tmp_path / "sources.yaml"
    table.write_text(f"sources:\n  - name: demo\n    kind: local\n    path: {p}\n    archive: tar\n"
                     f"    licence: test\n    files:\n      - {{path: package/data/b.txt}}\n")
    assert fetch.main(["pin", str(table), "demo"]) == 0
    assert f"{{path: package/data/b.txt, sha256: {sha(PAYLOAD['b.txt'])}}}" in capsys.readouterr().out
    assert fetch.main(["pin", str(table), "dmeo"]) == 1
    assert "no source named 'dmeo' (did you mean 'demo'?)" in capsys.readouterr().err


def test_manifest_and_clean_stale(tmp_path, raw):
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "b.txt").write_bytes(PAYLOAD["b.txt"])
    src = make_source(kind="local", path=str(folder), files=[{"path": "b.txt", "sha256": sha(PAYLOAD["b.txt"])}])
    r = fetch_source(src, raw)
    (raw / ".tmp-demo-killed").mkdir()
    assert [p.name for p in clean_stale(raw)] == [".tmp-demo-killed"]
    doc = write_manifest([r], raw / "MANIFEST.json")
    again = json.loads((raw / "MANIFEST.json").read_text())
    assert doc == again and again["sources"][0]["files"]["b.txt"]["sha256"] == sha(PAYLOAD["b.txt"])
    assert again["sources"][0]["bytes"] == len(PAYLOAD["b.txt"])
    (raw / "demo" / "extra.txt").write_text("stray")
    assert check_raw(src, raw) is None  # an extra file means not up to date


def test_download_command_end_to_end(tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    for n, d in PAYLOAD.items():
        (folder / n).write_bytes(d)
    table = tmp_path / "sources.yaml"
    entries = "".join(f"      - {{path: {n}, sha256: {sha(d)}}}\n" for n, d in PAYLOAD.items())
    table.write_text(f"sources:\n  - name: demo\n    kind: local\n    path: {folder}\n    licence: test\n"
                     f"    files:\n{entries}"
                     f"  - name: broken\n    kind: local\n    path: {tmp_path / 'missing'}\n    licence: test\n"
                     f"    files:\n{entries}")
    raw = tmp_path / "raw"
    cmd = [sys.executable, "-m", "askshift", "download", "--sources", str(table), "--raw", str(raw)]
    proc = subprocess.run(cmd + ["--only", "demo"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "demo" in proc.stdout and "fetched" in proc.stdout and "not in" in proc.stdout
    manifest = json.loads((raw / "MANIFEST.json").read_text())
    assert [s["name"] for s in manifest["sources"]] == ["demo"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 1
    assert "source 'broken' (local" in proc.stderr and "local path not found" in proc.stderr
    assert "up-to-date" in proc.stdout
    assert_nothing_left(raw, "broken")
