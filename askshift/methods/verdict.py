"""The paper's answer in plain words, from the numbers of one (reference, shifted) pair.

Rule of thumb of the paper (Cohen-Wang, Vendrow, Madry): pre-training helps a model extrapolate
to inputs outside the reference distribution's support, but does not remove the biases that a
model learns from its fine-tuning data (in-support shifts). So the verdict reads the share of the
shifted set that lies out of the reference's support (density-ratio split, Sec. 5.2), and, when
labels allowed training the models, the measured effective robustness (ER) of fine-tuned
pre-trained models on each part.

Thresholds (fixed here, never fitted to a result), on an interval of the share that the caller
gives (`askshift ask`: the wider of its 95% bootstrap interval and its range over the
cross-fitting folds):
- in-support: the upper end of the share's interval is at most :data:`IN_SUPPORT_MAX`;
- out-of-support: the lower end is at least :data:`OUT_OF_SUPPORT_MIN`;
- mixed otherwise; too weak to say when the shifted set has fewer than :data:`MIN_SHIFTED`
  examples or the interval is wider than :data:`MAX_INTERVAL`.
- A measured ER counts as a gain when its 95% interval lies above 0, as none when it contains 0.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

IN_SUPPORT_MAX = 0.10
OUT_OF_SUPPORT_MIN = 0.50
MIN_SHIFTED = 50
MAX_INTERVAL = 0.30

STRATEGY_NAMES = {"ft": "FT", "lp": "LP", "lpft": "LP-FT"}
KINDS = ("in-support", "out-of-support", "mixed", "too weak to say")

ADVICE_IN = ("Pre-training is not expected to fix this part of the shift: its examples lie where the reference "
             "data already has mass, so a fine-tuned model keeps the biases of its fine-tuning data. De-bias or "
             "curate the fine-tuning data (paper Sec. 7: a small de-biased set can beat a large biased one), or "
             "add an intervention such as DFR, last-layer re-training on group-balanced data (Sec. 6).")
ADVICE_OUT = ("Pre-training is expected to help here: these examples lie outside the reference's support, where "
              "a model's behaviour is decided by what it learned before fine-tuning, not by the reference data "
              "(Sec. 4, 5).")


@dataclass
class Verdict:
    kind: str                     # one of KINDS
    headline: str
    reasons: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    measured: list[str] = field(default_factory=list)   # what the trained models showed

    def to_dict(self) -> dict:
        return asdict(self)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pp(x: float) -> str:
    return f"{100 * x:+.1f} pp"


def support_kind(share: float, low: float, high: float, n_shifted: int) -> tuple[str, str]:
    """``(kind, why)`` from the out-of-support share and its 95% interval."""
    if n_shifted < MIN_SHIFTED:
        return "too weak to say", f"only {n_shifted} shifted examples (< {MIN_SHIFTED})"
    if high - low > MAX_INTERVAL:
        return "too weak to say", (f"the share's interval [{_pct(low)}, {_pct(high)}] is wider than "
                                   f"{_pct(MAX_INTERVAL)}")
    if high <= IN_SUPPORT_MAX:
        return "in-support", f"at most {_pct(high)} of the shifted set is out of the reference's support"
    if low >= OUT_OF_SUPPORT_MIN:
        return "out-of-support", f"at least {_pct(low)} of the shifted set is out of the reference's support"
    return "mixed", f"{_pct(share)} [{_pct(low)}, {_pct(high)}] of the shifted set is out of the reference's support"


def _er_words(label: str, row: dict) -> str:
    er, lo, hi = row["er"], row["er_low"], row["er_high"]
    what = "a gain" if lo > 0 else ("a loss" if hi < 0 else "no significant effect")
    return f"{label}: ER {_pp(er)} [{_pp(lo)}, {_pp(hi)}] ({what}; baseline fit r² {row['r2']:.2f}, {int(row['n_baseline'])} points)"


def decide(share: float, low: float, high: float, n_shifted: int, domain_auroc: float,
           effect: dict | None = None) -> Verdict:
    """The verdict. ``effect`` (optional): ``{"all": {strategy: er row}, "out": {...}, "in": {...}}``
    with rows holding er, er_low, er_high, r2, n_baseline (ER in fractions)."""
    kind, why = support_kind(share, low, high, n_shifted)
    reasons = [why, f"the domain classifier tells the two sets apart with AUROC {domain_auroc:.3f} "
                    "(0.5: indistinguishable)"]
    if kind == "in-support":
        v = Verdict(kind, "In-support shift: pre-training will not fix it; de-bias or intervene.", reasons, [ADVICE_IN])
    elif kind == "out-of-support":
        v = Verdict(kind, "Out-of-support shift: pre-training is expected to help.", reasons, [ADVICE_OUT])
    elif kind == "mixed":
        v = Verdict(kind, f"Mixed shift: {_pct(share)} out of support. Pre-training can help on that part only.",
                    reasons, ["Out-of-support part: " + ADVICE_OUT, "In-support part: " + ADVICE_IN])
    else:
        v = Verdict(kind, "The evidence is too weak to say whether this shift is in or out of support.", reasons,
                    ["Collect more shifted examples (a few hundred at least) and ask again."])
    for part, label in (("all", "whole shifted set"), ("out", "out-of-support part"), ("in", "in-support part")):
        for strategy, row in ((effect or {}).get(part) or {}).items():
            v.measured.append(_er_words(f"{STRATEGY_NAMES.get(strategy, strategy)} on the {label}", row))
    if effect and kind in ("out-of-support", "mixed"):
        gains = [r["er_low"] > 0 for r in (effect.get("out") or effect.get("all") or {}).values()]
        if gains and not any(gains):
            v.measured.append("The fine-tuned pre-trained models do not show the expected gain on the out-of-support "
                              "examples: with this pre-trained model, pre-training did not help here.")
    if effect and kind == "in-support":
        gains = [r["er_low"] > 0 for r in (effect.get("all") or {}).values()]
        if gains and any(gains):
            v.measured.append("Unlike the rule of thumb, the fine-tuned pre-trained models do gain on this in-support "
                              "shift: pre-training helped here, though the paper finds such gains small.")
    return v
