"""reports/index.html: the claims table, links to every part, and the provenance of the run.

A pure function of its arguments (claims, parts, provenance) -> one self-contained HTML page
(inline CSS, no scripts, no external resources).
"""
from __future__ import annotations

import datetime as dt
import html
from collections import Counter

from askshift.report import claims as C
from askshift.report.parts import Part

VERDICT_CLASS = {C.AGREES: "agrees", C.DISAGREES: "disagrees", C.UNCLEAR: "unclear",
                 C.ABSENT: "absent", C.NOT_HERE: "absent"}

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d1d1d;
  max-width: 1180px; margin: 0 auto; padding: 8px 18px 48px; line-height: 1.45; font-size: 15px; }
h1 { font-size: 24px; margin: 18px 0 6px; } h2 { font-size: 19px; margin-top: 30px;
  border-bottom: 1px solid #ddd; padding-bottom: 3px; } h3 { font-size: 16px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13.5px; }
th, td { border: 1px solid #d6d6d6; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
table.claims { table-layout: fixed; width: 100%; }
table.claims td.ours { font-variant-numeric: tabular-nums; }
table.claims th:nth-child(1) { width: 7%; } table.claims th:nth-child(2) { width: 22%; }
table.claims th:nth-child(3) { width: 11%; } table.claims th:nth-child(4) { width: 21%; }
table.claims th:nth-child(5) { width: 9%; } table.claims th:nth-child(6) { width: 21%; }
table.claims th:nth-child(7) { width: 9%; }
table.claims td { overflow-wrap: break-word; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.v { font-weight: bold; white-space: nowrap; }
.v-agrees { color: #0a6b2b; } .v-disagrees { color: #b00020; } .v-unclear { color: #8a5a00; }
.v-absent { color: #6b6b6b; font-weight: normal; white-space: normal; }
tr.row-disagrees { background: #fdecee; } tr.row-unclear { background: #fff8e6; }
tr.row-absent td { color: #6b6b6b; }
.small { font-size: 12.5px; color: #555; }
.box { border-left: 5px solid #5b7bb5; background: #eef3fb; padding: 8px 12px; margin: 10px 0; }
.warn { border-left: 5px solid #c77c00; background: #fff6e5; padding: 8px 12px; margin: 10px 0; }
code { font-size: 12.5px; background: #f4f4f4; padding: 0 3px; }
details { margin: 6px 0; } summary { cursor: pointer; font-weight: 600; }
.tally span { margin-right: 14px; }
"""


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


def _table(rows: list[dict], cols: list[str], headers: list[str] | None = None, num: set = frozenset(),
           cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in (headers or cols))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if c in num else ""}>{_e(r.get(c))}</td>' for c in cols)
                   + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def claims_table(claims: list[C.Claim], part_links: dict[str, str]) -> str:
    rows = []
    for c in claims:
        v = VERDICT_CLASS.get(c.verdict, "absent")
        link = part_links.get(c.part)
        where = f'<a href="{_e(link)}">{_e(c.part)}</a>' if link else _e(c.part)
        detail = " ".join(x for x in (_e(c.detail), f"<i>Rule:</i> {_e(c.rule)}" if c.rule else "") if x)
        rows.append(
            f'<tr class="row-{v}"><td>{_e(c.section)}</td><td>{_e(c.claim)}</td><td>{_e(c.paper)}</td>'
            f'<td class="ours">{_e(c.ours).replace(chr(10), "<br>")}</td><td><span class="v v-{v}">{_e(c.verdict)}</span></td>'
            f'<td class="small">{detail}</td><td>{where}</td></tr>')
    head = ("<tr><th>section</th><th>paper's claim</th><th>paper's number</th>"
            "<th>ours (95% interval)</th><th>agrees?</th><th>how it was judged</th><th>part</th></tr>")
    return f'<table class="claims" id="claims"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _size(n) -> str:
    if n is None:
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def provenance_html(prov: dict) -> str:
    """What the numbers were computed from: inputs, outputs, params, packages. A function of the
    report's inputs; how and when this workspace ran it is on the run page."""
    out = ["<h2 id='provenance'>Provenance</h2>",
           '<p class="small">The commit, date, machine and wall time of each stage of the last run in this '
           'workspace are on <a href="run.html">run.html</a>, written beside this page but not versioned: '
           "they differ on every run, while this page depends only on the report's inputs.</p>"]
    inputs = [{**r, "size": _size(r["size"]), "md5": r["md5"] or "missing",
               "matches": {True: "yes", False: "NO", None: ""}[r["matches_disk"]]} for r in prov["inputs"]]
    mism = [r["path"] for r in prov["inputs"] if r["matches_disk"] is False]
    warn = (f'<div class="warn">On disk but not as dvc.lock pins them: {_e(", ".join(mism))}</div>'
            if mism else "")
    out.append("<h3>Inputs of this report (dvc.lock hashes)</h3>" + warn + "<details><summary>"
               f"{len(inputs)} inputs</summary>"
               + _table(inputs, ["path", "stage", "md5", "size", "nfiles", "matches"],
                        ["path", "made by stage", "md5 (dvc.lock)", "size", "files", "file on disk matches"])
               + "</details>")
    lock_rows = [{"stage": s, "path": o["path"], "md5": o["md5"], "size": _size(o["size"]),
                  "nfiles": o["nfiles"]} for s, st in prov["lock"].items() if s != "report" for o in st["outs"]]
    out.append(f"<details><summary>Every output pinned in dvc.lock ({len(lock_rows)})</summary>"
               + _table(lock_rows, ["stage", "path", "md5", "size", "nfiles"]) + "</details>")

    params = [{"key": k, "value": v} for k, v in prov["params"].items()]
    out.append(f"<h3>Parameters</h3><details><summary>params.yaml ({len(params)} keys)</summary>"
               + _table(params, ["key", "value"]) + "</details>")

    pk = prov["packages"]
    off = [p for p in pk if p["pinned"] and p["installed"] != p["pinned"]]
    differ = ", ".join(f"{p['package']} {p['installed']} (pinned {p['pinned']})" for p in off)
    warn = (f'<div class="warn">Installed versions differ from requirements.txt: {_e(differ)}</div>'
            if off else "")
    out.append("<h3>Packages</h3>" + warn + f"<details><summary>{len(pk)} packages</summary>"
               + _table(pk, ["package", "pinned", "installed"]) + "</details>")
    return "\n".join(out)


def run_page(prov: dict, report_seconds: float | None = None, now: dt.datetime | None = None) -> str:
    """The last run of this workspace: commit (and uncommitted changes), date, machine, and the
    wall time of each stage (from results/timings/)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    g = prov["git"]
    out = [f"<h1>The last run of this workspace</h1><p>Report rendered {now.strftime('%Y-%m-%d %H:%M UTC')}. "
           '<a href="index.html">Back to the report</a>.</p>']
    if g.get("commit"):
        dirty = (f'<div class="warn">The working tree differs from this commit in '
                 f'{len(g["changed"])} tracked file(s): {_e(", ".join(g["changed"][:12]))}'
                 f'{" …" if len(g["changed"]) > 12 else ""}. The numbers come from that modified tree.</div>'
                 if g.get("dirty") else "")
        out.append(f"<p>Git commit <code>{_e(g['commit'])}</code> on <code>{_e(g.get('branch'))}</code>"
                   f" ({_e(g.get('date'))}): {_e(g.get('subject'))}</p>{dirty}")
    else:
        out.append(f'<div class="warn">Git commit unknown: {_e(g.get("error"))}</div>')
    times = [{"stage": t["stage"], "wall time": f"{t['wall_seconds']:.1f} s" if t["wall_seconds"] is not None
              else "not recorded", "from": t["source"] or "–"} for t in prov["stage_times"]]
    if report_seconds is not None:
        times.append({"stage": "report", "wall time": f"{report_seconds:.1f} s", "from": "this stage"})
    out.append("<h2>Wall time of each stage</h2>" + _table(times, ["stage", "wall time", "from"]))
    out.append('<p class="small">Recorded by each stage in <code>results/timings/&lt;stage&gt;.json</code> '
               "(kept out of the metrics: timings differ between identical runs); \"not recorded\" means that "
               "file is absent here, e.g. the outputs came from <code>dvc pull</code> or the run cache.</p>")
    dev = [{"key": k, "value": ", ".join(v) if isinstance(v, list) else v} for k, v in prov["device"].items()]
    out.append("<h2>Device</h2><p class='small'>The machine that ran the report stage.</p>"
               + _table(dev, ["key", "value"]))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>askshift: the last run</title>'
            f"<style>{CSS}</style></head><body>{''.join(out)}</body></html>\n")


def ask_html(ask: dict | None, why_absent: str = "") -> str:
    """The index's pointer to the `ask` stage's page: its pair, verdict and share, or why absent."""
    if ask is None:
        return f'<p class="small">No answer: results/ask/ask.json {_e(why_absent)}.</p>'
    o = ask["support"]["out_of_support"]
    return (f'<p><code>{_e(ask["reference"]["source"])}</code> ({ask["reference"]["n"]} images) against '
            f'<code>{_e(ask["shifted"]["source"])}</code> ({ask["shifted"]["n"]}): <b>{_e(ask["verdict"]["headline"])}</b> '
            f'Out of the reference\'s support: {100 * o["share"]:.1f}% [{100 * o["low"]:.1f}, {100 * o["high"]:.1f}]. '
            '<a href="ask.html">The answer page</a> (stage <code>ask</code>; params <code>ask.reference</code>, '
            '<code>ask.shifted</code>).</p>')


def render(claims: list[C.Claim], parts: list[tuple[Part, str, dict[str, str]]], prov: dict,
           params: dict, ask: str = "") -> str:
    """parts: (part, link to its HTML, {absent input: why}); ask: :func:`ask_html`. A function of
    the report's inputs (no date, commit or timing: those are on the run page)."""
    tally = Counter(c.verdict for c in claims)
    links = {p.name: link for p, link, _ in parts}
    part_items = []
    for p, link, missing in parts:
        status = ("all inputs available" if not missing else
                  f"{len(missing)} of {len(p.outputs)} inputs not produced by this pipeline run")
        part_items.append(f'<li><a href="{_e(link)}">{_e(p.title)}</a> <span class="small">({_e(p.section)}; '
                          f"{_e(status)})</span><br><span class='small'>{_e(p.summary)}</span></li>")
    r = params["robustness"]
    rep = params["report"]
    rules_ = C.Rules.from_params(rep)
    rules = "".join(f"<li>{_e(t)}</li>" for t in (
        f"In-support shifts (paper: ER ≈ 0) are an equivalence test: {rules_.text('near_zero')} "
        "(report.in_support_tolerance). A wide interval around 0 is never an agreement.",
        f"Out-of-support shifts (paper: ER > 0, large): {rules_.text('positive')} (report.min_effect).",
        f"Comparisons (A above B): {C.RULES['above']}.",
        f"Fit gate: when a baseline fit has fewer than 3 models or r² < {rep['min_fit_r2']:g} "
        "(report.min_fit_r2) the verdict is 'unclear', whatever the number.",
        "Each of the paper's strategies (FT and LP-FT) is judged on its own; LP is shown in the detail, never "
        "judged. Fine-tuned on the de-biased sets (finetune.dataset: debiased), the in-support shifts are "
        "judged by the Sec. 7 prediction (ER > 0) instead of ≈ 0.",
        "'not produced by this pipeline run': the analysis's outputs are not inputs of the stage that renders "
        "the part (report_<part>; its own stage is missing from dvc.yaml, not wired into that stage's deps, "
        "or did not run)."))
    summary = (f"World <code>{_e(params['world'])}</code>, seed {params['seed']}, pre-trained models "
               f"fine-tuned on the <code>{_e(params['finetune']['dataset'])}</code> set; ER on the "
               f"{_e(r['scale'])} scale of {_e(r['metric'].replace('_', ' '))} with "
               f"{100 * r['confidence']:g}% intervals. Which commit rendered it, when and where: "
               '<a href="run.html">run.html</a>.')
    counts = "".join(f'<span class="v v-{VERDICT_CLASS.get(v, "absent")}">{n} {_e(v)}</span>'
                     for v, n in sorted(tally.items(), key=lambda kv: list(VERDICT_CLASS).index(kv[0])
                                        if kv[0] in VERDICT_CLASS else 99))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>askshift report: does pre-training help on this shift?</title>
<style>{CSS}</style></head>
<body>
<h1>Ask your distribution shift if pre-training is right for you: the audit</h1>
<p>Every claim of Cohen-Wang, Vendrow &amp; Madry (TMLR 2025) that this pipeline measures, next to
our number and interval, and whether they agree by the rule stated below. The paper's rule of
thumb: <b>pre-training helps on out-of-support shifts but does not undo biases of the
fine-tuning data (in-support shifts)</b>.</p>
<div class="box">{summary}</div>
<h2 id="claims-h">Claims</h2>
<p class="tally">{counts}</p>
{claims_table(claims, links)}
<p class="small">ER is in percentage points of accuracy (shifted accuracy minus the baseline line's
prediction). Each "ours" number links to the part that shows how it was measured.</p>
<h3>How "agrees?" is decided</h3>
<ul class="small">{rules}</ul>
<h2 id="parts">Parts of the report</h2>
<ul>{"".join(part_items)}</ul>
<h2 id="ask">Ask your own shift</h2>
{ask}
{provenance_html(prov)}
</body></html>
"""
