"""What a report stage may read: the deps that dvc.yaml declares for it (the index page's
stage `report`, or a part's stage `report_<part>`).

A path is *available* when it is one of those deps (or lies inside one) and exists on disk.
Everything else is reported as "not produced by this pipeline run", with the reason: the
stage that makes it is not in dvc.yaml, it is not wired into the reading stage's deps, or it is
declared but missing. So the rendered report never depends on files DVC does not track for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from askshift.study.dvcfile import expanded_stages, read_dvc_yaml  # noqa: F401 - read_dvc_yaml re-exported

STAGE = "report"
NOT_PRODUCED = "not produced by this pipeline run"


def _norm(p: str | Path) -> str:
    return str(PurePosixPath(str(p).replace("\\", "/"))).rstrip("/")


def _dep_paths(entries) -> list[str]:
    out = []
    for d in entries or []:
        out.extend(d.keys() if isinstance(d, dict) else [d])
    return [_norm(p) for p in out]


def _out_paths(stage: dict) -> list[str]:
    out = []
    for key in ("outs", "metrics", "plots"):
        for o in stage.get(key) or []:
            out.extend(o.keys() if isinstance(o, dict) else [o])
    return [_norm(p) for p in out]


def declared_deps(dvc_yaml: dict, stage: str = STAGE) -> list[str]:
    """The deps of `stage` in a parsed dvc.yaml ([] when the stage is not there)."""
    return _dep_paths(expanded_stages(dvc_yaml).get(stage, {}).get("deps"))


def stage_outputs(dvc_yaml: dict) -> dict[str, list[str]]:
    """Every stage's outputs (outs, metrics and plots), by stage name."""
    return {name: _out_paths(s) for name, s in expanded_stages(dvc_yaml).items()}


def is_report_stage(name: str) -> bool:
    return name == STAGE or name.startswith(STAGE + "_")


def producible(dvc_yaml: dict, candidates: list[str]) -> list[str]:
    """The candidates that some stage of dvc.yaml (other than the report's) outputs, or that lie
    inside (or contain) such an output. The report's stages are wired to exactly these."""
    outs = [o for name, paths in stage_outputs(dvc_yaml).items() if not is_report_stage(name) for o in paths]
    keep = []
    for c in map(_norm, candidates):
        if any(c == o or c.startswith(o + "/") or o.startswith(c + "/") for o in outs):
            keep.append(c)
    return keep


@dataclass
class Inputs:
    """A report stage's view of the workspace: `deps` are the declared deps of `stage`."""

    deps: list[str]
    root: Path = Path(".")
    producers: dict[str, list[str]] | None = None  # stage -> outputs, to explain absences
    stage: str = STAGE

    @classmethod
    def from_dvc_yaml(cls, path: str | Path = "dvc.yaml", root: str | Path = ".", stage: str = STAGE) -> "Inputs":
        y = read_dvc_yaml(Path(root) / path)
        return cls(declared_deps(y, stage), Path(root), stage_outputs(y), stage)

    def declared(self, path: str | Path) -> bool:
        """`path` is a dep, lies inside one, or is a folder that holds deps."""
        p = _norm(path)
        return any(p == d or p.startswith(d + "/") or d.startswith(p + "/") for d in self.deps)

    def _covered(self, path: str | Path) -> bool:
        p = _norm(path)
        return any(p == d or p.startswith(d + "/") for d in self.deps)

    def has(self, path: str | Path) -> bool:
        """True when `path` exists and is a declared dep, lies inside one, or is a folder
        holding at least one declared dep that exists."""
        if not (self.root / path).exists():
            return False
        if self._covered(path):
            return True
        p = _norm(path)
        return any(d.startswith(p + "/") and (self.root / d).exists() for d in self.deps)

    def path(self, path: str | Path) -> Path:
        """The path, after checking it is available (raises FileNotFoundError otherwise)."""
        if not self.has(path):
            raise FileNotFoundError(f"{path}: {self.why_absent(path)}")
        return self.root / path

    def glob(self, folder: str, pattern: str) -> list[Path]:
        """The declared files under `folder` that match `pattern`, sorted (a folder that is a
        dep as a whole gives all its files; one holding single-file deps gives only those)."""
        if not self.has(folder):
            return []
        return sorted(p for p in (self.root / folder).glob(pattern)
                      if self._covered(p.relative_to(self.root).as_posix()))

    def producer(self, path: str | Path) -> str | None:
        p = _norm(path)
        for name, outs in (self.producers or {}).items():
            if not is_report_stage(name) and any(p == o or p.startswith(o + "/") or o.startswith(p + "/") for o in outs):
                return name
        return None

    def why_absent(self, path: str | Path) -> str:
        """One line: why `path` is not available (empty when it is)."""
        if self.has(path):
            return ""
        if self.declared(path):
            return f"declared as a dep of stage `{self.stage}` but missing on disk (did its stage run?)"
        stage = self.producer(path)
        if stage is None:
            return "no stage of dvc.yaml produces it"
        return (f"stage `{stage}` produces it, but it is not a dep of stage `{self.stage}` in dvc.yaml "
                "(add it there to include it)")
