"""Stage `curate`: build every dataset of the world from data/raw into data/curated."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from askshift.data import corpus, digits, raw, store, summary
from askshift.params import load_params, main_guard


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--raw", default="data/raw")
    ap.add_argument("--out", default="data/curated")
    args = ap.parse_args()
    params = load_params(args.params)  # before any work
    cfg, seed = params["curate"], params["seed"]
    out = Path(args.out)
    t0 = time.time()

    world = digits.build_world(raw.digits_inputs(args.raw), cfg, seed)
    print(f"reference and shifts built ({time.time() - t0:.1f} s)", flush=True)
    world["pretrain"] = corpus.build_corpus(raw.corpus_inputs(args.raw), cfg["corpus"],
                                            cfg["tint_strength"], seed)
    print(f"pre-training corpus built: {len(world['pretrain'])} images ({time.time() - t0:.1f} s)", flush=True)

    with store.atomic_dir(out / "datasets") as tmp:
        for name, ds in world.items():
            store.save(ds, tmp / name)
        (tmp / "shifts.json").write_text(json.dumps(digits.shift_index(world), indent=1))
    with store.atomic_dir(out / "grids") as tmp:
        for name, ds in world.items():
            summary.image_grid(ds, cfg["grid"]["per_dataset"], seed).save(tmp / f"{name}.png")
    stats = {name: summary.describe(ds) for name, ds in world.items()}
    store.atomic_write_text(out / "summary.json", json.dumps(stats, indent=1))
    print(f"curate done in {time.time() - t0:.1f} s: {len(world)} datasets in {out}")


if __name__ == "__main__":
    main_guard(main)
