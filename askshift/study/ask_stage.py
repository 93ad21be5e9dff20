"""The `ask` stage: ``dvc repro`` asks the paper's question of the image sets params.yaml names.

It answers :func:`askshift.study.ask.ask` for ``ask.reference`` and ``ask.shifted``: those paths
are the stage's deps (dvc.yaml templates them from params.yaml), so ``dvc exp run -S
ask.reference=DIR -S ask.shifted=DIR`` asks about your own images, cached and versioned like
every other result. Their default is the digits pair that `ask_example` writes
(:mod:`askshift.study.ask_example`). The effect part trains with the study's own recipes
(``baseline`` and ``finetune`` of params.yaml).
"""
from __future__ import annotations

import re

import pandas as pd

from askshift.study import layout
from askshift.study.stage import InputError

PRETRAINED = "pretrained"                      # ask.model: the pipeline's own pre-trained model


def model_spec(model: str) -> str:
    """``ask.model`` as :func:`askshift.study.ask.load_feature_model` takes it."""
    return str(layout.PRETRAINED_MODEL) if model == PRETRAINED else model


def run(cfg) -> tuple[dict, pd.DataFrame]:
    """`ask`: the answer for the pair params.yaml names (ask.json's content, the ratios table)."""
    from askshift.data.imagesets import ImageSetError
    from askshift.study.ask import AskOptions, ask
    from askshift.study.config import stage_params_file

    a = cfg.ask
    opts = AskOptions(model=model_spec(a.model), features=a.features, pixel_size=a.pixel_size, k=a.k,
                      epsilon=a.epsilon, seed=cfg.seed, device=cfg.compute.device, on_bad_image=a.on_bad_image,
                      effect=a.effect, params_file=str(stage_params_file("ask")), progress=False)
    recipe = {"baseline": cfg.baseline.to_dict(), "finetune": cfg.finetune.to_dict(), "compute": cfg.compute.to_dict()}
    try:
        return ask(a.reference, a.shifted, opts, recipe)
    except ImageSetError as e:
        raise InputError(as_params(str(e))) from None


def as_params(message: str) -> str:
    """A message of `askshift ask` in the stage's words: ``--on-bad-image`` -> ``ask.on_bad_image``."""
    return re.sub(r"--([a-z][a-z-]*)", lambda m: "ask." + m.group(1).replace("-", "_"), message)


def headline(result: dict) -> dict:
    """The numbers `dvc exp show` shows for the question, under ``ask.`` (so that its columns
    read ``ask.verdict``, ``ask.out_of_support.share``, ...): the verdict, the out-of-support share
    with its interval, the domain AUROC and, when measured, each strategy's ER on the whole shift
    and its parts."""
    s, o = result["support"], result["support"]["out_of_support"]
    out = {"verdict": result["verdict"]["kind"], "out_of_support": {k: o[k] for k in ("share", "low", "high")},
           "domain_auroc": s["domain_auroc"]}        # counts are in ask.json (metrics: headline numbers only)
    er = (result.get("effect") or {}).get("er") or {}
    if er:
        out["er"] = {part: {strategy: {k: row[k] for k in ("er", "er_low", "er_high")} for strategy, row in rows.items()}
                     for part, rows in er.items() if rows}
    return {"ask": out}
