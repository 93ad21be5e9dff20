"""The report: claims rules, inputs, provenance, the index page, notebook execution and HTML
rendering on tiny in-memory data; the pages in headless Chromium.

`check_report_dir` is also what the end-to-end test runs on the smoke pipeline's report.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ruamel.yaml import YAML

from askshift.study.declared import PART_PARAMS, STAGE_PARAMS, part_stage
from askshift.study.params import ParamsError, load_params
from askshift.report import browser, claims as C, index, parts, provenance, render
from askshift.report.inputs import NOT_PRODUCED, Inputs, declared_deps, producible, stage_outputs

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "reports" / "templates"
RULES = C.Rules(tolerance=0.02, min_effect=0.02, min_fit_r2=0.5)


def dvc_yaml() -> dict:
    return YAML(typ="safe", pure=True).load((ROOT / "dvc.yaml").read_text())


# ------------------------------------------------------------------ rules
@pytest.mark.parametrize("er, low, high, verdict", [
    (0.004, -0.01, 0.015, C.AGREES),     # the whole interval within +-2 pp
    (0.0, -0.02, 0.02, C.AGREES),        # boundary: exactly +-2 pp
    (0.0, -0.0201, 0.02, C.UNCLEAR),     # just beyond: not shown equivalent
    (0.049, -0.001, 0.099, C.UNCLEAR),   # +4.9 [-0.1, +9.9]: contains 0 but far too wide to call ~0
    (0.02, -0.20, 0.24, C.UNCLEAR),      # wide around 0: never an agreement
    (0.03, 0.021, 0.04, C.DISAGREES),    # the whole interval above +2 pp
    (0.03, 0.02, 0.04, C.UNCLEAR),       # boundary: touches +2 pp
    (-0.03, -0.04, -0.021, C.DISAGREES),  # the whole interval below -2 pp
])
def test_near_zero_is_an_equivalence_test(er, low, high, verdict):
    assert C.near_zero(er, low, high, RULES.tolerance) == verdict


@pytest.mark.parametrize("er, low, high, verdict", [
    (0.05, 0.001, 0.10, C.AGREES),       # lower bound > 0 and estimate >= 2 pp
    (0.02, 0.001, 0.04, C.AGREES),       # boundary: estimate exactly the minimum effect
    (0.019, 0.001, 0.04, C.UNCLEAR),     # significant but below the minimum effect
    (0.05, 0.0, 0.10, C.UNCLEAR),        # boundary: lower bound not above 0
    (0.05, -0.03, 0.13, C.UNCLEAR),      # wide: cannot tell
    (0.0, -0.02, 0.0199, C.DISAGREES),   # cannot reach the minimum effect
    (-0.05, -0.08, -0.02, C.DISAGREES),  # clearly negative
])
def test_positive_needs_significance_and_a_minimum_effect(er, low, high, verdict):
    assert C.positive(er, low, high, RULES.min_effect) == verdict


def test_above_rule_and_fit_gate():
    assert C.separated((0.10, 0.08, 0.12), (0.01, -0.01, 0.03)) == C.AGREES
    assert C.separated((0.10, 0.02, 0.12), (0.01, -0.01, 0.05)) == C.UNCLEAR
    assert C.separated((0.01, -0.01, 0.03), (0.10, 0.08, 0.12)) == C.DISAGREES
    assert C.fit_ok(0.9, 3, 0.5) and not C.fit_ok(0.4, 10, 0.5) and not C.fit_ok(0.99, 2, 0.5)
    assert not C.fit_ok(float("nan"), 5, 0.5)


def er_rows(shift: str, kind: str, ers: dict[str, tuple[float, float, float]], r2=0.95, n=5) -> list[dict]:
    rows = [{"shift": shift, "kind": kind, "model": f"b{i}", "role": "baseline", "strategy": "scratch",
             "ref_acc": 0.5, "shift_acc": 0.4, "predicted": 0.4, "er": 0.0, "er_low": -0.01, "er_high": 0.01,
             "r2": r2, "n_baseline": n, "n_copies": np.nan, "boot_low": np.nan, "boot_high": np.nan}
            for i in range(n)]
    for s, (er, lo, hi) in ers.items():
        rows.append({**rows[0], "model": f"pre/{s}", "role": "pretrained", "strategy": s, "er": er,
                     "er_low": lo, "er_high": hi, "n_copies": 2, "boot_low": lo, "boot_high": hi})
    return rows


def write_er(tmp_path: Path, frames: list[list[dict]]) -> Inputs:
    d = tmp_path / "results" / "robustness"
    d.mkdir(parents=True)
    pd.DataFrame([r for f in frames for r in f]).to_csv(d / "er.csv", index=False)
    return Inputs(["results/robustness/er.csv"], tmp_path, {"robustness": ["results/robustness/er.csv"]})


def test_robustness_claims_follow_the_rules(tmp_path):
    inputs = write_er(tmp_path, [
        er_rows("spurious_tint", "in-support", {"ft": (0.004, -0.01, 0.015), "lp": (0.09, 0.05, 0.12),
                                                "lpft": (0.049, -0.001, 0.099)}),
        er_rows("label_shift", "in-support", {"ft": (0.05, 0.03, 0.07), "lpft": (0.04, 0.021, 0.06)}),
        er_rows("unseen_tint", "out-of-support", {"ft": (0.20, 0.15, 0.25), "lpft": (0.01, 0.001, 0.019)}),
        er_rows("flip", "out-of-support", {"ft": (0.20, 0.15, 0.25), "lpft": (0.2, 0.1, 0.3)}, r2=0.2),  # fit gate
        er_rows("fonts", "natural", {"ft": (0.12, 0.10, 0.14)}),
    ])
    rows = {c.key: c for c in C.robustness_claims(inputs, RULES)}
    st = rows["er/spurious_tint/ft"]
    assert st.verdict == C.AGREES and st.value == pytest.approx(0.004) and st.paper.startswith("0.99")
    assert "LP (not judged): +9.0%" in st.detail          # LP shown, never judged
    assert rows["er/spurious_tint/lpft"].verdict == C.UNCLEAR  # +4.9 [-0.1, +9.9] is not "~0"
    assert "er/spurious_tint/lp" not in rows
    assert rows["er/label_shift/ft"].verdict == C.DISAGREES
    assert rows["er/unseen_tint/ft"].verdict == C.AGREES
    assert rows["er/unseen_tint/lpft"].verdict == C.DISAGREES  # significant, but cannot reach 2 pp
    flip = rows["er/flip/ft"]
    assert flip.verdict == C.UNCLEAR and "too poor" in flip.detail
    varies = rows["er/varies_by_shift/ft"]  # unseen_tint clearly > 0, spurious_tint clearly ~0
    assert varies.verdict == C.AGREES and "unseen_tint" in varies.ours and "spurious_tint" in varies.ours
    assert rows["er/out_above_in/ft"].verdict == C.UNCLEAR and "flip" in rows["er/out_above_in/ft"].detail
    assert rows["er/imagenet"].verdict == NOT_PRODUCED  # the published table is not an input here
    # the report's metrics: a tally of the verdicts, then each claim's verdict by key
    m = C.verdicts(list(rows.values()))
    assert m["verdicts"]["er/label_shift/ft"] == C.DISAGREES and len(m["verdicts"]) == len(rows)
    assert sum(m["claims"].values()) == len(rows) and m["claims"][C.AGREES] == sum(
        c.verdict == C.AGREES for c in rows.values()) >= 3


def test_debiased_runs_are_judged_by_the_sec7_prediction(tmp_path):
    inputs = write_er(tmp_path, [er_rows("spurious_tint", "in-support", {"ft": (0.05, 0.03, 0.07)})])
    reference = {c.key: c for c in C.robustness_claims(inputs, RULES)}["er/spurious_tint/ft"]
    debiased = {c.key: c for c in C.robustness_claims(inputs, RULES, debiased=True)}["er/spurious_tint/ft"]
    assert reference.verdict == C.DISAGREES and reference.section == "Sec. 5.1"
    assert debiased.verdict == C.AGREES and debiased.section == "Sec. 7" and "de-biased" in debiased.paper


def test_sec3_claim_is_computed_from_the_published_table(tmp_path):
    import shutil

    (tmp_path / "data/published/timm-sec3").mkdir(parents=True)
    shutil.copy(ROOT / C.PUBLISHED, tmp_path / C.PUBLISHED)
    c = C.published_claim(Inputs([C.PUBLISHED], tmp_path, {}), RULES)
    assert c.verdict == C.AGREES
    assert "V2: max +1.8%" in c.ours and "Sketch: mean +12.5%" in c.ours  # the paper: 1.80% and ~12%


def test_absent_outputs_are_not_produced(tmp_path):
    y = {"stages": {"robustness": {"outs": ["results/robustness/er.csv"]},
                    "theory": {"outs": ["results/theory"]}, "report": {"deps": ["results/robustness/er.csv"]}}}
    inputs = Inputs(declared_deps(y), tmp_path, stage_outputs(y))
    rows = C.build(inputs, RULES)
    er = next(c for c in rows if c.key == "er")
    assert er.verdict == NOT_PRODUCED and "missing on disk" in er.ours
    theory = next(c for c in rows if c.part == "theory")
    assert theory.verdict == NOT_PRODUCED
    assert "stage `theory` produces it, but it is not a dep of stage `report`" in theory.ours
    split = next(c for c in rows if c.part == "split")
    assert "no stage of dvc.yaml produces it" in split.ours


def test_inputs_only_declared_and_existing(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.csv").write_text("1")
    (tmp_path / "c.json").write_text("{}")
    inp = Inputs(["a"], tmp_path, {"s": ["a", "c.json"]})
    assert inp.has("a/b/x.csv") and inp.has("a") and not inp.has("c.json")
    assert "not a dep of stage `report`" in inp.why_absent("c.json")
    assert [p.name for p in inp.glob("a", "**/*.csv")] == ["x.csv"]
    with pytest.raises(FileNotFoundError, match="c.json"):
        inp.path("c.json")
    assert producible({"stages": {"s": {"outs": ["a"]}, "report": {"outs": ["r"]}}},
                      ["a/b/x.csv", "r", "zz"]) == ["a/b/x.csv"]


# ------------------------------------------------------------------ wiring
def test_every_part_has_a_stage_with_declared_params():
    assert tuple(PART_PARAMS) == parts.NAMES
    y = dvc_yaml()
    for name in parts.NAMES:
        stage = y["stages"][part_stage(name)]
        assert stage["cmd"] == f"python -m stages.report_part {name}"
        assert [o for o in stage["outs"]] == [f"reports/parts/{name}.{ext}" for ext in ("ipynb", "html", "json")]
        assert stage["params"] == list(STAGE_PARAMS[part_stage(name)])
    C.Rules.from_params(load_params(ROOT / "params.yaml", machine=False)["report"])


def test_report_stages_read_only_declared_pipeline_outputs():
    """Each part's stage reads exactly the pipeline outputs its part lists (that some stage of
    dvc.yaml produces), its template and code; the
    index reads the parts and what the claims need. The report's outputs are final: no
    analysis stage reads them."""
    y = dvc_yaml()
    outs = [o for name, paths in stage_outputs(y).items() if name.startswith("report") for o in paths]
    for name in y["stages"]:
        for d in declared_deps(y, name):
            if not name.startswith("report"):
                assert not any(d == o or d.startswith(o + "/") for o in outs), (name, d)
    for part in parts.PARTS:
        deps = declared_deps(y, part_stage(part.name))
        data = [d for d in deps if not d.startswith(("askshift/", "stages/", "results/params/", "reports/templates/"))]
        sources = [o for o in part.outputs if (ROOT / o).is_file()]   # in git, e.g. the paper's published table
        wanted = producible(y, list(part.outputs))
        assert sorted(data) == sorted(sources + wanted), part.name
        assert f"reports/templates/{part.name}.ipynb" in deps and "askshift/report/part.py" in deps
        assert render.HTML_TEMPLATE in deps, "every part is rendered to HTML with this template"
    index_deps = declared_deps(y, "report")
    for d in index_deps:  # every dep is either some stage's output or a source file in git
        assert d in producible(y, [d]) or d.startswith("reports/parts/") or (ROOT / d).exists(), d
    assert {f"reports/parts/{p}.{e}" for p in parts.NAMES for e in ("html", "json")} <= set(index_deps)
    # the claims' inputs are the index's deps
    for path in re.findall(r'"((?:results|data)/[^"]+)"', (ROOT / "askshift/report/claims.py").read_text()):
        assert path in index_deps, f"claims read {path}, not a dep of the index stage"
    # the report's own code is a dep of the stage that runs it (so editing it re-renders); the
    # page of `askshift ask` (ask_page.py, ask.html.j2) and the browser check are neither
    every = {d for name in y["stages"] if name.startswith("report") for d in declared_deps(y, name)}
    not_the_stage = {"__init__.py", "browser.py", "ask_page.py", "ask.html.j2"}
    for f in (ROOT / "askshift" / "report").rglob("*"):
        rel = f.relative_to(ROOT).as_posix()
        if f.is_file() and "__pycache__" not in rel and f.name not in not_the_stage:
            assert rel in every, f"{rel} is not a dep of a report stage"


@pytest.mark.parametrize("name", parts.NAMES)
def test_every_path_a_template_reads_is_one_of_its_parts_outputs(name):
    """A path written in a part's notebook must lie within the outputs its part lists (so within
    its stage's deps): otherwise the page says "not produced by this pipeline run" for a file the
    pipeline did produce (the split part once lost the difficulty control's check that way).
    A path built from a placeholder is checked up to the placeholder; a folder constant must hold
    some of the outputs."""
    nb = json.loads((TEMPLATES / f"{name}.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    outputs = parts.BY_NAME[name].outputs
    for path in set(re.findall(r'"((?:results|data|dvclive|models)/[^"]*)"', code)):
        stem = re.split(r"[{<]", path)[0]
        whole = stem == path
        # a folder constant (R = "results/robustness") must hold some of the outputs
        assert any(stem == o or stem.startswith(o + "/") or o.startswith(stem if not whole else stem + "/")
                   for o in outputs), \
            f"{name}.ipynb reads {path}, not among its part's outputs {outputs}"


def test_top_level_plots_point_at_pipeline_outputs():
    y = dvc_yaml()
    produced = [o for name, outs in stage_outputs(y).items() for o in outs]
    for entry in y["plots"]:
        (name, spec), = entry.items()
        ys = spec["y"] if isinstance(spec.get("y"), dict) else {}
        for path in ys:
            assert any(path == o or path.startswith(o + "/") for o in produced), (name, path)


@pytest.mark.parametrize("name", parts.NAMES)
def test_templates_are_parameterised(name):
    import nbformat

    nb = nbformat.read(TEMPLATES / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged parameters"
    assert "notebook.setup(" in code[1].source, "the cell after the parameters validates them"
    assert nb.metadata["kernelspec"]["name"] == render.KERNEL_NAME
    assert all(not c.get("outputs") for c in code), "templates are committed without outputs"


def test_notebook_setup_gives_the_part_only_its_declared_params(tmp_path, monkeypatch):
    """A part's notebook sees the params its stage declares and nothing else: reading another
    key raises, naming it (DVC would not re-render the part when that key changes)."""
    from askshift.report import notebook

    monkeypatch.chdir(ROOT)
    ctx = notebook.setup("robustness", None, ["results/robustness/er.csv"], quiet=True)
    assert ctx.inputs.deps == ["results/robustness/er.csv"] and ctx.inputs.stage == "report_robustness"
    assert ctx.params["robustness"]["scale"] == load_params()["robustness"]["scale"]
    assert ctx.rules == C.Rules.from_params(load_params()["report"])
    with pytest.raises(ParamsError, match="'finetune'.*does not declare"):
        ctx.params["finetune"]
    theory = notebook.setup("theory", {"report": {"show_code": False, "cell_timeout": 60}}, [], quiet=True)
    with pytest.raises(ParamsError, match="report.in_support_tolerance. but does not declare"):
        theory.rules
    with pytest.raises(ParamsError, match="expected a list of paths"):
        notebook.setup("theory", None, "results", quiet=True)
    with pytest.raises(ParamsError, match="not a report part; choose one of data, robustness"):
        notebook.setup("thoery", None, [], quiet=True)


# ------------------------------------------------------------------ provenance and index
LOCK = """schema: '2.0'
stages:
  robustness:
    cmd: python -m stages.robustness
    deps:
    - path: results/evaluate/accuracies.csv
      hash: md5
      md5: 11111111111111111111111111111111
      size: 10
    outs:
    - path: results/robustness/er.csv
      hash: md5
      md5: {md5}
      size: 4
"""


def test_provenance_hashes_and_versions(tmp_path):
    (tmp_path / "results" / "robustness").mkdir(parents=True)
    er = tmp_path / "results" / "robustness" / "er.csv"
    er.write_text("a,b\n")
    (tmp_path / "dvc.lock").write_text(LOCK.format(md5=provenance.file_md5(er)))
    (tmp_path / "src.py").write_text("print(1)\n")
    lock = provenance.lock_entries(tmp_path / "dvc.lock")
    rows = {r["path"]: r for r in provenance.input_hashes(["results/robustness/er.csv", "src.py", "gone"],
                                                          lock, tmp_path)}
    assert rows["results/robustness/er.csv"]["stage"] == "robustness"
    assert rows["results/robustness/er.csv"]["matches_disk"] is True
    assert rows["src.py"]["stage"] == "(source)" and len(rows["src.py"]["md5"]) == 32
    assert rows["gone"]["md5"] is None
    er.write_text("changed\n")
    rows = provenance.input_hashes(["results/robustness/er.csv"], lock, tmp_path)
    assert rows[0]["matches_disk"] is False
    pk = {p["package"]: p for p in provenance.package_versions(ROOT / "requirements.txt")}
    assert pk["pandas"]["installed"] == pd.__version__ and pk["pandas"]["pinned"]
    g = provenance.git_info(ROOT)
    assert g.get("commit") is None or len(g["commit"]) == 40
    assert provenance.flatten({"a": {"b": 1, "c": [1, 2], "d": {}}}) == {"a.b": 1, "a.c": [1, 2], "a.d": {}}


def test_index_page_has_the_claims_table_and_no_external_resources(tmp_path):
    inputs = write_er(tmp_path, [er_rows("spurious_tint", "in-support", {"ft": (0.004, -0.01, 0.02)})])
    rows = C.build(inputs, RULES)
    params = load_params(ROOT / "params.yaml")
    prov = {"git": {"commit": "a" * 40, "branch": "main", "dirty": True, "changed": ["x.py"]},
            "inputs": [{"path": "p", "stage": "s", "md5": "m", "size": 1, "nfiles": None, "matches_disk": False}],
            "lock": {}, "params": provenance.flatten(params), "packages": [
                {"package": "pandas", "pinned": "0.0", "installed": pd.__version__}],
            "device": {"cpu_count": 2}, "stage_times": [{"stage": "pretrain", "wall_seconds": 3.0,
                                                          "source": "results/pretrain/metrics.json"},
                                                         {"stage": "curate", "wall_seconds": None, "source": None}]}
    listing = [(p, f"parts/{p.name}.html", {}) for p in parts.PARTS]
    page = index.render(rows, listing, prov, params)
    assert '<table class="claims" id="claims">' in page
    for header in ("paper's claim", "paper's number", "ours (95% interval)", "agrees?"):
        assert header in page
    assert "v-agrees" in page and NOT_PRODUCED in page
    assert all(f'href="parts/{n}.html"' in page for n in parts.NAMES)
    assert "pinned 0.0" in page and "On disk but not as dvc.lock pins them" in page
    assert "<script" not in page and not re.search(r'(src|href)="https?:', page)
    # nothing that differs between two runs on the same inputs: those go to the run page
    assert "a" * 12 not in page and "rendered 2" not in page and "3.0 s" not in page and 'href="run.html"' in page
    ask = {"reference": {"source": "data/ask/reference", "n": 3000}, "shifted": {"source": "data/ask/<shifted>", "n": 2000},
           "verdict": {"headline": "Mixed shift: 50.2% out of support."},
           "support": {"out_of_support": {"share": 0.502, "low": 0.48, "high": 0.524}}}
    with_ask = index.render(rows, listing, prov, params, index.ask_html(ask))
    assert "Mixed shift: 50.2% out of support.</b> Out of the reference's support: 50.2% [48.0, 52.4]" in with_ask
    assert 'href="ask.html"' in with_ask and "data/ask/&lt;shifted&gt; (2000)" in with_ask.replace("</code>", "")
    assert "No answer: results/ask/ask.json was not run." in index.render(rows, listing, prov, params,
                                                                         index.ask_html(None, "was not run"))
    run = index.run_page(prov, report_seconds=1.5)
    assert "differs from this commit" in run and "not recorded" in run and "3.0 s" in run and "a" * 40 in run


# ------------------------------------------------------------------ notebooks -> HTML
TINY_NB = {
    "cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "x = 1", "outputs": [],
         "execution_count": None, "id": "p"},
        {"cell_type": "code", "metadata": {}, "id": "f", "outputs": [], "execution_count": None, "source":
         "import sys, matplotlib.pyplot as plt\nprint('exe', sys.executable, 'x', x)\n"
         "plt.plot([0, 1], [0, x]); plt.title('SECRET_CODE_MARKER' if False else 'fig'); plt.show()"},
    ],
    "metadata": {"kernelspec": {"name": render.KERNEL_NAME, "display_name": "x", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def test_execute_and_render_self_contained_html(tmp_path):
    src = tmp_path / "t.ipynb"
    src.write_text(json.dumps(TINY_NB))
    out = tmp_path / "out.ipynb"
    with render.kernel_env(ROOT) as kernel:
        render.execute(src, out, {"x": 3}, tmp_path, kernel, timeout=120)
    nb = json.loads(out.read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert f"exe {sys.executable} x 3" in text  # this interpreter, injected parameter
    html_path = tmp_path / "out.html"
    render.to_html(out, html_path, "Tiny")
    page = html_path.read_text()
    assert "data:image/png;base64," in page
    assert "SECRET_CODE_MARKER" not in page  # code cells hidden by default
    assert not re.search(r'<script[^>]+src=', page) and "cdnjs" not in page and "mathjax" not in page.lower()
    render.to_html(out, html_path, "Tiny", show_code=True)
    assert "SECRET_CODE_MARKER" in html_path.read_text()


def test_failing_notebook_names_the_cell(tmp_path):
    import papermill

    bad = json.loads(json.dumps(TINY_NB))
    bad["cells"][1]["source"] = "raise ValueError('boom in the report')"
    (tmp_path / "bad.ipynb").write_text(json.dumps(bad))
    with render.kernel_env(ROOT) as kernel, pytest.raises(papermill.PapermillExecutionError, match="boom"):
        render.execute(tmp_path / "bad.ipynb", tmp_path / "o.ipynb", {}, tmp_path, kernel, timeout=60)


# ------------------------------------------------------------------ headless Chromium
def need_chromium() -> str:
    path = browser.find_chromium()
    if path is None:
        msg = ("headless Chromium is not installed (Debian: apt-get install chromium; .ci/run installs "
               "it), so the rendered HTML cannot be opened in a browser")
        if os.environ.get("ASKSHIFT_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " but ASKSHIFT_REQUIRE_BROWSER=1")
        pytest.skip(msg)
    return path


PNG_1PX = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def test_browser_check_catches_broken_figures_and_errors(tmp_path):
    need_chromium()
    good = tmp_path / "good.html"
    good.write_text(f'<html><head></head><body><p>hi</p><img src="data:image/png;base64,{PNG_1PX}"></body></html>')
    c = browser.check_page(good)
    assert c.ok and c.images == 1 and not c.broken, c
    bad = tmp_path / "bad.html"
    bad.write_text('<html><head></head><body><p>hi</p><img src="missing.png">'
                   '<img src="data:image/png;base64,AAAA"><script>undefinedFunction()</script></body></html>')
    c = browser.check_page(bad)
    assert not c.ok and len(c.broken) == 2
    assert any("failed to load" in e for e in c.errors) and any("undefinedFunction" in e for e in c.errors)


def check_report_dir(reports: Path) -> None:
    """What the end-to-end test asserts about a rendered report (also usable by hand)."""
    page = (reports / "index.html").read_text(encoding="utf-8")
    assert '<table class="claims" id="claims">' in page and "agrees?" in page
    assert 'href="ask.html"' in page                     # the ask stage's answer, linked from the index
    table = pd.read_csv(reports / "claims.csv")
    assert {"section", "claim", "paper", "ours", "verdict", "rule"} <= set(table.columns)
    assert table["verdict"].isin([C.AGREES, C.DISAGREES, C.UNCLEAR, C.ABSENT, C.NOT_HERE]).all()
    assert (table["part"] == "robustness").sum() >= 5
    for name in parts.NAMES:
        assert (reports / "parts" / f"{name}.html").stat().st_size > 0
        nb = json.loads((reports / "parts" / f"{name}.ipynb").read_text())
        outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
        shown = [o for o in outputs if o["output_type"] == "error" or o.get("name") == "stderr"]
        assert shown == [], f"{name}: an error or a warning is shown on the page: {shown}"
        html_text = "".join("".join(o.get("data", {}).get("text/html", "")) for o in outputs)
        assert "<b>Warning:</b>" not in html_text and "could not be drawn" not in html_text, name
        if name != "sweeps":  # every analysis ran: no part may say one was not produced
            assert "askshift-absent" not in html_text, f"{name}: a box says an input was not produced"
    need_chromium()
    for html_file in [reports / "index.html", *sorted((reports / "parts").glob("*.html"))]:
        c = browser.check_page(html_file)
        assert c.ok, f"{html_file.name}: broken images {c.broken}, errors {c.errors}"
        if html_file.stem in ("data", "robustness"):
            assert c.images >= 2, f"{html_file.name}: only {c.images} figures"
    assert browser.check_page(reports / "index.html").tables >= 3
    ask = browser.check_page(reports / "ask.html")        # the ask stage's page, self-contained
    assert ask.ok and ask.images >= 2, f"ask.html: {ask}"


def test_screenshot(tmp_path):
    need_chromium()
    page = tmp_path / "p.html"
    page.write_text("<html><head></head><body><h1>report</h1></body></html>")
    shot = browser.screenshot(page, tmp_path / "p.png", width=400, height=300)
    from PIL import Image

    assert Image.open(shot).size == (400, 300)


def test_stage_claims_contract():
    doc = {"claims": [
        {"claim": "robust", "paper": "p", "er": 0.05, "low": 0.02, "high": 0.08, "rule": "positive",
         "r2": 0.9, "n_baseline": 5, "what": "arm x"},
        {"claim": "poor fit", "er": 0.05, "low": 0.02, "high": 0.08, "rule": "positive", "r2": 0.1, "n_baseline": 5},
        {"claim": "spread", "er": 1e-12, "low": 1e-12, "high": 1e-12, "rule": "near_zero", "unit": "raw"},
        {"claim": "a above b", "er": 0.10, "low": 0.08, "high": 0.12, "rule": "above",
         "than": {"er": 0.01, "low": -0.01, "high": 0.03, "what": "scratch"}},
        {"claim": "broken", "er": "x"},
    ]}
    rows = C.claims_from_metrics(doc, "Sec. 6", "t", "paper", "interventions", RULES)
    assert [r.verdict for r in rows] == [C.AGREES, C.UNCLEAR, C.AGREES, C.AGREES, C.UNCLEAR]
    assert "r² = 0.90" in rows[0].detail and "too poor" in rows[1].detail
    assert rows[2].ours == "1e-12" and "vs scratch" in rows[3].ours and "malformed" in rows[4].ours
    empty = C.claims_from_metrics({}, "Sec. 4", "t", "paper", "theory", RULES)
    assert empty[0].verdict == C.UNCLEAR and "no `claims` entry" in empty[0].detail


def test_plot_templates_are_valid():
    for entry in dvc_yaml()["plots"]:
        (name, spec), = entry.items()
        tpl = spec.get("template", "")
        if tpl.endswith(".json"):
            text = (ROOT / tpl).read_text()
            json.loads(text)
            assert '"<DVC_METRIC_DATA>"' in text, tpl


def test_inputs_folder_holding_single_file_deps(tmp_path):
    d = tmp_path / "results" / "x"
    d.mkdir(parents=True)
    for name in ("er.csv", "big.parquet", "metrics.json"):
        (d / name).write_text("1")
    inp = Inputs(["results/x/er.csv", "results/x/metrics.json", "results/x/gone.csv"], tmp_path)
    assert inp.has("results/x") and inp.has("results/x/er.csv") and not inp.has("results/x/big.parquet")
    assert [p.name for p in inp.glob("results/x", "*")] == ["er.csv", "metrics.json"]
    assert not inp.has("results/x/gone.csv") and "missing on disk" in inp.why_absent("results/x/gone.csv")


def test_stage_times_from_timing_files(tmp_path):
    """Wall times come from results/timings/<stage>.json, never from a metrics file."""
    (tmp_path / "results" / "timings").mkdir(parents=True)
    (tmp_path / "results" / "timings" / "a.json").write_text('{"stage": "a", "wall_seconds": 3.5}')
    (tmp_path / "results" / "timings" / "b.json").write_text('{"stage": "b"}')
    (tmp_path / "results" / "m.json").write_text('{"wall_seconds": 9.0}')
    y = {"stages": {"a": {"metrics": ["results/m.json"]}, "b": {"outs": ["x"]}, "c": {"outs": ["y"]},
                    "report": {"deps": []}}}
    times = {t["stage"]: t["wall_seconds"] for t in provenance.stage_times(y, tmp_path)}
    assert times == {"a": 3.5, "b": None, "c": None}


def test_a_part_that_raises_fails_its_stage_naming_part_and_cell(tmp_path, monkeypatch):
    """A theory part whose input is not in the shape it expects: its stage fails (no warning
    box), names the part and the cell, keeps the partly executed notebook and writes no part;
    then the index refuses to render without it, naming the stage that renders it."""
    import shutil

    from askshift.report import build, part

    (tmp_path / "reports" / "templates").mkdir(parents=True)
    shutil.copy(TEMPLATES / "theory.ipynb", tmp_path / "reports" / "templates")
    (tmp_path / "results" / "theory").mkdir(parents=True)
    (tmp_path / "results" / "theory" / "details.json").write_text('{"theorem": 3}')  # not a mapping
    (tmp_path / "reports" / "index.html").write_text("previous report")
    y = {"stages": {"theory": {"outs": ["results/theory/details.json"]},
                    "report_theory": {"deps": ["results/theory/details.json"], "outs": ["reports/parts/theory.html"]},
                    "report": {"deps": ["results/theory/details.json"], "outs": ["reports/index.html"]}}}
    YAML().dump(y, (tmp_path / "dvc.yaml").open("w"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(part.ReportError) as e:
        part.render_part("theory", {"report": {"show_code": False, "cell_timeout": 120}})
    assert "part 'theory' failed" in str(e.value) and "In [" in str(e.value)
    assert "AttributeError: 'int' object has no attribute 'items'" in str(e.value)  # F.flatten(3)
    assert (tmp_path / "reports" / ".failed" / "theory.ipynb").exists()
    assert not (tmp_path / "reports" / "parts").exists() and not list((tmp_path / "reports").glob(".tmp-*"))
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    with pytest.raises(build.ReportError, match=r"data.html .*missing: stage `report_data` renders it"):
        build.build_index(load_params("params.yaml", machine=False))
    assert (tmp_path / "reports" / "index.html").read_text() == "previous report"


def test_a_part_rendered_twice_is_byte_identical(tmp_path):
    """Same template, same parameters: the executed notebook and its HTML are the same bytes
    (papermill's times, the kernel's timestamps and the injected cell's random id stripped), so
    the report stage's outputs compare equal between two runs on the same inputs."""
    src = tmp_path / "t.ipynb"
    src.write_text(json.dumps(TINY_NB))
    pages = []
    with render.kernel_env(ROOT) as kernel:
        for i in range(2):
            out = tmp_path / f"run{i}" / "t.ipynb"
            out.parent.mkdir()
            render.execute(src, out, {"x": 3}, tmp_path, kernel, timeout=120)
            render.strip_run_metadata(out)
            render.to_html(out, out.with_suffix(".html"), "Tiny")
            pages.append((out.read_bytes(), out.with_suffix(".html").read_bytes()))
    assert pages[0] == pages[1]
