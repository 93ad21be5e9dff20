"""Validate `askshift ask` on the digits world, where the answer is known by construction.

    ./bin/venv python benchmarks/ask_digits.py --workspace DIR [--out OUT] [--effect SHIFT ...]

DIR is a workspace after `dvc repro` (its data/curated/datasets and models/pretrain/model.pt).
Each (reference, shifted) pair of the world is written as image folders (PNG, ImageFolder layout;
the reference is every split of the pair's reference set), then `python -m askshift ask` answers it
with its defaults. Printed per shift: the out-of-support share with its interval, the domain
AUROC, the verdict, and (mixture) the AUROC of the density ratio against the known membership.

Expectations, fixed before measuring (issue 13): in-support shifts (spurious_tint, label_shift)
share <= 0.10; out-of-support shifts (unseen_tint, flip) share >= 0.90; the mixture's share in
[0.35, 0.65] and membership AUROC >= 0.90. The order check answers the mixture again from a
shuffled CSV table of the same files and compares every number.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

EXPECT = {"spurious_tint": (None, 0.10), "label_shift": (None, 0.10), "unseen_tint": (0.90, None),
          "flip": (0.90, None), "mixture": (0.35, 0.65)}


def export(dataset: Path, dest: Path) -> Path:
    """A curated dataset as PNG files in class folders (the `ask_example` stage's writer)."""
    from askshift.data import store
    from askshift.study.ask_example import export_images

    export_images(store.load(dataset, mmap=True), dest)
    return dest


def run_ask(ws: Path, ref: Path, shifted: Path, out: Path, effect: bool) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "askshift", "ask", "--reference", str(ref), "--shifted", str(shifted),
           "--out", str(out), "--model", str(ws / "models/pretrain/model.pt"), "--params", str(ws / "params.yaml")]
    t0 = time.time()
    r = subprocess.run(cmd + ([] if effect else ["--no-effect"]), capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return json.loads((out / "ask.json").read_text()), time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("ask-digits"))
    ap.add_argument("--effect", nargs="*", default=["spurious_tint", "unseen_tint", "mixture"],
                    help="shifts whose answer also trains the models (the effect part)")
    args = ap.parse_args()
    ws = args.workspace.resolve()
    pairs = json.loads((ws / "data/curated/datasets/shifts.json").read_text())
    data = args.out / "data"
    rows = []
    for shift, (lo, hi) in EXPECT.items():
        pair = pairs[shift]
        ref = data / pair["reference"]
        if not ref.exists():
            export(ws / "data/curated/datasets" / pair["reference"], ref)
        sh = export(ws / "data/curated/datasets" / pair["shifted"], data / pair["shifted"]) \
            if not (data / pair["shifted"]).exists() else data / pair["shifted"]
        res, seconds = run_ask(ws, ref, sh, args.out / shift, shift in args.effect)
        o, s = res["support"]["out_of_support"], res["support"]
        row = {"shift": shift, "kind": pair["kind"], "n_ref": s["n_reference"], "n_shifted": s["n_shifted"],
               "share": o["share"], "low": o["low"], "high": o["high"], "fold_min": o["fold_min"],
               "fold_max": o["fold_max"], "domain_auroc": s["domain_auroc"], "verdict": res["verdict"]["kind"],
               "seconds": round(seconds, 1)}
        if shift == "mixture":
            meta = pd.read_parquet(ws / "data/curated/datasets" / pair["shifted"] / "meta.parquet")
            table = pd.read_csv(args.out / shift / "ratios.csv")
            # files were written in meta order as <class>/<i>.png; map back to meta's rows
            i = table["path"].map(lambda p: int(Path(p).stem)).to_numpy()
            truth = ~meta["in_support"].to_numpy(bool)[i]
            from askshift.methods.split import auroc

            row["membership_auroc"] = auroc(-table["log_ratio"].to_numpy(), truth)
            shuffled = pd.DataFrame({"path": table["path"].map(lambda p: str(Path(p).resolve())),
                                     "label": table["label"]}).sample(frac=1.0, random_state=1)
            shuffled.to_csv(args.out / "mixture-shuffled.csv", index=False)
            again, _ = run_ask(ws, ref, args.out / "mixture-shuffled.csv", args.out / "mixture-shuffled", False)
            row["order_independent"] = again["support"] == res["support"]
        for part in ("all", "out", "in"):
            for strategy, er in ((res.get("effect") or {}).get("er", {}).get(part) or {}).items():
                row[f"er_{part}_{strategy}"] = er["er"]
        row["meets"] = (lo is None or row["share"] >= lo) and (hi is None or row["share"] <= hi) and \
            row.get("membership_auroc", 1.0) >= 0.90
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "validation.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
