"""One part of the report: its notebook template executed with papermill (with the params and
deps its stage ``report_<part>`` declares) and rendered to self-contained HTML.

Outputs: reports/parts/<part>.{ipynb,html,json} (the .json says which inputs were absent, for
the index). Written to a temporary folder and moved into place only when the notebook ran: a
failed notebook fails its stage (part and cell named) and keeps its partly executed copy in
reports/.failed/.
"""
from __future__ import annotations

import os
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

from askshift.io import write_json
from askshift.report import parts, render
from askshift.report.inputs import Inputs, declared_deps, read_dvc_yaml, stage_outputs
from askshift.study.declared import part_stage
from askshift.study.stage import StageFailed


class ReportError(StageFailed):
    """A part's notebook raised, or the index lacks a part: the message says which and where."""


REPORTS = Path("reports")
TEMPLATES = REPORTS / "templates"
PARTS_DIR = REPORTS / "parts"
FAILED = REPORTS / ".failed"


def part_inputs(name: str, dvc_yaml: dict) -> Inputs:
    """The deps of the part's stage, and every stage's outputs (to say why one is absent)."""
    stage = part_stage(name)
    deps = declared_deps(dvc_yaml, stage)
    if not deps:
        raise ReportError(f"dvc.yaml has no stage `{stage}` with deps; the part reads only the outputs "
                          "declared there")
    return Inputs(deps, Path("."), stage_outputs(dvc_yaml), stage)


def render_part(name: str, params: dict, kernel: str | None = None) -> str:
    """Execute the template of part ``name`` with ``params`` (the values of the params its stage
    declares) and its stage's deps, render it to HTML and move both into reports/parts/.
    Returns a one-line summary; raises :class:`ReportError` when the notebook fails."""
    part = parts.BY_NAME[name]
    inputs = part_inputs(name, read_dvc_yaml("dvc.yaml"))
    root = Path(".").resolve()
    tmp = REPORTS / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    (FAILED / f"{name}.ipynb").unlink(missing_ok=True)
    tmp.mkdir(parents=True)
    out, t = tmp / f"{name}.ipynb", time.time()
    try:
        with render.kernel_env(root) if kernel is None else nullcontext(kernel) as k:
            render.execute(TEMPLATES / f"{name}.ipynb", out, {"part": name, "params": params, "inputs": inputs.deps},
                           root, k, params["report"]["cell_timeout"])
    except Exception as e:  # noqa: BLE001 - reported with the notebook kept
        if out.exists():
            FAILED.mkdir(parents=True, exist_ok=True)
            shutil.copy(out, FAILED / out.name)
        shutil.rmtree(tmp, ignore_errors=True)
        raise ReportError(f"part {name!r} failed ({type(e).__name__}: {e}); partly executed notebook: "
                          f"{FAILED / out.name}") from None
    render.strip_run_metadata(out)
    render.to_html(out, out.with_suffix(".html"), f"{part.title} ({part.section})",
                   show_code=params["report"]["show_code"])
    missing = {p: inputs.why_absent(p) for p in part.outputs if not inputs.has(p)}
    write_json(tmp / f"{name}.json", {"part": name, "missing": missing})
    PARTS_DIR.mkdir(parents=True, exist_ok=True)
    for f in sorted(tmp.iterdir()):
        os.replace(f, PARTS_DIR / f.name)
    tmp.rmdir()
    return (f"report: {name} rendered ({time.time() - t:.1f} s"
            f"{f', {len(missing)} input(s) not produced by this run' if missing else ''})")
