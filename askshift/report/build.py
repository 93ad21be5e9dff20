"""The report's index page: reports/index.html (claims table, links to the parts, provenance),
reports/claims.csv and reports/verdicts.json, from the parts that the ``report_<part>`` stages
rendered (:mod:`askshift.report.part`); and :func:`build`, the whole report outside DVC.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from askshift.io import atomic_path, write_json, write_text
from askshift.report import claims, index, parts, provenance, render
from askshift.report.inputs import Inputs, declared_deps, read_dvc_yaml, stage_outputs
from askshift.report.part import PARTS_DIR, REPORTS, ReportError, render_part
from askshift.study.config import select
from askshift.study.declared import STAGE_PARAMS, part_stage

RUN_PAGE = "run.html"
ASK_ANSWER = "results/ask/ask.json"        # the `ask` stage's answer, linked from the index
CLAIMS = REPORTS / "claims.csv"


def rendered_parts() -> list[tuple[parts.Part, str, dict[str, str]]]:
    """(part, link, {absent input: why}) of every part, from the parts' stages' outputs."""
    out = []
    for part in parts.PARTS:
        html_file, info = PARTS_DIR / f"{part.name}.html", PARTS_DIR / f"{part.name}.json"
        if not html_file.exists() or not info.exists():
            raise ReportError(f"{html_file} or {info} is missing: stage `{part_stage(part.name)}` renders it "
                              f"(`dvc repro {part_stage(part.name)}`)")
        out.append((part, f"parts/{part.name}.html", json.loads(info.read_text())["missing"]))
    return out


def build_index(params: dict, t0: float | None = None) -> str:
    """The claims table, verdicts and reports/index.html from the rendered parts and the
    index stage's deps; returns a one-line summary."""
    t0 = time.time() if t0 is None else t0
    root = Path(".").resolve()
    dvc_yaml = read_dvc_yaml("dvc.yaml")
    inputs = Inputs(declared_deps(dvc_yaml), Path("."), stage_outputs(dvc_yaml))
    if not inputs.deps:
        raise ReportError("dvc.yaml has no `report` stage with deps; the index reads only the outputs "
                          "declared there")
    listing = rendered_parts()
    rows = claims.build(inputs, claims.Rules.from_params(params["report"]),
                        debiased=params["finetune"]["dataset"] == "debiased")
    prov = provenance.collect(params, dvc_yaml, inputs, root)
    answer = json.loads(inputs.path(ASK_ANSWER).read_text()) if inputs.has(ASK_ANSWER) else None
    page = index.render(rows, listing, prov, params, index.ask_html(answer, inputs.why_absent(ASK_ANSWER)))
    with atomic_path(CLAIMS) as tmp:
        claims.to_frame(rows).to_csv(tmp, index=False)
    write_json(REPORTS / "verdicts.json", claims.verdicts(rows))
    write_text(REPORTS / "index.html", page)
    # how this workspace last rendered it (commit, date, machine, wall times): not an output of
    # the stage (it differs on every run, while the report is a function of its inputs)
    write_text(REPORTS / RUN_PAGE, index.run_page(prov, report_seconds=time.time() - t0))
    tally = ", ".join(f"{sum(r.verdict == v for r in rows)} {v}" for v in dict.fromkeys(r.verdict for r in rows))
    return f"report: {REPORTS / 'index.html'} written in {time.time() - t0:.1f} s; claims: {tally}"


def build(params: dict, only: list[str] | None = None) -> str:
    """Outside DVC (``python -m askshift report``): render the parts (all, or those of
    ``only``) side by side, then the index. ``params``: the whole validated params.yaml."""
    t0 = time.time()
    names = [n for n in parts.NAMES if not only or n in only]
    with render.kernel_env(Path(".").resolve()) as kernel:
        # each notebook runs in its own kernel process; threads here only wait on them. Threads,
        # not processes: jupyter_client hands out kernel ports from one per-process cache, so
        # kernels started side by side never race for the same port
        def one(name: str) -> str:
            return render_part(name, select(params, set(STAGE_PARAMS[part_stage(name)])), kernel)

        with ThreadPoolExecutor(max(1, min(len(names), os.cpu_count() or 1))) as pool:
            futures = [pool.submit(one, n) for n in names]
            errors = []
            for f in futures:
                try:
                    print(f.result(), flush=True)
                except ReportError as e:
                    errors.append(str(e))
    if errors:
        raise ReportError("; ".join(errors))
    return build_index(params, t0)
