"""Build the report: execute the notebook templates of reports/templates/ with papermill,
render them to self-contained HTML, and write reports/index.html (claims table, links,
provenance).

Outputs (final, never inputs of another stage): reports/parts/<part>.{ipynb,html},
reports/parts/claims.csv and reports/index.html. Written to a temporary folder and moved into
place only when every notebook ran: a failed notebook fails the stage (its part and cell are
named), leaves the previous report untouched and its partly executed copy in reports/.failed/.
"""
from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from askshift.io import write_json, write_text
from askshift.report import claims, index, parts, provenance, render
from askshift.report.inputs import Inputs, declared_deps, read_dvc_yaml, stage_outputs
from askshift.study.stage import StageFailed


class ReportError(StageFailed):
    """A part's notebook raised: the message names the part and the failing cell."""


REPORTS = Path("reports")
TEMPLATES = REPORTS / "templates"
PARTS_DIR = REPORTS / "parts"
FAILED = REPORTS / ".failed"
RUN_PAGE = "run.html"


def _render_part(job: tuple[str, str, str, str], params: dict, root: str, kernel: str, timeout: int,
                 show_code: bool) -> tuple[str, float, str | None]:
    """Execute one template and render it to HTML (in a worker thread). Returns the part's
    name, seconds, and the error message when the notebook failed (papermill names the cell)."""
    name, template, out, title = job
    t = time.time()
    try:
        render.execute(template, out, params, root, kernel, timeout)
    except Exception as e:  # noqa: BLE001 - reported by the parent with the notebook kept
        return name, time.time() - t, f"{type(e).__name__}: {e}"
    render.strip_run_metadata(out)
    render.to_html(out, Path(out).with_suffix(".html"), title, show_code=show_code)
    return name, time.time() - t, None


def suggest_deps(dvc_yaml: dict) -> list[str]:
    """Stage outputs (other than the report's) that lie in a part's folders but are not deps of
    the report stage; per-example predictions (*.parquet) are left out: no part reads them.
    The split part's example images also need data/curated/datasets."""
    have = set(declared_deps(dvc_yaml))
    wanted = [o for p in parts.PARTS for o in p.outputs]
    outs = [o for name, paths in stage_outputs(dvc_yaml).items() if name != "report" for o in paths]
    found = [o for o in outs if not o.endswith(".parquet")
             and any(o == w or o.startswith(w + "/") for w in wanted)]
    if any(o == "results/split" or o.startswith("results/split/") for o in outs):
        found.append("data/curated/datasets")
    return [o for o in dict.fromkeys(found)
            if o not in have and not any(o.startswith(h + "/") for h in have)]


def build(params: dict, params_file: str = "params.yaml", only: list[str] | None = None) -> str:
    """Render the parts of ``report.parts`` (or only those of ``only``) and the index page;
    returns a one-line summary. Raises :class:`ReportError` when a notebook fails."""
    cfg = params["report"]
    t0 = time.time()
    root = Path(".").resolve()
    dvc_yaml = read_dvc_yaml("dvc.yaml")
    inputs = Inputs(declared_deps(dvc_yaml), Path("."), stage_outputs(dvc_yaml))
    if not inputs.deps:
        raise ReportError("dvc.yaml has no `report` stage with deps; the report reads only the outputs "
                          "declared there")
    selected = [parts.BY_NAME[n] for n in cfg["parts"] if not only or n in only]

    tmp = REPORTS / ".tmp-parts"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(FAILED, ignore_errors=True)
    tmp.mkdir(parents=True)
    nb_params = {"params_file": params_file, "inputs": inputs.deps, "report": cfg}
    rendered = []
    jobs = [(part.name, str(TEMPLATES / f"{part.name}.ipynb"), str(tmp / f"{part.name}.ipynb"),
             f"{part.title} ({part.section})") for part in selected]
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with render.kernel_env(root) as kernel:
        # each notebook runs in its own kernel process; threads here only wait on them. Threads,
        # not processes: jupyter_client hands out kernel ports from one per-process cache, so
        # kernels started side by side never race for the same port
        run = partial(_render_part, params=nb_params, root=str(root), kernel=kernel,
                      timeout=cfg["cell_timeout"], show_code=cfg["show_code"])
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(run, jobs))
    failed = [(name, err) for name, seconds, err in results if err]
    if failed:
        FAILED.mkdir(parents=True, exist_ok=True)
        for name, err in failed:
            nb = tmp / f"{name}.ipynb"
            if nb.exists():
                shutil.copy(nb, FAILED / nb.name)
        shutil.rmtree(tmp, ignore_errors=True)
        raise ReportError("; ".join(f"part {name!r} failed ({err}); partly executed notebook: "
                                    f"{FAILED / (name + '.ipynb')}" for name, err in failed))
    for name, seconds, _ in results:
        missing = [p for p in parts.BY_NAME[name].outputs if not inputs.has(p)]
        print(f"report: {name} rendered ({seconds:.1f} s"
              f"{f', {len(missing)} input(s) not produced by this run' if missing else ''})", flush=True)

    for name in cfg["parts"]:
        part = parts.BY_NAME[name]
        missing = {p: inputs.why_absent(p) for p in part.outputs if not inputs.has(p)}
        rendered.append((part, f"parts/{part.name}.html", missing))
    rows = claims.build(inputs, claims.Rules.from_params(cfg), debiased=params["finetune"]["dataset"] == "debiased")
    claims.to_frame(rows).to_csv(tmp / "claims.csv", index=False)
    write_json(REPORTS / "verdicts.json", claims.verdicts(rows))
    prov = provenance.collect(params, dvc_yaml, inputs, root)
    page = index.render(rows, rendered, prov, params)

    if only:  # a partial render never replaces the full report's other parts
        PARTS_DIR.mkdir(parents=True, exist_ok=True)
        for f in tmp.iterdir():
            os.replace(f, PARTS_DIR / f.name)
        tmp.rmdir()
    else:
        old = REPORTS / ".old-parts"
        shutil.rmtree(old, ignore_errors=True)
        if PARTS_DIR.exists():
            os.replace(PARTS_DIR, old)
        os.replace(tmp, PARTS_DIR)
        shutil.rmtree(old, ignore_errors=True)
    write_text(REPORTS / "index.html", page)
    # how this workspace last rendered it (commit, date, machine, wall times): not an output of
    # the stage (it differs on every run, while the report is a function of its inputs)
    write_text(REPORTS / RUN_PAGE, index.run_page(prov, report_seconds=time.time() - t0))
    tally = ", ".join(f"{sum(r.verdict == v for r in rows)} {v}" for v in
                      dict.fromkeys(r.verdict for r in rows))
    return f"report: {REPORTS / 'index.html'} written in {time.time() - t0:.1f} s; claims: {tally}"
