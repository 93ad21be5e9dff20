"""``python -m askshift bias-curve``: how much the spurious tint hurts a from-scratch model as the
bias strength p grows: accuracy on the biased reference, and accuracy and worst-group accuracy on
the shifted set (random tints), one from-scratch run per p with the baseline recipe of
params.yaml. Picks the bias strength at which the paper's bias interventions (Sec. 6, 7) have
something to fix. Needs data/raw (``dvc repro download``)."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from askshift.cli import CLIError, register


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--p", type=float, nargs="+", default=[0.5, 0.7, 0.8, 0.9, 0.95], help="bias strengths")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--seed-runs", type=int, default=1, help="from-scratch runs per p (seeds)")


@register("bias-curve", help="worst-group accuracy of a from-scratch model vs the spurious tint's strength",
          configure=_configure)
def run_bias_curve(args) -> int:
    from askshift.data import digits, raw
    from askshift.methods.metrics import accuracy, worst_group_accuracy
    from askshift.nn import models, train
    from askshift.study import layout
    from askshift.study.params import ParamsError, load_params
    from askshift.study.training import train_config

    try:
        params = load_params(args.params, machine=False)
    except ParamsError as e:
        raise CLIError(str(e)) from None
    if not (layout.RAW / "mnist").exists():
        raise CLIError(f"{layout.RAW}/mnist is missing: run `dvc repro download` first")
    inputs = raw.digits_inputs(layout.RAW)
    b, m = params["baseline"], params["model"]
    min_size = params["evaluate"]["min_group_size"]
    rows = []
    for p in args.p:
        cfg = {**params["curate"], "spurious_tint": {"p": p}}
        world = digits.build_world(inputs, cfg, params["seed"])
        ref, shifted = world["reference", "spurious_tint"], world["shifted", "spurious_tint"]
        tr, te = ref.split("train"), ref.split("test")
        for s in range(args.seed_runs):
            seed = layout.run_seed(params["seed"], "bias-curve", p, s)
            model = models.create_model(m["arch"], 10, seed=seed, **m["kwargs"])
            train.fit(model, (tr.images, tr.labels), None, train_config(b["train"], params["compute"], seed))
            pr = train.predict(model, te.images).argmax(1)
            ps = train.predict(model, shifted.images).argmax(1)
            rows.append({"p": p, "seed_run": s, "ref_acc": accuracy(te.labels, pr),
                         "shift_acc": accuracy(shifted.labels, ps),
                         "shift_wga": worst_group_accuracy(shifted.labels, ps, shifted.groups, min_size)})
            print(f"p = {p:g}: reference {rows[-1]['ref_acc']:.3f}, shifted {rows[-1]['shift_acc']:.3f}, "
                  f"shifted worst group {rows[-1]['shift_wga']:.3f}", flush=True)
    table = pd.DataFrame(rows).groupby("p")[["ref_acc", "shift_acc", "shift_wga"]].mean()
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"(worst group over groups of >= {min_size} shifted examples; from-scratch recipe: baseline.train; "
          f"{args.seed_runs} run(s) per p)")
    return 0 if np.isfinite(table.to_numpy()).all() else 1
