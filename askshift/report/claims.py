"""The claims table: each claim of the paper, the paper's number, ours with its interval, and
whether they agree, decided by an explicit rule from our number and interval (never by hand).

Rules (all ER in accuracy units; intervals are the official 95% mean-prediction band):
- NEAR_ZERO (in-support shifts, "pre-training does not help"): agrees when |ER| < tolerance
  (`report.in_support_tolerance`, default 1 percentage point), or when the interval contains 0
  and is narrow enough to mean something (half-width <= `report.max_half_width`, default 5 pp);
  unclear when the interval contains 0 but is wider than that; disagrees otherwise.
- POSITIVE (out-of-support shifts, "pre-training helps"): agrees when the interval's lower
  bound is > 0; disagrees otherwise.
- SEPARATED ("ER of A exceeds ER of B"): agrees when A's lower bound is above B's upper bound;
  disagrees when A's point estimate is not above B's; unclear in between (ordered, overlapping).
- FIT GATE: ER only means something where the baseline fit is good. When the fit of a shift
  has fewer than 3 baseline models or r^2 < `report.min_fit_r2`, its verdict is "unclear" (the
  measured number is still shown).
A claim whose measurement this run did not produce gets "not produced by this pipeline run".
ER of several pre-trained strategies is summarised by their mean; its interval is the mean of
their intervals (all share one baseline fit, so their band errors move together).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from askshift.report.figures import er_text, pct
from askshift.report.inputs import NOT_PRODUCED, Inputs

AGREES, DISAGREES, UNCLEAR, ABSENT, NOT_HERE = ("agrees", "disagrees", "unclear", NOT_PRODUCED,
                                                 "not measured in this world")

RULES = {
    "near_zero": "agrees if |ER| < {tol}, or if the 95% interval contains 0 and its half-width is "
                 "at most {width}; unclear if it contains 0 but is wider",
    "positive": "agrees if the 95% interval's lower bound is > 0",
    "separated": "agrees if the lower bound of the first exceeds the upper bound of the second; "
                 "unclear if only the point estimates are ordered",
}

PAPER_SHIFT_CLAIMS = {
    # shift: (section, paper's number)
    "spurious_tint": ("Sec. 5.1", "0.99 ± 0.72% (≈ 0)"),
    "label_shift": ("Sec. 5.1", "≈ 0"),
    "unseen_tint": ("Sec. 5.1", "large, > 0"),
    "flip": ("Sec. 5.1", "large, > 0"),
    "pad": ("Sec. 5.1 (earlier version)", "large, > 0"),
}


@dataclass(frozen=True)
class Rules:
    """The thresholds of the rules (params.yaml `report` section)."""

    tolerance: float = 0.01        # |ER| below this counts as ~0 (in_support_tolerance)
    min_fit_r2: float = 0.5        # fit gate
    max_half_width: float = 0.05   # an interval containing 0 but wider than this is inconclusive

    @classmethod
    def from_params(cls, report: dict) -> "Rules":
        return cls(report["in_support_tolerance"], report["min_fit_r2"], report["max_half_width"])


@dataclass
class Claim:
    key: str              # stable id, e.g. "er/spurious_tint" (tests, claims.csv)
    section: str
    claim: str
    paper: str
    ours: str = ""
    verdict: str = ABSENT
    rule: str = ""
    detail: str = ""
    part: str = ""
    value: float | None = None
    low: float | None = None
    high: float | None = None
    extra: dict = field(default_factory=dict)

    def as_row(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d


# --------------------------------------------------------------------------- rules
def near_zero(er: float, low: float, high: float, tol: float, max_half_width: float = np.inf) -> str:
    if abs(er) < tol:
        return AGREES
    if low <= 0 <= high:
        return AGREES if (high - low) / 2 <= max_half_width else UNCLEAR
    return DISAGREES


def positive(er: float, low: float, high: float) -> bool:
    return bool(low > 0)


def separated(a: tuple[float, float, float], b: tuple[float, float, float]) -> str:
    """a, b = (er, low, high): is a above b?"""
    if a[1] > b[2]:
        return AGREES
    if a[0] > b[0]:
        return UNCLEAR
    return DISAGREES


def fit_ok(r2: float, n: int, min_r2: float) -> bool:
    return bool(n >= 3 and np.isfinite(r2) and r2 >= min_r2)


# --------------------------------------------------------------------------- measurements
def shift_summary(er: pd.DataFrame) -> pd.DataFrame:
    """Per shift: mean ER over the pre-trained strategies, the mean of their intervals, the
    fit's r^2 and n, and which strategies entered."""
    pre = er[er["role"] == "pretrained"]
    rows = []
    for (shift, kind), g in pre.groupby(["shift", "kind"], sort=False):
        rows.append({"shift": shift, "kind": kind, "er": g["er"].mean(), "low": g["er_low"].mean(),
                     "high": g["er_high"].mean(), "r2": float(g["r2"].iloc[0]),
                     "n_baseline": int(g["n_baseline"].iloc[0]),
                     "strategies": ", ".join(g["strategy"].astype(str).str.upper())})
    return pd.DataFrame(rows)


def _pp(x: float) -> str:
    return f"{100 * x:g} pp"


def _shift_claim(key, section, text, paper, s: pd.Series, rule: str, rules: Rules) -> Claim:
    tol, min_r2, max_half_width = rules.tolerance, rules.min_fit_r2, rules.max_half_width
    c = Claim(key, section, text, paper, part="robustness", value=s.er, low=s.low, high=s.high)
    c.ours = er_text(s.er, s.low, s.high)
    c.detail = f"mean over {s.strategies}; fit r² = {s.r2:.2f}, n = {s.n_baseline} baselines"
    if rule == "near_zero":
        c.rule = RULES["near_zero"].format(tol=_pp(tol), width=_pp(max_half_width))
        c.verdict = near_zero(s.er, s.low, s.high, tol, max_half_width)
        if c.verdict == UNCLEAR:
            c.detail += f" (interval half-width {_pp(round((s.high - s.low) / 2, 4))}: too wide to tell)"
    else:
        c.rule = RULES["positive"]
        c.verdict = AGREES if positive(s.er, s.low, s.high) else DISAGREES
    if not fit_ok(s.r2, s.n_baseline, min_r2):
        c.verdict = UNCLEAR
        c.detail += f" (fit too poor to judge: needs n ≥ 3 and r² ≥ {min_r2:g})"
    return c


def robustness_claims(inputs: Inputs, rules: Rules) -> list[Claim]:
    min_r2 = rules.min_fit_r2
    er_path = "results/robustness/er.csv"
    texts = {
        "in-support": "Pre-training gives ~no effective robustness on an in-support shift ({name})",
        "out-of-support": "Pre-training gives effective robustness on an out-of-support shift ({name})",
    }
    if not inputs.has(er_path):
        return [Claim("er", "Sec. 3, 5.1", "Effective robustness per shift", "see paper",
                      ours=inputs.why_absent(er_path), part="robustness")]
    summ = shift_summary(pd.read_csv(inputs.path(er_path)))
    claims = []

    # Sec. 3: ER varies by shift
    nat = summ[summ["kind"] == "natural"].sort_values("er")
    c = Claim("er/varies_by_shift", "Sec. 3", "ER of pre-trained models varies a lot from one natural shift to another",
              "ImageNet-V2: max ER 1.80%; ImageNet-Sketch: mean ER ≈ 12%", part="robustness",
              rule=RULES["separated"])
    if len(nat) >= 2:
        lo, hi = nat.iloc[0], nat.iloc[-1]
        c.ours = f"{hi['shift']}: {er_text(hi.er, hi.low, hi.high)}\n{lo['shift']}: {er_text(lo.er, lo.low, lo.high)}"
        c.verdict = separated((hi.er, hi.low, hi.high), (lo.er, lo.low, lo.high))
        c.detail = f"natural shifts of this world, largest vs smallest mean ER; fit r² {hi.r2:.2f} / {lo.r2:.2f}"
        if not (fit_ok(hi.r2, hi.n_baseline, min_r2) and fit_ok(lo.r2, lo.n_baseline, min_r2)):
            c.verdict = UNCLEAR
            c.detail += f" (a fit is too poor to judge: needs n ≥ 3 and r² ≥ {min_r2:g})"
    else:
        c.ours, c.verdict = "fewer than two natural shifts in this run", UNCLEAR
    claims.append(c)
    claims.append(Claim("er/imagenet", "Sec. 3", "Max ER 1.80% on ImageNet-V2, mean ER ≈ 12% on ImageNet-Sketch (55 "
                        "pre-trained vs 78 scratch timm models)", "1.80% / ≈ 12%",
                        ours="ImageNet models are not part of this world; 'python -m askshift er' on "
                        "the paper's accuracy table gives 1.78% / 12.5%", verdict=NOT_HERE,
                        part="robustness"))

    # Sec. 5.1: one row per synthetic shift the run measured
    for kind in ("in-support", "out-of-support"):
        for s in summ[summ["kind"] == kind].itertuples():
            section, paper = PAPER_SHIFT_CLAIMS.get(
                s.shift, ("Sec. 5.1 (extra shift)", "not in the paper: this world's extra shift"))
            rule = "near_zero" if kind == "in-support" else "positive"
            claims.append(_shift_claim(f"er/{s.shift}", section, texts[kind].format(name=s.shift), paper, s, rule,
                                       rules))

    # The rule of thumb: out-of-support ER above in-support ER
    ins, outs = summ[summ["kind"] == "in-support"], summ[summ["kind"] == "out-of-support"]
    c = Claim("er/out_above_in", "Sec. 5.1", "Out-of-support shifts get more ER from pre-training than in-support shifts",
              "in-support ≈ 0; out-of-support large", part="robustness",
              rule="agrees if the smallest out-of-support lower bound exceeds the largest "
                   "in-support upper bound; unclear if only the point estimates are ordered")
    if len(ins) and len(outs):
        a = outs.loc[outs["er"].idxmin()]
        b = ins.loc[ins["er"].idxmax()]
        a_low, b_high = outs["low"].min(), ins["high"].max()
        c.ours = (f"lowest out-of-support: {a['shift']} {er_text(a.er, a.low, a.high)}\n"
                  f"highest in-support: {b['shift']} {er_text(b.er, b.low, b.high)}")
        c.verdict = AGREES if a_low > b_high else UNCLEAR if outs["er"].min() > ins["er"].max() else DISAGREES
        bad = [r.shift for r in pd.concat([ins, outs]).itertuples() if not fit_ok(r.r2, r.n_baseline, min_r2)]
        if bad:
            c.verdict = UNCLEAR
            c.detail = f"fit too poor to judge for: {', '.join(bad)}"
    else:
        c.ours, c.verdict = "needs at least one in- and one out-of-support shift", UNCLEAR
    claims.append(c)
    return claims


# --------------------------------------------------------------------------- other parts
def _metrics(inputs: Inputs, path: str) -> dict | None:
    if not inputs.has(path):
        return None
    try:
        doc = json.loads(inputs.path(path).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


PART_CLAIMS = (
    # part, details file, section, claim, paper's number
    ("theory", "results/theory/details.json", "Sec. 4",
     "Gradient descent from any initialisation makes identical in-support predictions; "
     "out-of-support accuracy depends on the initialisation and a pre-trained one wins",
     "holds exactly (Theorem 4.1)"),
    ("split", "results/robustness/details.json", "Sec. 5.2",  # ER per part: the robustness stage
     "Out-of-support parts of a natural shift get far more ER than its in-support parts",
     "Sketch: 12.3% vs 1.1%"),
    ("interventions", "results/interventions/details.json", "Sec. 6",
     "Pre-training and DFR each add ER, their combination the most, and the examples each "
     "corrects barely overlap", "FMoW, 64 trials per arm"),
    ("debiased", "results/debiased/details.json", "Sec. 7",
     "A pre-trained model fine-tuned on a small curated de-biased set is accurate and robust; "
     "fine-tuned on the full biased set it has ~0 ER", "64 CelebA images suffice"),
)


def _arm(er: pd.DataFrame, arm: str):
    g = er[er["arm"] == arm]
    return None if g.empty else g.iloc[0]


def interventions_claims(inputs: Inputs, rules: Rules, section: str, paper: str) -> list[Claim]:
    """Sec. 6 from results/interventions/{er,overlap}.csv, on the shifts that have both an
    in-support (bias) and an out-of-support component (names with "+", e.g. tint+pad), or on
    every shift when there is none: pre-training adds ER, DFR adds ER, their combination the
    most; the examples each corrects overlap no more than chance."""
    er_path, ov_path = "results/interventions/er.csv", "results/interventions/overlap.csv"
    if not inputs.has(er_path):
        return []
    er = pd.read_csv(inputs.path(er_path))
    keys = list(dict.fromkeys(zip(er["variant"], er["shift"])))
    composed = [k for k in keys if "+" in str(k[1])]
    out = []
    for variant, shift in composed or keys:
        g = er[(er["variant"] == variant) & (er["shift"] == shift)]
        arms = {a: _arm(g, a) for a in ("scratch", "scratch_dfr", "pretrained", "pretrained_dfr")}
        if any(v is None for v in arms.values()):
            continue
        r2, n = float(g["r2"].iloc[0]), int(g["n_baseline"].iloc[0])
        fit = f"; fit r² = {r2:.2f}, n = {n}"
        for key, text, a, b in (
                ("pretraining", "Pre-training adds ER over training from scratch", "pretrained", "scratch"),
                ("dfr", "DFR adds ER over the scratch model", "scratch_dfr", "scratch"),
                ("both", "Pre-training + DFR gives the most ER", "pretrained_dfr",
                 max(("pretrained", "scratch_dfr"), key=lambda x: arms[x]["er"]))):
            A, B = arms[a], arms[b]
            c = Claim(f"interventions/{key}/{variant}/{shift}", section, f"{text} ({variant} → {shift})", paper,
                      part="interventions", value=float(A["er"]), low=float(A["er_low"]), high=float(A["er_high"]),
                      rule=RULES["separated"],
                      ours=f"{a}: {er_text(A['er'], A['er_low'], A['er_high'])}\n{b}: "
                           f"{er_text(B['er'], B['er_low'], B['er_high'])}",
                      detail=f"trial-averaged arms ({int(A['n_trials'])} trials){fit}")
            c.verdict = separated((A["er"], A["er_low"], A["er_high"]), (B["er"], B["er_low"], B["er_high"]))
            if not fit_ok(r2, n, rules.min_fit_r2):
                c.verdict = UNCLEAR
                c.detail += f" (fit too poor to judge: needs n ≥ 3 and r² ≥ {rules.min_fit_r2:g})"
            out.append(c)
        if inputs.has(ov_path):
            ov = pd.read_csv(inputs.path(ov_path))
            pair = ov[(ov["variant"] == variant) & (ov["shift"] == shift)
                      & (ov[["arm_a", "arm_b"]].apply(frozenset, axis=1) == frozenset(("pretrained", "scratch_dfr")))]
            if len(pair):
                p = pair.iloc[0]
                n_pre = p["n_a"] if p["arm_a"] == "pretrained" else p["n_b"]
                n_dfr = p["n_b"] if p["arm_a"] == "pretrained" else p["n_a"]
                c = Claim(f"interventions/overlap/{variant}/{shift}", section,
                          f"The examples corrected by pre-training and by DFR barely overlap ({variant} → {shift})",
                          paper, part="interventions",
                          ours=f"both: {int(p['n_both'])} (pre-training {int(n_pre)}, DFR {int(n_dfr)}; "
                               f"chance {p['expected_both']:.1f}; Jaccard {p['jaccard']:.2f})",
                          rule="agrees if the overlap is not significantly larger than chance "
                               "(hypergeometric p-value for more overlap than chance ≥ 0.05); unclear "
                               "if either set is empty",
                          detail=f"p-value for more overlap than chance: {p['p_value_greater']:.3g}")
                if min(n_pre, n_dfr) == 0:
                    c.verdict = UNCLEAR
                    c.detail += " (a set is empty: nothing to compare)"
                else:
                    c.verdict = AGREES if p["p_value_greater"] >= 0.05 else DISAGREES
                out.append(c)
    return out


def part_claims(inputs: Inputs, rules: Rules) -> list[Claim]:
    """Claims of the analyses of other stages: absent unless their outputs are inputs of the
    report; when present, the verdict comes from that stage's own `claims` entries (see
    `claims_from_metrics`)."""
    out = []
    for part, path, section, text, paper in PART_CLAIMS:
        doc = _metrics(inputs, path)
        if doc is None:
            out.append(Claim(part, section, text, paper, ours=f"{path}: {inputs.why_absent(path)}",
                             part=part))
            continue
        if part == "interventions":
            # the stage's own claims when it states them; the report's reading of er.csv and
            # overlap.csv for what they leave out (e.g. the corrected-examples overlap)
            derived = interventions_claims(inputs, rules, section, paper)
            if not doc.get("claims") and derived:
                out.extend(derived)
                continue
            stated = claims_from_metrics(doc, section, text, paper, part, rules)
            has_overlap = any("overlap" in c.claim.lower() for c in stated)
            out.extend(stated + [c for c in derived if "/overlap/" in c.key and not has_overlap])
            continue
        out.extend(claims_from_metrics(doc, section, text, paper, part, rules))
    return out


def _value_text(v: float, low: float, high: float, unit: str) -> str:
    same = np.isclose(low, v) and np.isclose(high, v)
    if unit == "raw":
        return f"{v:.3g}" if same else f"{v:.3g} [{low:.3g}, {high:.3g}]"
    return pct(v, 1, True) if same else er_text(v, low, high)


def claims_from_metrics(doc: dict, section: str, text: str, paper: str, part: str,
                        rules: Rules) -> list[Claim]:
    """Claims that an analysis stage states in its details.json, judged here by the rules.

    `claims`: a list of entries {claim, paper, er, low, high, rule, what, r2?, n_baseline?,
    unit?, than?, key?}. rule: `near_zero` | `positive` | `above` (then `than` = {er, low,
    high, what}: this value must lie above that one). r2/n_baseline, when given, apply the fit
    gate. unit: `accuracy` (default; shown in %) or `raw` (a plain number, e.g. a logit spread).
    Without `claims` the row says the measurement exists but states no claim to judge."""
    rows = doc.get("claims")
    if not isinstance(rows, list) or not rows:
        return [Claim(part, section, text, paper, ours="produced; see the part for the numbers",
                      verdict=UNCLEAR, part=part,
                      detail="the stage's details.json has no `claims` entry for the rules to judge")]
    out = []
    for i, r in enumerate(rows):
        try:
            er, low, high = float(r["er"]), float(r["low"]), float(r["high"])
            rule, unit = r.get("rule", "positive"), r.get("unit", "accuracy")
        except (KeyError, TypeError, ValueError) as e:
            out.append(Claim(f"{part}/{i}", section, str(r.get("claim", text)) if isinstance(r, dict) else text,
                             paper, ours=f"malformed claims entry ({type(e).__name__}: {e})",
                             verdict=UNCLEAR, part=part))
            continue
        c = Claim(f"{part}/{r.get('key', i)}", section, r.get("claim", text), r.get("paper", paper),
                  part=part, value=er, low=low, high=high, ours=_value_text(er, low, high, unit))
        c.detail = str(r.get("what", ""))
        if rule == "near_zero":
            c.rule = RULES["near_zero"].format(tol=_pp(rules.tolerance) if unit != "raw" else f"{rules.tolerance:g}",
                                               width=_pp(rules.max_half_width) if unit != "raw"
                                               else f"{rules.max_half_width:g}")
            c.verdict = near_zero(er, low, high, rules.tolerance, rules.max_half_width)
        elif rule == "positive":
            c.rule = RULES["positive"]
            c.verdict = AGREES if positive(er, low, high) else DISAGREES
        elif rule == "above" and isinstance(r.get("than"), dict):
            t = r["than"]
            c.rule = RULES["separated"]
            c.verdict = separated((er, low, high), (float(t["er"]), float(t["low"]), float(t["high"])))
            c.ours += f"\nvs {t.get('what', 'the comparison')}: {_value_text(float(t['er']), float(t['low']), float(t['high']), unit)}"
        else:
            c.verdict, c.rule = UNCLEAR, f"unknown rule {rule!r}"
        if "r2" in r and r["r2"] is not None and not fit_ok(float(r["r2"]), int(r.get("n_baseline", 0)), rules.min_fit_r2):
            c.verdict = UNCLEAR
            c.detail += (f" (fit too poor to judge: r² = {float(r['r2']):.2f}, n = {r.get('n_baseline')}; "
                         f"needs n ≥ 3 and r² ≥ {rules.min_fit_r2:g})")
        elif "r2" in r and r["r2"] is not None:
            c.detail += f"; fit r² = {float(r['r2']):.2f}, n = {r.get('n_baseline')}"
        out.append(c)
    return out


def _section_order(c: Claim) -> float:
    m = re.search(r"Sec\. (\d+(?:\.\d+)?)", c.section)
    return float(m.group(1)) if m else 99.0


def build(inputs: Inputs, rules: Rules) -> list[Claim]:
    """Every claim, in the paper's order of sections (stable within a section)."""
    return sorted([*robustness_claims(inputs, rules), *part_claims(inputs, rules)], key=_section_order)


def to_frame(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([c.as_row() for c in claims])
