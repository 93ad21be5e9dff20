"""``python -m askshift summary``: the headline results of a run as Markdown tables, stamped
with the git commit and a digest of the params that produced them (docs/results.md is written
from it, so no number there is copied by hand)."""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from pathlib import Path

from askshift.cli import CLIError, register
from askshift.io import write_text
from askshift.study import layout


def _pp(v, low=None, high=None) -> str:
    if v is None:
        return "–"
    s = f"{100 * v:+.1f}"
    return s if low is None else f"{s} [{100 * low:+.1f}, {100 * high:+.1f}]"


def _details(stage: str) -> dict | None:
    path = layout.details_file(stage)
    return json.loads(path.read_text()) if path.exists() else None


def stamp(root: Path = Path(".")) -> str:
    """Which code and params produced the results in this workspace."""
    def git(*args):
        r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else "?"

    params = (root / "params.yaml").read_bytes()
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    return (f"Measured by commit `{git('rev-parse', '--short', 'HEAD')}`{dirty}, params.yaml sha256 "
            f"`{hashlib.sha256(params).hexdigest()[:12]}`.")


def er_table(d: dict) -> str:
    strategies = sorted({k[3:] for s in d["shifts"].values() for k in s
                         if k.startswith("er_") and not k.endswith(("_low", "_high")) and k != "er_mean"},
                        key=["ft", "lpft", "lp"].index)
    lines = ["| shift | kind | fit r² | n | " + " | ".join(s.upper() for s in strategies) + " |",
             "|---|---|---|---|" + "---|" * len(strategies)]
    for name, s in d["shifts"].items():
        ers = [_pp(s.get(f"er_{k}"), s.get(f"er_{k}_low"), s.get(f"er_{k}_high")) for k in strategies]
        lines.append(f"| {name} | {s['kind']} | {s['r2']:.3f} | {s['n_baseline']} | " + " | ".join(ers) + " |")
    return "\n".join(lines)


def parts_table(rob: dict, split: dict | None) -> str:
    """ER of each part per judged strategy (FT, LP-FT), never their mean."""
    parts_ = ("in", "out", "in_matched")
    lines = ["| shift | out-of-support share | membership AUROC | "
             + " | ".join(f"{k.upper()}: {p.replace('_', ', ')}" for k in ("ft", "lpft") for p in parts_) + " |",
             "|---|---|---|" + "---|" * 2 * len(parts_)]
    for name, parts in rob.get("parts", {}).items():
        sp = (split or {}).get("parts", {}).get(name, {})
        auroc = sp.get("membership", {}).get("auroc")
        row = [f"{100 * sp['out_of_support_fraction']:.0f}%" if sp else "–", f"{auroc:.3f}" if auroc else "–"]
        row += [_pp(parts.get(p, {}).get(f"er_{k}")) for k in ("ft", "lpft") for p in parts_]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def verdicts_line(root: Path) -> str | None:
    path = root / "reports" / "verdicts.json"
    if not path.exists():
        return None
    tally = json.loads(path.read_text())["claims"]
    return "Claims table (reports/index.html): " + ", ".join(f"{n} {v}" for v, n in tally.items()) + "."


def arms_table(iv: dict) -> str:
    out = []
    for variant, shifts in iv["arms"].items():
        names = list(shifts)
        out += [f"Variant `{variant}`: ER [95% interval] and shifted worst-group accuracy per arm.", "",
                "| arm | " + " | ".join(f"{s}: ER | {s}: WGA" for s in names) + " |",
                "|---|" + "---|---|" * len(names)]
        arms = [a for a, v in shifts[names[0]].items() if isinstance(v, dict) and "er" in v]
        for arm in arms:
            cells = []
            for s in names:
                a = shifts[s][arm]
                cells += [_pp(a["er"], a["er_low"], a["er_high"]), f"{a['shift_wga']:.3f}"]
            out.append(f"| {arm} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out).rstrip()


def debiased_table(de: dict) -> str:
    lines = ["| arm | images | reference acc | shifted WGA | ER |", "|---|---|---|---|---|"]
    for arm, a in de["curated_arms"].items():
        lines.append(f"| {arm} | {a['size']} | {a['ref_acc']:.3f} | {a['shift_wga']:.3f} | "
                     f"{_pp(a['er'], a['er_low'], a['er_high'])} |")
    sweep = ", ".join(f"{n}: {_pp(v['er'], v['er_low'], v['er_high'])} (acc {v['ref_acc']:.2f})"
                      for n, v in de["size_sweep"].items())
    return "\n".join(lines) + f"\n\nSize sweep (pre-trained, ER by curated-set size): {sweep}."


def summary(root: Path = Path(".")) -> str:
    rob = _details("robustness")
    if rob is None:
        raise CLIError(f"{layout.details_file('robustness')} is missing: run `dvc repro` first")
    verdicts = verdicts_line(root)
    parts = [stamp(root), *(["", verdicts] if verdicts else []),
             "", "### ER per shift (Sec. 3 / 5.1)", "",
             f"ER in percentage points, {rob['scale']} fit over the from-scratch baselines (n of them), "
             f"official 95% interval; fine-tuned on the `{rob['finetune_dataset']}` set.", "", er_table(rob)]
    split = _details("split")
    parts += ["", "### Splitting shifts (Sec. 5.2)", "", "ER (percentage points) of each part, per strategy; "
              "`in, matched`: the in-support part re-weighted to the out-of-support part's difficulty.", "",
              parts_table(rob, split)]
    for stage, title, fn in (("interventions", "Bias interventions (Sec. 6)", arms_table),
                             ("debiased", "Curated de-biased fine-tuning (Sec. 7)", debiased_table)):
        d = _details(stage)
        if d is not None:
            parts += ["", f"### {title}", "", fn(d)]
    th = _details("theory")
    if th is not None:
        t = th["theorem"]
        parts += ["", "### Theory (Sec. 4)", "",
                  f"Theorem error {t['theorem_error']:.1e}; in-support logit spread {t['in_support_max_logit_diff']:.1e}; "
                  f"out-of-support accuracy: pre-trained init {t['oos_accuracy_pretrained']:.3f}, zero "
                  f"{t['oos_accuracy_zero']:.3f}, random {t['oos_accuracy_random_mean']:.3f}; controls break it "
                  f"(step x20: error {t['control_big_step']['theorem_error']:.3g}, data off W: "
                  f"{t['control_off_subspace']['theorem_error']:.3g})."]
    return "\n".join(parts) + "\n"


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="write the Markdown here instead of printing it")


@register("summary", help="the headline results of this workspace's run as Markdown tables", configure=_configure)
def run_summary(args) -> int:
    text = summary()
    if args.out:
        write_text(args.out, text)
    else:
        print(text)
    return 0
