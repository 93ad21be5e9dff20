"""``python -m askshift ask``: the paper's question for your own shift.

    python -m askshift ask --reference REF --shifted SHIFTED [--out ask-out]

REF and SHIFTED are image folders (``<class>/<image>``, or images at the top level when
unlabelled) or CSV / parquet tables with a ``path`` and an optional ``label`` column. Writes
``ask.html`` (the verdict first), ``ask.json`` (every number) and ``ratios.csv`` (each shifted
image's density ratio and part). See :mod:`askshift.study.ask`.
"""
from __future__ import annotations

import argparse

from askshift.cli import CLIError, register


def _configure(p: argparse.ArgumentParser) -> None:
    from askshift.data.imagesets import ON_BAD
    from askshift.study.ask import FEATURES, AskOptions

    d = AskOptions()
    p.add_argument("--reference", required=True, metavar="PATH", help="the reference (fine-tuning) images")
    p.add_argument("--shifted", required=True, metavar="PATH", help="the shifted (deployment) images")
    p.add_argument("--out", default="ask-out", metavar="DIR", help="where ask.html / ask.json go (default ask-out)")
    p.add_argument("--model", default=d.model, metavar="SPEC",
                   help=f"feature model: a model file saved by the pipeline (default {d.model}, the digits world's "
                        "pre-trained model) or timm:<name.tag>[@local file]")
    p.add_argument("--features", default=d.features, choices=FEATURES,
                   help="domain classifier input: the model's frozen features, pooled pixels, or both (default)")
    p.add_argument("--pixel-size", type=int, default=d.pixel_size, help="pixels pooled to this size (default 16)")
    p.add_argument("--epsilon", type=float, default=d.epsilon, help="out of support where p_ref/p_shift < epsilon (0.2)")
    p.add_argument("--k", type=int, default=d.k, help="cross-fitting folds (10)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images decoded at a time (256)")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda")
    p.add_argument("--on-bad-image", default=d.on_bad_image, choices=ON_BAD,
                   help="a file that is not a readable image: stop (default) or skip it (listed in ask.json)")
    p.add_argument("--no-effect", action="store_true",
                   help="skip training baselines and fine-tunes (the effect part) even when both sets are labelled")
    p.add_argument("--params", default=d.params_file, metavar="FILE",
                   help="the study's params file, whose recipes the effect part uses (params.yaml)")


@register("ask", help="will pre-training make a model robust to your shift? (support split, ER, verdict page)",
          configure=_configure)
def run_ask(args) -> int:
    from askshift.data.imagesets import ImageSetError
    from askshift.report import ask_page
    from askshift.study.ask import AskOptions, ask
    from askshift.study.config import ParamsError

    opts = AskOptions(model=args.model, features=args.features, pixel_size=args.pixel_size, k=args.k,
                      epsilon=args.epsilon, seed=args.seed, batch_size=args.batch_size, device=args.device,
                      on_bad_image=args.on_bad_image, effect=not args.no_effect, params_file=args.params)
    try:
        result, table = ask(args.reference, args.shifted, opts)
    except (ImageSetError, ParamsError) as e:
        raise CLIError(str(e)) from None
    page = ask_page.write(args.out, result, table)
    v, o = result["verdict"], result["support"]["out_of_support"]
    print(f"{v['headline']}\nout of support: {o['share']:.1%} [{o['low']:.1%}, {o['high']:.1%}], domain AUROC "
          f"{result['support']['domain_auroc']:.3f}")
    for line in v["measured"]:
        print(f"  {line}")
    print(f"answer: {page}")
    return 0
