"""Provenance of a report: which code, data, params, packages and machine produced it.

Everything here reads the workspace (git, dvc.lock, params.yaml, requirements.txt, the stages'
metrics files) and returns plain dicts, so the index page and the tests can use the same data.
dvc.lock is read, not declared as a dep: DVC rewrites it after every stage, and the hash of
every input it lists is exactly what it pins.
"""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from askshift.io import flatten
from askshift.report.inputs import Inputs
from askshift.study.dvcfile import expanded_stages
from askshift.study.layout import timings_file


def git_info(root: str | Path = ".") -> dict:
    """Commit, branch and whether the working tree differs from it (files DVC tracks excluded,
    since git ignores them)."""
    def run(*args, strip=True):
        r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip() or f"git {' '.join(args)} failed")
        return r.stdout.strip() if strip else r.stdout

    try:
        commit = run("rev-parse", "HEAD")
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        return {"commit": None, "error": f"not a git checkout or no commit yet ({e})"}
    try:
        branch = run("rev-parse", "--abbrev-ref", "HEAD")
        status = run("status", "--porcelain", "--untracked-files=no", strip=False).splitlines()
        # dvc.lock and the .gitignore files DVC maintains are written by `dvc repro` itself
        changed = [p for p in (line[3:] for line in status if len(line) > 3)
                   if p != "dvc.lock" and not p.endswith(".gitignore")]
        subject = run("log", "-1", "--format=%s")
        date = run("log", "-1", "--format=%cI")
    except (OSError, RuntimeError, subprocess.SubprocessError):
        branch, changed, subject, date = None, [], None, None
    return {"commit": commit, "branch": branch, "subject": subject, "date": date,
            "dirty": bool(changed), "changed": changed}  # noqa: E501


def lock_entries(lock_path: str | Path = "dvc.lock") -> dict:
    """dvc.lock as {stage: {"deps": [...], "outs": [...], "params": {...}}}, each dep/out
    {path, md5, size, nfiles}. {} when there is no lock file yet."""
    p = Path(lock_path)
    if not p.exists():
        return {}
    doc = YAML(typ="safe", pure=True).load(p.read_text()) or {}
    out = {}
    for name, st in (doc.get("stages") or {}).items():
        def files(key):
            return [{"path": f.get("path"), "md5": f.get("md5") or f.get("hash"),
                     "size": f.get("size"), "nfiles": f.get("nfiles")} for f in st.get(key) or []]
        out[name] = {"cmd": st.get("cmd"), "deps": files("deps"), "outs": files("outs"),
                     "params": st.get("params") or {}}
    return out


def file_md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def input_hashes(deps: list[str], lock: dict, root: str | Path = ".") -> list[dict]:
    """One row per input of the report stage.

    Pipeline outputs: the md5 that dvc.lock pins for them (as outputs of the stage that made
    them; DVC writes each stage's entry as soon as it finishes), and for single files whether
    the file on disk still has that md5. Source files (templates, code): their md5 on disk,
    the same hash DVC records for them in dvc.lock once this stage has run.
    """
    root = Path(root)
    rows = []
    for dep in deps:
        made = [(name, o) for name, st in lock.items() if name != "report"
                for o in st["outs"] if o["path"] == dep]
        p = root / dep
        if made:
            name, o = made[-1]
            on_disk = file_md5(p) if p.is_file() else None
            rows.append({"path": dep, "stage": name, "md5": o["md5"], "size": o["size"],
                         "nfiles": o["nfiles"],
                         "matches_disk": None if on_disk is None else on_disk == o["md5"]})
        elif p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file() and "__pycache__" not in q.parts):
                rows.append({"path": f.relative_to(root).as_posix(), "stage": "(source)",
                             "md5": file_md5(f), "size": f.stat().st_size, "nfiles": None,
                             "matches_disk": None})
        elif p.is_file():
            rows.append({"path": dep, "stage": "(source)", "md5": file_md5(p),
                         "size": p.stat().st_size, "nfiles": None, "matches_disk": None})
        else:
            rows.append({"path": dep, "stage": None, "md5": None, "size": None, "nfiles": None,
                         "matches_disk": None})
    return rows


def _requirement_names(requirements: Path) -> list[tuple[str, str | None]]:
    pins = []
    if requirements.exists():
        for line in requirements.read_text().splitlines():
            line = line.split("#")[0].strip()
            m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)\s*(?:==\s*([^\s;]+))?", line)
            if m:
                pins.append((re.sub(r"\[.*\]", "", m.group(1)), m.group(2)))
    return pins


def package_versions(requirements: str | Path = "requirements.txt") -> list[dict]:
    """Every package of requirements.txt: the pinned and the installed version."""
    rows = [{"package": "python", "pinned": None, "installed": platform.python_version()}]
    for name, pin in _requirement_names(Path(requirements)):
        try:
            got = md.version(name)
        except md.PackageNotFoundError:
            got = None
        rows.append({"package": name, "pinned": pin, "installed": got})
    return rows


def device_info() -> dict:
    """The machine that ran the report stage (training stages may have run elsewhere)."""
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().split("\n", 1)[0]
        info["memory_gb"] = round(int(mem.split()[1]) / 1024 ** 2, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        info["torch"] = md.version("torch")
    except md.PackageNotFoundError:
        info["torch"] = None
    # GPUs without importing torch (seconds): nvidia-smi when the driver is there
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)
        gpus = [line.strip() for line in r.stdout.splitlines() if line.strip()] if r.returncode == 0 else []
    except (OSError, subprocess.SubprocessError):
        gpus = []
    info["gpus"] = gpus or "none found (nvidia-smi absent or no GPU)"
    return info


def stage_times(dvc_yaml: dict, root: str | Path = ".") -> list[dict]:
    """Wall time of each stage's last run, from ``results/timings/<stage>.json`` (written by
    every stage, never a metric: timings differ between identical runs), or None."""
    rows = []
    for name in expanded_stages(dvc_yaml):
        if name == "report":
            continue
        path = Path(root) / timings_file(name)
        try:
            seconds = float(json.loads(path.read_text())["wall_seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            seconds = None
        rows.append({"stage": name, "wall_seconds": seconds, "source": timings_file(name).as_posix() if seconds is not None else None})
    return rows


def collect(params: dict, dvc_yaml: dict, inputs: Inputs, root: str | Path = ".") -> dict:
    root = Path(root)
    lock = lock_entries(root / "dvc.lock")
    return {
        "git": git_info(root),
        "inputs": input_hashes(inputs.deps, lock, root),
        "lock": lock,
        "params": flatten(params),
        "packages": package_versions(root / "requirements.txt"),
        "device": device_info(),
        "stage_times": stage_times(dvc_yaml, root),
    }
