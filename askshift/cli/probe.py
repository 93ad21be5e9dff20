"""``python -m askshift probe``: how much of an attribute (e.g. the spurious tint) a model's
penultimate features encode.

A model can only use a shortcut that its features represent.
:func:`askshift.methods.probe.attribute_decodability` is the cross-validated accuracy of an L2 logistic regression (standardised features) that
predicts the attribute from the features, next to the chance level (the majority class). The
``probe`` subcommand prints it for saved models on a curated dataset:

    python -m askshift probe --dataset data/curated/datasets/shift_spurious_tint \
        --attribute tint --attribute label models/pretrain/model.pt models/baseline/plain__baseline__full-e6.pt
"""
from __future__ import annotations

import argparse
from pathlib import Path

from askshift.cli import CLIError, register
from askshift.methods.probe import attribute_decodability


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL.pt", help="models saved by the pipeline")
    p.add_argument("--dataset", required=True, metavar="DIR",
                   help="a curated dataset folder (images.npy + meta.parquet)")
    p.add_argument("--attribute", action="append", required=True, metavar="COL",
                   help="meta column to decode (repeat: e.g. tint, label)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--device", default="auto")


@register("probe", help="how well a model's frozen features encode an attribute (e.g. the spurious tint)",
          configure=_configure)
def run_probe(args) -> int:
    from askshift.data import store
    from askshift.nn import models, train

    if not (Path(args.dataset) / "meta.parquet").exists():
        raise CLIError(f"--dataset {args.dataset}: no meta.parquet there (expected a folder of data/curated/datasets)")
    data = store.load(args.dataset)
    missing = [a for a in args.attribute if a not in data.meta.columns]
    if missing:
        raise CLIError(f"--attribute {missing[0]!r} is not a column of {args.dataset}; "
                       f"columns: {', '.join(map(str, data.meta.columns))}")
    loaded = {}
    for path in args.models:  # all of them before any work
        try:
            loaded[path] = models.load_model(path)
        except (FileNotFoundError, ValueError) as e:
            raise CLIError(f"model {path}: {e}") from None
    print(f"{'model':55s} {'attribute':10s} {'decodable':>9s} {'chance':>7s}")
    for path, model in loaded.items():
        feats = train.extract_features(model, data.images, device=args.device)
        for col in args.attribute:
            r = attribute_decodability(feats, data.meta[col].to_numpy(), folds=args.folds)
            print(f"{path:55s} {col:10s} {r['accuracy']:9.3f} {r['chance']:7.3f}", flush=True)
    return 0
